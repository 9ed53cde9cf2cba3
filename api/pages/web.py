"""The pages' plumbing: templates on one layout, the sign-in cookie, CSRF tokens, role guards, errors as pages.

**The session cookie** (``cedar_session``, HttpOnly, SameSite=Lax, ``Secure`` outside development and test, for
the browser's session) holds the access token and the refresh token that the identity service issued at sign-in:
the very pair ``POST /api/v1/auth/login`` returns. Chosen over a server-side session id because a page request is
then authenticated exactly like a bearer call, by ``api.principal.resolve_principal`` (signature and expiry, the
``users`` row active, the session not logged out), with no second session store to keep in step: sign-out revokes
the refresh-token family and deactivation sets ``users.is_active = false`` (and revokes the refresh tokens), so the
cookie dies on its next request exactly as a bearer token does. An expired access token is renewed with the
refresh token (rotation with reuse detection, as ``/api/v1/auth/refresh``) and the cookie rewritten; it works the
same with Supabase's tokens. No script can read it, and another site's form posts never carry it.

**CSRF**: a signed double submit. The ``cedar_csrf`` cookie holds a random seed; every form carries
``HMAC(key, seed | user id | session id)`` in ``csrf_token``, and every POST to a page path is refused (403) unless
that field matches the cookie and the signed-in session. Another site can neither read the cookie nor compute the
HMAC, and a seed planted by a neighbouring subdomain is useless without our key and the victim's session.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import AppContext, get_identity
from api.errors import CedarError
from api.pages import is_page_path
from api.principal import Principal, resolve_principal
from api.repositories.audit import bind_request_id
from api.routes.auth import run_committed
from api.routing import IndexedRouter
from core.identity import AuthFailure, SignedIn
from core.settings import Settings
from models import Role

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
SESSION_COOKIE = "cedar_session"
CSRF_COOKIE = "cedar_csrf"
CSRF_FIELD = "csrf_token"
# Set-Cookie values a request queued; api/middleware.py adds them to whatever response leaves (a page, a
# redirect, an error), so a rotated refresh token is never lost.
PAGE_COOKIES = "page_cookies"
_SEED = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined, trim_blocks=True
)

# What the layout's navigation offers each role: (path, label). Each audience's module adds its own.
NAV: dict[Role, list[tuple[str, str]]] = {Role.parent: [], Role.teacher: [], Role.admin: []}
# Where a role lands after signing in (a role without pages yet gets a short "signed in" page).
HOME: dict[Role, str] = {}
# Messages a redirect may ask a page to show (``?notice=key``): fixed text, never echoed from the URL.
NOTICES: dict[str, str] = {"signed_out": "You are signed out."}

router = IndexedRouter(include_in_schema=False)


# --- errors as pages ---


class SignInRequired(Exception):
    """Raised by a guard: the browser goes to ``/sign-in?next=…`` (for a GET, back here afterwards)."""

    def __init__(self, next_path: str | None) -> None:
        super().__init__("sign in required")
        self.next_path = next_path


class PageError(Exception):
    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


_TITLES = {
    400: "This did not work",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "This cannot be done now",
    422: "Please check what you entered",
    429: "Too many attempts",
    503: "Try again in a moment",
    504: "Try again in a moment",
}


def sentence(detail: str) -> str:
    """A service's refusal ("lesson not found") as a sentence for a page."""
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def install_page_errors(app: FastAPI) -> None:
    """Errors on page paths answer as pages; elsewhere the API's own JSON handlers answer as before."""

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = "/sign-in" + (f"?next={quote(exc.next_path, safe='/')}" if exc.next_path else "")
        return RedirectResponse(target, status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return await render(request, "message.html", exc.status_code, title=exc.title, message=exc.message)

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageError, page_error)
    for kind in (CedarError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _as_page(app.exception_handlers[kind]))


def _as_page(json_handler: Callable[[Request, Any], Any]) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        if not is_page_path(request.url.path):
            response: Response = await json_handler(request, exc)
            return response
        if isinstance(exc, CedarError):
            status, message = exc.status_code, sentence(exc.detail)
        elif isinstance(exc, RequestValidationError):
            status, message = 422, "Some of what was sent is missing or not valid. Go back and check the form."
        else:
            assert isinstance(exc, StarletteHTTPException)
            status, message = exc.status_code, "There is nothing here. Check the address, or start from home."
        title = _TITLES.get(status, "Something went wrong")
        headers = getattr(exc, "headers", None)
        page = await render(request, "message.html", status, title=title, message=message)
        if headers and "Retry-After" in headers:
            page.headers["Retry-After"] = headers["Retry-After"]
        return page

    return handler


# --- the session cookie ---


def queue_cookie(request: Request, name: str, value: str, *, delete: bool = False) -> None:
    settings = context_of(request).settings
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if delete:
        parts.append("Max-Age=0")
    if settings.environment not in ("development", "test"):
        parts.append("Secure")
    request.scope.setdefault("state", {}).setdefault(PAGE_COOKIES, []).append("; ".join(parts))


