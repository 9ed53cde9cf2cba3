"""Every tunable of Cedar in one typed object, read from the environment (prefix ``CEDAR_``).

Business delays are ``timedelta`` settings so that tests shorten them (``CEDAR_DEMO_MIN_NOTICE=PT2S`` is two
seconds, ISO 8601) instead of sleeping for real.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults, public on purpose: production refuses to start while any of them is set.
DEV_SECRET = "cedar-development-secret-change-me-0123456789"  # noqa: S105
DEV_STRIPE_API_KEY = "sk_test_cedar_local"
DEV_STRIPE_PUBLISHABLE_KEY = "pk_test_cedar_local"
DEV_WEBHOOK_SECRET = "whsec_cedar_local_development"  # noqa: S105
MIN_JWT_SECRET_LENGTH = 32
# The development master key for Temporal payloads (32 bytes, base64), under key id "dev".
DEV_PAYLOAD_KEY_ID = "dev"
DEV_PAYLOAD_KEY = "Y2VkYXItZGV2ZWxvcG1lbnQtcGF5bG9hZC1rZXktMzI="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CEDAR_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".cedar")
    log_level: str = "INFO"

    # --- ports and addresses of the local stack (`./cedar run`) ---
    host: str = "127.0.0.1"
    api_port: int = 8000
    # API processes on api_port (`python -m api.serve`), each with its own listening socket: more than one uses
    # more than one core on a single host.
    api_processes: int = Field(default=1, ge=1)
    # Worker processes `./cedar run` starts (`python -m workers.main` each), as a cluster runs several replicas.
    worker_processes: int = Field(default=1, ge=1)
    postgres_port: int = 5433
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    stripe_port: int = 8420
    smtp_port: int = 1025
    mail_http_port: int = 8025
    public_base_url: str = "http://127.0.0.1:8000"
    # `./cedar run` restarts a child that dies: after restart_backoff_initial, doubling up to restart_backoff_max,
    # back to the initial delay once the child has stayed up for restart_backoff_reset_after. A child that exits
    # within restart_quick_exit of its start restart_max_quick_exits times in a row stops the run instead.
    restart_backoff_initial: timedelta = timedelta(milliseconds=500)
    restart_backoff_max: timedelta = timedelta(seconds=10)
    restart_backoff_reset_after: timedelta = timedelta(minutes=1)
    restart_quick_exit: timedelta = timedelta(seconds=10)
    restart_max_quick_exits: int = Field(default=8, ge=1)

    # --- PostgreSQL: an external database when DATABASE_URL is set, else the embedded one ---
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("CEDAR_DATABASE_URL", "DATABASE_URL"))
    database_name: str = "cedar"
    db_pool_size: int = 10
    # Connections beyond the pool, per process: none by default. SQLAlchemy opens an overflow connection for one
    # checkout and closes it on return, so a burst beyond the pool would pay for a new PostgreSQL connection (a
    # backend process, authentication) on every request, just when CPU is short. Requests queue instead.
    db_max_overflow: int = Field(default=0, ge=0)
    # How long a request or activity waits for a pooled connection before failing (retried, or a 5xx).
    db_pool_timeout: timedelta = timedelta(seconds=30)
    # An API request's longest wait for a lock, and longest statement (PostgreSQL's lock_timeout and
    # statement_timeout on the API's connections): past them the request answers 503 instead of hanging.
    api_db_lock_timeout: timedelta = timedelta(seconds=5)
    api_db_statement_timeout: timedelta = timedelta(seconds=10)
    # Workers' statements: their activities retry, and the nightly reconciliation reads every family at once.
    worker_db_statement_timeout: timedelta = timedelta(minutes=5)

    # --- Temporal ---
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    # TLS to Temporal (Temporal Cloud, an mTLS cluster): any of these, or an API key, turns TLS on.
    temporal_tls: bool = False
    temporal_tls_ca_cert_file: Path | None = None  # empty: the system's root certificates
    temporal_tls_client_cert_file: Path | None = None
    temporal_tls_client_key_file: Path | None = None
    temporal_tls_server_name: str | None = None  # SNI and the name the server's certificate must carry
    temporal_api_key: SecretStr | None = None
    task_queue: str = "cedar"
    # Master keys sealing every Temporal payload (docs/privacy.md): key id -> base64 of 32 bytes, or a JSON file
    # of the same mapping (production); new payloads use payload_key_current, older keys stay listed to read.
    payload_keys: dict[str, SecretStr] = {DEV_PAYLOAD_KEY_ID: SecretStr(DEV_PAYLOAD_KEY)}
    payload_key_current: str = DEV_PAYLOAD_KEY_ID
    payload_keys_file: Path | None = None
    # How long a process trusts an unwrapped data key it holds, so a key destroyed elsewhere stops decoding.
    payload_key_cache_ttl: timedelta = timedelta(minutes=1)
    payload_key_cache_size: int = Field(default=4096, ge=1)
    # Connections an API process keeps for reading and making data keys, apart from its requests' pool.
    payload_key_db_pool_size: int = Field(default=2, ge=1)
    # The Temporal UI's origin: the only one the codec server (/codec) answers CORS for (empty: the dev server's
    # UI, http://{host}:{temporal_ui_port}).
    temporal_ui_origin: str = ""
    # The dev server's UI cannot send a token: in development only, the codec server then serves it unsigned.
    codec_open_in_development: bool = True
    # Enrollments run on a task queue of their own, which the API processes' own workers poll as well as the
    # worker processes; money (billing, dunning) and scheduled work stay on ``task_queue``, which only worker
    # processes poll, so a burst of Stripe events is never worked off inside a process that answers requests.
    # Empty: ``{task_queue}-enrollments``.
    enrollment_task_queue: str = ""
    # Billing's Stripe calls on a queue of their own, whose workers cap their rate for every worker together
    # (Stripe's own rate limit is per account). Empty: on billing's queue, unlimited (tests).
    stripe_task_queue: str = ""
    stripe_calls_per_second: float = Field(default=20.0, gt=0)
    # A worker inside each API process, on the API's own client, for the enrollment queue only: a new
    # enrollment's first workflow task (and its local database steps) then runs eagerly in the process that
    # started it, with no round trip through the server's task queue. Turn this off to keep the API process to
    # HTTP only.
    api_worker: bool = True
    # How long the API waits on Temporal before answering 504: a query, describe or signal (the server, or one
    # workflow task, answers it), and an update (the workflow's own work, Stripe calls included).
    temporal_query_timeout: timedelta = timedelta(seconds=3)
    temporal_update_timeout: timedelta = timedelta(seconds=30)
    # The CPU niceness a worker process takes as it starts (0 leaves it alone). Where workers share a host with
    # the API, requests then win the CPU over background work: a burst of Stripe webhooks is acknowledged while
    # billing works them off. Raising niceness needs no privilege.
    worker_nice: int = Field(default=10, ge=0, le=19)
    # How long a stopping worker (SIGTERM at a deploy) lets its running activities finish before cancelling them;
    # it stops polling at once. Keep the orchestrator's termination grace period longer than this.
    worker_graceful_shutdown: timedelta = timedelta(seconds=30)
    # Activities (and local activities) one worker runs at once. Empty: the database pool's size, so activities
    # wait for a slot in Temporal's queue (visible as schedule-to-start latency) rather than for a connection
    # inside their start-to-close timeout.
    worker_max_concurrent_activities: int | None = Field(default=None, ge=1)
    # Worker Deployment Versioning (docs/operations.md): this release's build id, empty for unversioned workers.
    # Set, every worker (the API's included) joins the deployment ``worker_deployment_name`` (empty: the task
    # queue's name) as this version, and the server hands tasks only to the version made current at deploy.
    worker_build_id: str = ""
    worker_deployment_name: str = ""

    # --- observability (docs/operations.md, "Observability") ---
    # Log lines as JSON (one object a line, with workflow, activity and request ids) or as text. Empty: JSON in
    # production, text elsewhere.
    log_format: Literal["json", "text"] | None = None
    # Temporal's SDK metrics (workflow task failures, schedule-to-start latency...) beside Cedar's own. Empty: on,
    # except in tests, which turn it on where they read them.
    sdk_metrics: bool | None = None
    # GET /metrics answers an admin's bearer token, or this token (for Prometheus's scrape job).
    metrics_token: SecretStr | None = None
    # A worker process serves its metrics (the SDK's and Cedar's) on http://{host}:{port}/metrics; empty: none.
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # Traces go to this OTLP/HTTP endpoint (e.g. http://otel-collector:4318/v1/traces); empty: no export.
    otlp_traces_endpoint: str | None = None

    # --- Stripe (localstripe in development: a base URL; real Stripe when stripe_api_base is empty) ---
    stripe_api_key: str = DEV_STRIPE_API_KEY
    # The browser's key, for Stripe.js on the card form (localstripe takes any ``pk_`` key).
    stripe_publishable_key: str = DEV_STRIPE_PUBLISHABLE_KEY
    stripe_api_base: str | None = None
    stripe_webhook_secrets: list[str] = [DEV_WEBHOOK_SECRET]
    stripe_webhook_tolerance: timedelta = timedelta(seconds=300)
    # The forwarder hands a burst of new events to billing once announcements pause this long (at the latest
    # stripe_handover_max_delay after the first), so that where Temporal shares the host the acknowledgements
    # Stripe waits for go first and billing's work follows. Billing reacts that much later.
    stripe_handover_quiet: timedelta = timedelta(milliseconds=100)
    stripe_handover_max_delay: timedelta = timedelta(seconds=1)
    # Stripe's Canadian domestic card price, used when a charge carries no balance transaction fee.
    stripe_fee_percent_bps: int = 290
    stripe_fee_fixed_minor: int = 30
    # Who retries failed payments: "cedar" (our dunning; turn Smart Retries off in Stripe) or "stripe".
    payment_retries_owner: Literal["cedar", "stripe"] = "cedar"

    # --- Email ---
    smtp_host: str = "127.0.0.1"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_use_tls: bool = False
    smtp_timeout: timedelta = timedelta(seconds=10)
    mail_from: str = "Cedar Heights Music Academy <office@cedarheights.example>"
    # Where the office's reports go (the teacher pay report).
    office_email: str = "office@cedarheights.example"

    # --- The school ---
    school_name: str = "Cedar Heights Music Academy"
    school_timezone: str = "America/Vancouver"
    currency: str = "cad"
    instruments: list[str] = ["piano", "guitar", "bass"]
    lesson_lengths_minutes: list[int] = [30, 45, 60]
    student_min_age: int = 4
    student_max_age: int = 18

    # --- Auth ---
    auth_provider: Literal["builtin", "supabase"] = "builtin"
    jwt_secret: str = DEV_SECRET
    jwt_audience: str = "authenticated"
    jwt_issuer: str = "cedar"
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    # A client retrying a refresh whose answer it lost gets a new token instead of losing its session (Supabase's
    # "reuse interval"); after this, presenting a rotated token revokes its whole family.
    refresh_token_reuse_grace: timedelta = timedelta(seconds=10)
    password_reset_ttl: timedelta = timedelta(hours=1)
    set_password_ttl: timedelta = timedelta(days=7)
    login_rate_limit_per_minute_ip: int = 20
    login_rate_limit_per_minute_account: int = 10
    lockout_after_failures: int = 5
    lockout_duration: timedelta = timedelta(minutes=15)
    # The public enrollment form, per client IP and per parent email, in fixed one-hour windows: each POST sends
    # email and creates Stripe objects. Room for a family's siblings and a school office behind one address.
    enrollment_rate_limit_per_hour_ip: int = Field(default=20, ge=1)
    enrollment_rate_limit_per_hour_email: int = Field(default=5, ge=1)
    # Emails anyone can trigger without signing in (enrollment welcome/waitlist/closed, password reset): at most
    # this many to one address in 24 hours; the rest are recorded as suppressed, not sent.
    public_email_daily_cap_per_address: int = Field(default=5, ge=1)
    supabase_url: str | None = None
    supabase_anon_key: str | None = None
    supabase_service_role_key: str | None = None
    supabase_jwt_secret: str | None = None
    supabase_jwks_url: str | None = None
    # The demo seed's admin (development only: the seed refuses to run in production).
    demo_admin_email: str = "admin@cedarheights.example"
    demo_admin_password: str = "cedar-admin-demo"  # noqa: S105 (the demo seed only, which production refuses)
    # The first admin `python -m scripts.create_admin` makes when no --email is given.
    bootstrap_admin_email: str | None = None

    # --- Reference data (`python -m scripts.reference_data`) ---
    # A JSON file of the school's academic calendar, used instead of the built-in one on a first load.
    reference_data_file: Path | None = None

    # --- API hygiene ---
    cors_origins: list[str] = ["http://localhost:3000", "http://127.0.0.1:3000"]
    max_request_body_bytes: int = 64 * 1024
    # The Retry-After of a 503 or 504 that a retry may well cure (a busy row, a slow workflow).
    api_retry_after: timedelta = timedelta(seconds=2)
    # Sent on every response; the API serves JSON only, so nothing may frame, sniff or load it as a page.
    security_headers: dict[str, str] = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    }

    # People's pages (api/pages/): their own files only, no inline script or style; the card form adds Stripe's
    # origins for its own response.
    page_content_security_policy: str = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )

    # --- Enrollment delays ---
    demo_min_notice: timedelta = timedelta(hours=24)
    demo_search_horizon: timedelta = timedelta(days=28)
    waitlist_timeout: timedelta = timedelta(days=60)
    # How often a waitlisted enrollment looks again for a teacher with freed capacity.
    waitlist_recheck_interval: timedelta = timedelta(hours=6)
    demo_reminder_before: timedelta = timedelta(hours=24)
    teacher_outcome_reminder_after: timedelta = timedelta(hours=4)
    outcome_timeout_after_demo: timedelta = timedelta(days=7)
    parent_cancel_notice: timedelta = timedelta(hours=24)
    # An enrollment for an address that already has a family waits this long for the owner's emailed
    # confirmation, then closes as cancelled.
    family_confirmation_timeout: timedelta = timedelta(days=7)

    # --- The school year: semester end and re-enrollment (docs/school-year.md) ---
    # Re-enrollment opens this long before a semester's last day (the daily schedule, reenrollment_cron, looks).
    reenrollment_lead_time: timedelta = timedelta(days=28)
    # The family's time to answer: the deadline is the opening plus this, unless the office gives one.
    reenrollment_answer_time: timedelta = timedelta(days=14)
    # One reminder to a family with unanswered offers, this long before the deadline.
    reenrollment_reminder_before: timedelta = timedelta(days=3)
    # What an unanswered offer becomes at the deadline: "return" (roll over unless the family opts out) or "end".
    reenrollment_default: Literal["return", "end"] = "return"
    # An active enrollment nobody decided on (no re-enrollment) completes this long after its last lesson.
    semester_end_grace: timedelta = timedelta(days=21)
    reenrollment_cron: str = "0 7 * * *"

    # --- Cancellations and make-up credits (defaults; the office overrides them in the ``makeup_policy``
    # system setting: docs/lessons.md) ---
    # A family cancelling at least parent_cancel_notice before a lesson earns a make-up credit, later forfeits it.
    makeup_credit_lifetime: timedelta = timedelta(days=60)
    makeup_reminder_before: timedelta = timedelta(days=7)
    makeup_min_notice: timedelta = timedelta(hours=2)
    makeup_booking_horizon: timedelta = timedelta(days=28)
    # Whether a make-up may be booked with any active teacher of the instrument, not only the student's own.
    makeup_any_teacher: bool = False
    # Open slots offered for one credit, at most.
    makeup_slots_limit: int = 200

    # --- Billing ---
    sibling_discount_percent: int = 10
    stop_lessons_mode: Literal["period_end", "immediate"] = "period_end"
    billing_continue_as_new_events: int = 500
    # A billing command that failed with nobody waiting on it is tried again after this, doubling each time, up to
    # `billing_command_attempts` tries in all; then the family is flagged (CedarBillingAttention) and the office told.
    billing_command_retry_after: timedelta = timedelta(minutes=5)
    billing_command_attempts: int = Field(default=4, ge=1)
    # Tries of a receipt email sent by billing before it is given up (logged and flagged, never blocking billing).
    billing_email_attempts: int = Field(default=5, ge=1)
    # How long the enrollment's hand-off waits for billing to answer whether the student's billing started.
    billing_start_timeout: timedelta = timedelta(minutes=10)
    # How often the hand-off tells Temporal it is still waiting (its heartbeat timeout is three times this).
    billing_start_heartbeat: timedelta = timedelta(seconds=10)
    # A one-off registration fee charged once per enrollment when its billing starts (0: none), on the family's
    # first lessons invoice (`first_invoice`) or on its own invoice paid at once (`now`).
    registration_fee_minor: int = Field(default=0, ge=0)
    registration_fee_when: Literal["first_invoice", "now"] = "first_invoice"
    # What each billing period holding lessons costs (domain/tuition.py): the plan's price with the first and last
    # period prorated by their lessons, the plan's price for every month holding lessons, or per lesson.
    tuition_rule: Literal["prorated", "monthly_flat", "per_lesson"] = "prorated"

    # --- Dunning (days from the earliest unpaid invoice) ---
    dunning_warning_after: timedelta = timedelta(days=3)
    dunning_suspend_after: timedelta = timedelta(days=14)
    dunning_cancel_after: timedelta = timedelta(days=21)
    dunning_retry_offsets: list[timedelta] = [
        timedelta(days=1),
        timedelta(days=4),
        timedelta(days=9),
        timedelta(days=16),
    ]
    # A payment whose outcome was lost is re-checked with Stripe (never blindly retried) after this long.
    dunning_unknown_recheck_after: timedelta = timedelta(minutes=5)

    # --- Temporal Schedules (cron in the school's timezone) ---
    schedule_catchup_window: timedelta = timedelta(days=1)
    # The longest a scheduled run may take before Temporal times it out, so a stuck run never blocks the next
    # ones (each schedule skips a firing while its previous run is open).
    schedule_execution_timeout: timedelta = timedelta(hours=6)
    dunning_sweep_cron: str = "0 9 * * *"
    lesson_reminder_cron: str = "0 17 * * *"
    webhook_catchup_cron: str = "*/15 * * * *"
    reconciliation_cron: str = "30 2 * * *"
    # Scheduled batch work runs in pages, each one activity that heartbeats its progress (docs/operations.md).
    lesson_reminder_page_size: int = Field(default=100, ge=1)
    reconciliation_page_size: int = Field(default=50, ge=1)
    stripe_catchup_page_size: int = Field(default=100, ge=1, le=100)  # Stripe lists at most 100 at a time
    # The teacher pay report (domain/teacher_pay.py): emailed to office_email for the last complete period when
    # this fires; keep the cron in step with the period (semi-monthly: the 1st and the 16th).
    teacher_pay_cron: str = "0 6 1,16 * *"
    teacher_pay_period: Literal["semi_monthly", "monthly", "weekly"] = "semi_monthly"

    # --- Retention (docs/privacy.md): the nightly RetentionWorkflow applies these ---
    retention_cron: str = "15 3 * * *"
    # A family with no live enrollment and no activity for this many years is erased (its money records stay).
    retention_closed_family_years: int = Field(default=7, ge=1)
    # Audit rows older than this are deleted, except those about money records and erasures (the legal hold).
    retention_audit_years: int = Field(default=7, ge=1)
    # A processed Stripe webhook's payload is blanked after this many days (its id, type and customer id stay).
    retention_webhook_payload_days: int = Field(default=90, ge=1)
    # How long Temporal keeps a closed workflow's history (the namespace's retention); None leaves it alone.
    temporal_namespace_retention: timedelta | None = timedelta(days=30)

    # --- Teacher pay and attendance ---
    # The school's rule: a lesson the student missed without an excuse (absent, no-show) is paid to the teacher.
    teacher_pay_forfeited_lessons: bool = True
    # The longest period an attendance or pay report may cover.
    report_max_days: int = Field(default=366, ge=1)

    @field_validator(
        "temporal_tls_ca_cert_file",
        "temporal_tls_client_cert_file",
        "temporal_tls_client_key_file",
        "temporal_tls_server_name",
        "temporal_api_key",
        "bootstrap_admin_email",
        "reference_data_file",
        "payload_keys_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes an optional variable left out as an empty string, which is no file path.
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Settings:
        problems = production_problems(self)
        if problems:
            raise ValueError("refusing to run in production with: " + "; ".join(problems))
        return self

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.school_timezone)

    @property
    def worker_activity_slots(self) -> int:
        return self.worker_max_concurrent_activities or self.db_pool_size

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.environment == "production" else "text")

    @property
    def effective_sdk_metrics(self) -> bool:
        return self.environment != "test" if self.sdk_metrics is None else self.sdk_metrics

    @property
    def enrollment_queue(self) -> str:
        return self.enrollment_task_queue or f"{self.task_queue}-enrollments"

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy (asyncpg) URL of the database the app uses."""
        url = self.database_url or (f"postgresql://postgres@{self.host}:{self.postgres_port}/{self.database_name}")
        return to_asyncpg_url(url)

    @property
    def effective_temporal_ui_origin(self) -> str:
        return (self.temporal_ui_origin or f"http://{self.host}:{self.temporal_ui_port}").rstrip("/")

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"{self.host}:{self.temporal_port}"

    @property
    def effective_stripe_api_base(self) -> str | None:
        if self.stripe_api_base == "":
            return None
        if self.stripe_api_base is None and self.environment != "production":
            return f"http://{self.host}:{self.stripe_port}"
        return self.stripe_api_base

    @property
    def stripe_js_url(self) -> str:
        """Stripe.js for the card form: localstripe's stand-in in development and tests, else Stripe's own."""
        base = self.effective_stripe_api_base
        if self.environment != "production" and base:
            return f"{base.rstrip('/')}/js.stripe.com/v3/"
        return "https://js.stripe.com/v3/"

    @property
    def uses_localstripe(self) -> bool:
        """localstripe is only ever reached through an explicit base URL outside production."""
        return self.environment != "production" and self.effective_stripe_api_base is not None

    @property
    def mail_http_url(self) -> str:
        return f"http://{self.host}:{self.mail_http_port}"


