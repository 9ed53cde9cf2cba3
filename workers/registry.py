"""What the worker runs: every workflow class and every activity object, from one list each.

A capability adds its workflow classes to ``WORKFLOWS`` and its activity classes to ``activity_objects``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from temporalio.client import Client

from activities.billing import BillingActivities
from activities.closures import ClosureActivities
from activities.dunning import DunningActivities
from activities.email import EmailActivities
from activities.enrollment import BillingHandoffActivities, EnrollmentActivities
from activities.erasure import ErasureActivities
from activities.makeup import MakeupActivities
from activities.reconciliation import ReconciliationActivities
from activities.reenrollment import ReenrollmentActivities
from activities.scheduled import ScheduledActivities
from activities.stripe import StripeActivities
from activities.stripe_inbox import StripeInboxActivities
from activities.stripe_lookup import StripeLookupActivities
from activities.teacher_changes import TeacherChangeActivities
from activities.teacher_pay import TeacherPayActivities
from core.db import SessionFactory
from core.identity import IdentityService
from core.mail import Mailer
from core.settings import Settings
from workflows.billing import FamilyBillingWorkflow
from workflows.closures import ClosureWorkflow
from workflows.dunning import FamilyDunningWorkflow
from workflows.enrollment import EnrollmentWorkflow
from workflows.erasure import FamilyErasureWorkflow
from workflows.makeup import LessonCancellationWorkflow, MakeupCreditWorkflow
from workflows.reenrollment import ReenrollmentOpeningWorkflow, ReenrollmentWorkflow
from workflows.retention import RetentionWorkflow
from workflows.scheduled import DunningSweepWorkflow, LessonRemindersWorkflow, ReconciliationWorkflow
from workflows.stripe_catchup import StripeCatchupWorkflow
from workflows.teacher_changes import SubstitutionWorkflow, TeacherTransferWorkflow
from workflows.teacher_pay import TeacherPayWorkflow

WORKFLOWS: list[type] = [
    FamilyDunningWorkflow,
    DunningSweepWorkflow,
    LessonRemindersWorkflow,
    ReconciliationWorkflow,
    EnrollmentWorkflow,
    FamilyBillingWorkflow,
    StripeCatchupWorkflow,
    MakeupCreditWorkflow,
    LessonCancellationWorkflow,
    TeacherPayWorkflow,
    ClosureWorkflow,
    SubstitutionWorkflow,
    TeacherTransferWorkflow,
    ReenrollmentWorkflow,
    ReenrollmentOpeningWorkflow,
    FamilyErasureWorkflow,
    RetentionWorkflow,
]


@dataclass
class WorkerDeps:
    """The clients activities are constructed with (dependency injection, no globals)."""

    settings: Settings
    sessions: SessionFactory
    mailer: Mailer
    stripe: stripe.StripeClient
    identity: IdentityService
    # For activities that start or signal other workflows (e.g. handing an enrollment to billing).
    temporal: Client


def activity_objects(deps: WorkerDeps) -> list[object]:
    """One instance per activity class, each holding the clients it needs."""
    return [
        DunningActivities(deps.sessions, deps.settings),
        ScheduledActivities(
            deps.settings,
            deps.sessions,
            deps.temporal,
            EmailActivities(deps.settings, deps.sessions, deps.mailer, deps.identity),
        ),
        ReconciliationActivities(deps.settings, deps.sessions, deps.temporal, deps.stripe),
        EmailActivities(deps.settings, deps.sessions, deps.mailer, deps.identity),
        EnrollmentActivities(deps.settings, deps.sessions, deps.identity),
        StripeLookupActivities(deps.stripe, deps.settings),
        BillingHandoffActivities(deps.settings, deps.temporal),
        StripeActivities(deps.stripe, deps.settings, deps.sessions),
        BillingActivities(deps.settings, deps.sessions, deps.temporal),
        StripeInboxActivities(deps.stripe, deps.settings, deps.sessions, deps.temporal),
        MakeupActivities(deps.sessions),
        TeacherPayActivities(deps.settings, deps.sessions),
        ClosureActivities(deps.settings, deps.sessions),
        TeacherChangeActivities(deps.settings),
        ReenrollmentActivities(deps.settings, deps.sessions, deps.temporal),
        ErasureActivities(deps.settings, deps.sessions, deps.temporal, deps.stripe, deps.identity),
    ]


def activity_functions(deps: WorkerDeps) -> list[Callable[..., Any]]:
    """Every ``@activity.defn`` bound method of every activity object."""
    return [function for instance in activity_objects(deps) for function in bound_activities(instance)]


def bound_activities(instance: object) -> list[Callable[..., Any]]:
    """The ``@activity.defn`` bound methods of one activity object."""
    members = (getattr(instance, name) for name in dir(type(instance)))
    return [m for m in members if callable(m) and hasattr(m, "__temporal_activity_definition")]
