"""Server-rendered pages for people (issue #14): one module per audience, on one layout and one set of plumbing.

- ``api/pages/web.py``: templates and the layout, the sign-in cookie, CSRF tokens, role guards, errors as pages;
- ``api/pages/session.py``: ``/sign-in`` and ``/sign-out``;
- ``api/pages/links.py``: the pages emailed links open without signing in (passwords, family confirmation, an
  enrollment's status);
- ``api/pages/family.py``: a parent's pages (``/family``…);
- ``api/pages/home.py``: ``/``, the emails' footer link, to the signed-in person's home or the sign-in form;
- ``api/pages/teacher.py``: a teacher's lessons and demos (``/teacher``…);
- ``api/pages/office.py``: the office's enrollments and families in arrears (``/office``…);
- ``api/pages/teacher_changes.py``: the office's closures, substitutes and transfers (``/office/teacher-changes``).
- ``api/pages/reenrollment.py``: a family's answers to next semester's offers (``/re-enroll/{semester_id}``).
- ``api/pages/billing_setup.py``: an imported family's card (``/billing/setup``) and the office's invitations.

Pages call the same services as the JSON API, with the same roles and row-level rules. Every path they serve
starts with one of :data:`PAGE_PREFIXES`: ``api/middleware.py`` gives those the page headers (a CSP that allows
'self'), everything else keeps the API's strict ones.
"""

from __future__ import annotations

from fastapi import APIRouter

PAGE_PREFIXES = (
    "/sign-in",
    "/sign-out",
    "/family",
    "/enrollments/",
    "/set-password",
    "/reset-password",
    "/confirm-enrollment",
    "/static/",
    "/teacher",
    "/office",
    "/re-enroll/",
    "/billing/",
)


def is_page_path(path: str) -> bool:
    return path.startswith(PAGE_PREFIXES)


def page_routers() -> list[APIRouter]:
    from api.pages import (
        billing_setup,
        family,
        home,
        links,
        office,
        reenrollment,
        session,
        teacher,
        teacher_changes,
        web,
    )

    return [
        web.router,
        home.router,
        session.router,
        links.router,
        family.router,
        teacher.router,
        office.router,
        teacher_changes.router,
        reenrollment.router,
        billing_setup.router,
    ]