def production_problems(settings: Settings) -> list[str]:
    """Every development default or unsafe value a production deployment still has, one line each."""
    if settings.environment != "production":
        return []
    problems = []
    if settings.jwt_secret == DEV_SECRET:
        problems.append("CEDAR_JWT_SECRET is the development secret")
    elif len(settings.jwt_secret) < MIN_JWT_SECRET_LENGTH:
        problems.append(f"CEDAR_JWT_SECRET is shorter than {MIN_JWT_SECRET_LENGTH} characters")
    if not settings.stripe_webhook_secrets:
        problems.append("CEDAR_STRIPE_WEBHOOK_SECRETS is empty")
    elif DEV_WEBHOOK_SECRET in settings.stripe_webhook_secrets:
        problems.append("CEDAR_STRIPE_WEBHOOK_SECRETS holds the development secret")
    if not settings.stripe_api_key:
        problems.append("CEDAR_STRIPE_API_KEY is empty")
    elif settings.stripe_api_key == DEV_STRIPE_API_KEY:
        problems.append("CEDAR_STRIPE_API_KEY is the localstripe key")
    if not settings.stripe_publishable_key:
        problems.append("CEDAR_STRIPE_PUBLISHABLE_KEY is empty")
    elif settings.stripe_publishable_key == DEV_STRIPE_PUBLISHABLE_KEY:
        problems.append("CEDAR_STRIPE_PUBLISHABLE_KEY is the localstripe key")
    if settings.stripe_api_base:
        problems.append("CEDAR_STRIPE_API_BASE is set (leave it empty: real Stripe)")
    if settings.payload_keys_file is None:
        if any(_secret(value) == DEV_PAYLOAD_KEY for value in settings.payload_keys.values()):
            problems.append("CEDAR_PAYLOAD_KEYS holds the development key")
        if settings.payload_key_current not in settings.payload_keys:
            problems.append("CEDAR_PAYLOAD_KEY_CURRENT is not one of CEDAR_PAYLOAD_KEYS")
    url = urlsplit(settings.public_base_url)
    if url.scheme != "https":
        problems.append("CEDAR_PUBLIC_BASE_URL is not https")
    if _is_local_host(url.hostname or ""):
        problems.append("CEDAR_PUBLIC_BASE_URL points at this machine")
    return problems


def _secret(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _is_local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def to_libpq_url(url: str) -> str:
    """The same database as a plain ``postgresql://`` URL, for a bare asyncpg connection."""
    return "postgresql://" + to_asyncpg_url(url).removeprefix("postgresql+asyncpg://")


def get_settings() -> Settings:
    return Settings()
