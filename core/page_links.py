"""Where emails send people: paths of the pages for people (``api/pages/``), below ``CEDAR_PUBLIC_BASE_URL``.

Here, not in ``api/``, because the activities that write the emails must not import the API.
"""

from __future__ import annotations

import uuid

FAMILY_PATH = "/family"  # a parent's home: children, lessons, invoices and receipts, payment problems
CARD_PATH = "/family/card"  # update the family's card (pays past-due invoices)
BILLING_SETUP_PATH = "/billing/setup"  # an imported family gives its first card: billing starts
TEACHER_LESSONS_PATH = "/teacher"  # a teacher's lessons: today's and this week's
TEACHER_DEMOS_PATH = "/teacher/demos"  # a teacher's demo lessons, with the outcome's buttons


def enrollment_status_path(enrollment_id: uuid.UUID) -> str:
    """The enrollment's status page, for anyone holding its unguessable id."""
    return f"/enrollments/{enrollment_id}"


def invoice_confirm_path(stripe_invoice_id: str) -> str:
    """Where a signed-in parent is sent on to Stripe's page for confirming an invoice's payment (its link, which
    shows the customer's details, is looked up then and never carried in workflow histories)."""
    return f"/family/invoices/{stripe_invoice_id}/confirm"


def reenrollment_path(semester_id: uuid.UUID) -> str:
    """A signed-in parent's answers to the family's offers for the semester after ``semester_id``."""
    return f"/re-enroll/{semester_id}"
