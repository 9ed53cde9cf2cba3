"""Cedar's tables. Importing this package registers every table on ``SQLModel.metadata``."""

from models.billing import (
    BillingAccount,
    Invoice,
    Payment,
    Refund,
    StripeEvent,
    StripeEventStatus,
    Subscription,
)
from models.calendar_feed import CalendarFeed
from models.communication import Communication, CommunicationStatus
from models.enrollment import BillingInterval, Enrollment
from models.identity import OneTimeToken, RateLimitBucket, RefreshToken, Role, TokenPurpose, User
from models.ledger import JournalEntry, LedgerAccount, Posting
from models.lesson import BLOCKING_STATUSES, Lesson, LessonKind, LessonStatus, Substitution
from models.makeup import MakeupCredit
from models.payload_key import PayloadKey, PayloadKeyOwner
from models.people import Parent, Student
from models.privacy import AuditLog, Consent, ConsentKind, ErasureReport
from models.reenrollment import ReenrollmentOffer
from models.school import (
    AcademicYear,
    Closure,
    Instrument,
    LessonRate,
    Semester,
    Teacher,
    TeacherAvailability,
    TeacherTimeOff,
)
from models.system import SystemSetting

__all__ = [
    "BLOCKING_STATUSES",
    "AcademicYear",
    "AuditLog",
    "BillingAccount",
    "BillingInterval",
    "CalendarFeed",
    "Closure",
    "Communication",
    "CommunicationStatus",
    "Consent",
    "ConsentKind",
    "Enrollment",
    "ErasureReport",
    "Instrument",
    "Invoice",
    "JournalEntry",
    "LedgerAccount",
    "Lesson",
    "LessonKind",
    "LessonRate",
    "LessonStatus",
    "MakeupCredit",
    "OneTimeToken",
    "Parent",
    "PayloadKey",
    "PayloadKeyOwner",
    "Payment",
    "Posting",
    "RateLimitBucket",
    "ReenrollmentOffer",
    "RefreshToken",
    "Refund",
    "Role",
    "Semester",
    "StripeEvent",
    "StripeEventStatus",
    "Student",
    "Subscription",
    "Substitution",
    "SystemSetting",
    "Teacher",
    "TeacherAvailability",
    "TeacherTimeOff",
    "TokenPurpose",
    "User",
]
