"""``/``: where every email's footer (``school_url``) lands. The signed-in person goes to their home (a family's,
a teacher's lessons, the office's lists); anyone else to the sign-in form."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from api.pages.web import HOME, page_router, page_user, redirect

router = page_router()


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    user = await page_user(request)
    return redirect(HOME.get(user.role, "/sign-in") if user is not None else "/sign-in")