def remember_session(request: Request, signed: SignedIn) -> None:
    queue_cookie(request, SESSION_COOKIE, f"{signed.access_token}:{signed.refresh_token}")


def forget_session(request: Request) -> None:
    queue_cookie(request, SESSION_COOKIE, "", delete=True)
    request.scope.setdefault("state", {})["page_user"] = None


def session_tokens(request: Request) -> tuple[str, str]:
    """The cookie's (access token, refresh token); empty strings when absent."""
    access, _, refresh = (request.cookies.get(SESSION_COOKIE) or "").partition(":")
    return access, refresh


async def page_user(request: Request) -> Principal | None:
    """The signed-in person behind the session cookie (renewing an expired access token), or None."""
    state = request.scope.setdefault("state", {})
    if "page_user" not in state:
        state["page_user"] = await _resolve(request)
    user: Principal | None = state["page_user"]
    return user


async def _resolve(request: Request) -> Principal | None:
    access, refresh = session_tokens(request)
    if not access:
        return None
    context = context_of(request)
    user = await _principal(request, context, access)
    if user is not None:
        return user
    if refresh:
        identity = get_identity(request, context.settings)
        try:
            signed = await run_committed(context, lambda session: identity.refresh(session, refresh))
        except AuthFailure:
            pass
        else:
            user = await _principal(request, context, signed.access_token)
            if user is not None:
                remember_session(request, signed)
                return user
    forget_session(request)
    return None


async def _principal(request: Request, context: AppContext, token: str) -> Principal | None:
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    async with context.read_sessions() as session:
        try:
            return await resolve_principal(request, session, context.settings, credentials)
        except CedarError as refused:
            if refused.status_code == 401:
                return None
            raise


def page_roles(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A guard: the signed-in person if their role is among ``roles``; else sign in (none) or 403 (another)."""

    async def guard(request: Request) -> Principal:
        user = await page_user(request)
        if user is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(wanted if request.method == "GET" else None)
        if user.role not in roles:
            raise PageError(403, "Not for this account", "This page is not for the account you are signed in with.")
        return user

    return guard


ParentUser = Annotated[Principal, Depends(page_roles(Role.parent))]


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site (``/…``, no scheme, host, ``//`` or backslash), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


# --- CSRF ---


def csrf_for(settings: Settings, seed: str, user: Principal | None) -> str:
    """The token a form carries for this browser's seed and this session (see the module's docstring)."""
    key = hashlib.sha256(b"cedar-page-csrf\x00" + settings.jwt_secret.encode()).digest()
    binding = f"{user.user_id}:{user.session_id}" if user is not None else "-"
    return hmac.new(key, f"{seed}|{binding}".encode(), hashlib.sha256).hexdigest()


def new_csrf_seed(request: Request) -> str:
    seed = secrets.token_urlsafe(32)
    request.scope.setdefault("state", {})["csrf_seed"] = seed
    queue_cookie(request, CSRF_COOKIE, seed)
    return seed


async def csrf_token(request: Request) -> str:
    state = request.scope.setdefault("state", {})
    seed = state.get("csrf_seed") or request.cookies.get(CSRF_COOKIE) or ""
    if not _SEED.match(seed):
        seed = new_csrf_seed(request)
    return csrf_for(context_of(request).settings, seed, await page_user(request))


async def verify_csrf(request: Request) -> None:
    """Every page router's dependency: a POST (any unsafe method) without the form's token is refused, 403."""
    if request.method in _SAFE_METHODS:
        return
    seed = request.cookies.get(CSRF_COOKIE) or ""
    try:
        sent = (await request.form()).get(CSRF_FIELD)
    except Exception:  # not a form at all (JSON, garbage): no token either
        sent = None
    expected = csrf_for(context_of(request).settings, seed, await page_user(request))
    if not _SEED.match(seed) or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise PageError(
            403,
            "This form has expired",
            "For your safety the form could not be accepted. Go back, reload the page and try again.",
        )


# --- rendering ---


async def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    settings = context_of(request).settings
    user = await page_user(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    context: dict[str, Any] = {
        "school_name": settings.school_name,
        "user": user,
        "nav": NAV.get(user.role, []) if user else [],
        "path": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_token": await csrf_token(request),
        "notice": notice,
        "problem": None,
        "scripts": [],
    }
    context.update(values)
    return HTMLResponse(templates.get_template(template).render(context), status_code=status)


def redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


# --- static files: the stylesheet and the card form's script, from a fixed list (no paths from the URL) ---

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
STATIC_FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in _STATIC_TYPES}


@router.get("/static/{name}")
async def static_file(name: str) -> FileResponse:
    path = STATIC_FILES.get(name)
    if path is None:
        raise StarletteHTTPException(404)
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=300"})


def page_router() -> IndexedRouter:
    """The router of an audience's pages: out of the OpenAPI schema, every unsafe request CSRF-checked."""
    return IndexedRouter(include_in_schema=False, dependencies=[Depends(verify_csrf), Depends(bind_request_id)])
