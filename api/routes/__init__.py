"""Every router the app serves. A capability adds its router here (one line)."""

from fastapi import APIRouter

from api.routes import (
    attendance,
    audit,
    auth,
    billing,
    calendar,
    catalog,
    communications,
    dunning,
    enrollments,
    health,
    invoices,
    lessons,
    parents,
    privacy,
    students,
    system_settings,
    teacher_pay,
    teachers,
    webhooks,
)

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    privacy.router,
    students.router,
    parents.router,
    teachers.router,
    lessons.router,
    enrollments.router,
    billing.router,
    dunning.router,
    webhooks.router,
    catalog.router,
    calendar.router,
    system_settings.router,
    communications.router,
    audit.router,
    invoices.router,
    attendance.router,
    teacher_pay.router,
]
