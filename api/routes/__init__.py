"""Every router the app serves. A capability adds its router here (one line)."""

from fastapi import APIRouter

from api.routes import auth, health, lessons, parents, privacy, students, teachers

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    privacy.router,
    students.router,
    parents.router,
    teachers.router,
    lessons.router,
]
