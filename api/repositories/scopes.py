"""What each principal may see, as SQL: every read and write of the school's API starts from these queries.

Admins see everything; a parent their family; a teacher their own profile, lessons and students (anyone they
teach or are assigned to through an enrollment). Rows outside the scope are invisible, so they answer 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, false, select, union
from sqlmodel import col

from api.principal import Principal
from api.repositories.base import owned_by
from models import (
    BillingAccount,
    Communication,
    Consent,
    Enrollment,
    Invoice,
    Lesson,
    Parent,
    Payment,
    Role,
    Student,
    Teacher,
)


def family_student_ids(parent_id: object | None) -> Select[Any]:
    return select(col(Student.id)).where(owned_by(Student.parent_id, parent_id))


def teacher_student_ids(teacher_id: object | None) -> Select[Any]:
    return (
        union(
            select(col(Lesson.student_id)).where(owned_by(Lesson.teacher_id, teacher_id)),
            select(col(Enrollment.student_id)).where(
                owned_by(Enrollment.teacher_id, teacher_id), col(Enrollment.student_id).is_not(None)
            ),
        )
        .subquery()
        .select()
    )


def family_billing_account_ids(parent_id: object | None) -> Select[Any]:
    return select(col(BillingAccount.id)).where(owned_by(BillingAccount.parent_id, parent_id))


def students(principal: Principal) -> Select[Any]:
    query = select(Student)
    if principal.role == Role.parent:
        return query.where(owned_by(Student.parent_id, principal.parent_id))
    if principal.role == Role.teacher:
        return query.where(col(Student.id).in_(teacher_student_ids(principal.teacher_id)))
    return query


def parents(principal: Principal) -> Select[Any]:
    query = select(Parent)
    if principal.role == Role.parent:
        return query.where(owned_by(Parent.id, principal.parent_id))
    if principal.role == Role.teacher:
        return query.where(false())
    return query


def consents(principal: Principal) -> Select[Any]:
    query = select(Consent)
    if principal.role != Role.admin:
        return query.where(owned_by(Consent.parent_id, principal.parent_id))
    return query


def teachers(principal: Principal) -> Select[Any]:
    query = select(Teacher)
    if principal.role != Role.admin:
        return query.where(owned_by(Teacher.id, principal.teacher_id))
    return query


def lessons(principal: Principal) -> Select[Any]:
    query = select(Lesson)
    if principal.role == Role.parent:
        return query.where(col(Lesson.student_id).in_(family_student_ids(principal.parent_id)))
    if principal.role == Role.teacher:
        return query.where(owned_by(Lesson.teacher_id, principal.teacher_id))
    return query


def communications(principal: Principal) -> Select[Any]:
    query = select(Communication)
    if principal.role == Role.parent:
        return query.where(owned_by(Communication.parent_id, principal.parent_id))
    if principal.role == Role.teacher:
        return query.where(owned_by(Communication.teacher_id, principal.teacher_id))
    return query


def invoices(principal: Principal) -> Select[Any]:
    query = select(Invoice)
    if principal.role != Role.admin:
        return query.where(col(Invoice.billing_account_id).in_(family_billing_account_ids(principal.parent_id)))
    return query


def payments(principal: Principal) -> Select[Any]:
    query = select(Payment)
    if principal.role != Role.admin:
        return query.where(col(Payment.billing_account_id).in_(family_billing_account_ids(principal.parent_id)))
    return query


def enrollments(principal: Principal) -> Select[Any]:
    """The office sees every enrollment; a teacher those assigned to them; a family its own."""
    query = select(Enrollment)
    if principal.role == Role.parent:
        return query.where(owned_by(Enrollment.parent_id, principal.parent_id))
    if principal.role == Role.teacher:
        return query.where(owned_by(Enrollment.teacher_id, principal.teacher_id))
    return query
