"""Every router the app serves. A capability adds its router here (one line)."""

from fastapi import APIRouter

from api.routes import health

ROUTERS: list[APIRouter] = [
    health.router,
]
