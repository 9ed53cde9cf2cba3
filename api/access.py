"""Which roles may call each route: ``(METHOD, path template) -> roles`` from {public, parent, teacher, admin}.

A test generated from the app's route table fails for any route without a declared rule here.
"""

from __future__ import annotations

ROUTE_ACCESS: dict[tuple[str, str], frozenset[str]] = {
    # privacy (PIPEDA access and erasure)
    ("GET", "/api/v1/privacy/export"): frozenset({"parent"}),
    ("GET", "/api/v1/parents/{parent_id}/export"): frozenset({"admin"}),
    ("POST", "/api/v1/parents/{parent_id}/erasure"): frozenset({"admin"}),
    ("GET", "/api/v1/parents/{parent_id}/erasure"): frozenset({"admin"}),
    # the Temporal UI's codec server (api/routes/codec.py)
    ("POST", "/codec/decode"): frozenset({"admin"}),
    ("POST", "/codec/encode"): frozenset({"admin"}),
}

# --- The school's API (students, parents, teachers) ---
_FAMILY_AND_STAFF = frozenset({"admin", "teacher", "parent"})
_FAMILY = frozenset({"admin", "parent"})
_STAFF = frozenset({"admin", "teacher"})
_ADMIN = frozenset({"admin"})
_PUBLIC = frozenset({"public", "parent", "teacher", "admin"})
ROUTE_ACCESS.update(
    {
        ("GET", "/api/v1/students"): _FAMILY_AND_STAFF,
        ("POST", "/api/v1/students"): _ADMIN,
        ("GET", "/api/v1/students/{student_id}"): _FAMILY_AND_STAFF,
        ("PATCH", "/api/v1/students/{student_id}"): _FAMILY,
        ("DELETE", "/api/v1/students/{student_id}"): _ADMIN,
        ("GET", "/api/v1/parents"): _ADMIN,
        ("POST", "/api/v1/parents"): _ADMIN,
        ("GET", "/api/v1/parents/{parent_id}"): _FAMILY,
        ("PATCH", "/api/v1/parents/{parent_id}"): _FAMILY,
        ("DELETE", "/api/v1/parents/{parent_id}"): _ADMIN,
        ("GET", "/api/v1/parents/{parent_id}/consents"): _FAMILY,
        ("POST", "/api/v1/parents/{parent_id}/consents"): _FAMILY,
        ("GET", "/api/v1/teachers"): _ADMIN,
        ("POST", "/api/v1/teachers"): _ADMIN,
        ("GET", "/api/v1/teachers/{teacher_id}"): _STAFF,
        ("PATCH", "/api/v1/teachers/{teacher_id}"): _STAFF,
        ("DELETE", "/api/v1/teachers/{teacher_id}"): _ADMIN,
        ("GET", "/api/v1/teachers/{teacher_id}/availability"): _STAFF,
        ("PUT", "/api/v1/teachers/{teacher_id}/availability"): _STAFF,
        ("GET", "/api/v1/teachers/{teacher_id}/time-off"): _STAFF,
        ("POST", "/api/v1/teachers/{teacher_id}/time-off"): _STAFF,
        ("DELETE", "/api/v1/teachers/{teacher_id}/time-off/{time_off_id}"): _STAFF,
        # Teacher changes (api/routes/teacher_changes.py): the office's
        ("POST", "/api/v1/teachers/{teacher_id}/substitutions"): _ADMIN,
        ("DELETE", "/api/v1/teachers/{teacher_id}/substitutions/{substitution_id}"): _ADMIN,
        ("POST", "/api/v1/enrollments/{enrollment_id}/transfer"): _ADMIN,
        ("GET", "/api/v1/lessons"): _FAMILY_AND_STAFF,
        ("POST", "/api/v1/lessons"): _STAFF,
        ("GET", "/api/v1/lessons/{lesson_id}"): _FAMILY_AND_STAFF,
        ("PATCH", "/api/v1/lessons/{lesson_id}"): _STAFF,
        ("POST", "/api/v1/lessons/{lesson_id}/reschedule"): _STAFF,
        ("POST", "/api/v1/lessons/{lesson_id}/cancel"): _FAMILY_AND_STAFF,
        ("POST", "/api/v1/lessons/{lesson_id}/complete"): _STAFF,
        ("POST", "/api/v1/lessons/{lesson_id}/no-show"): _STAFF,
        ("GET", "/api/v1/makeups/credits"): _FAMILY,
        ("POST", "/api/v1/makeups/credits"): _ADMIN,
        ("GET", "/api/v1/makeups/credits/{credit_id}/slots"): _FAMILY,
        ("POST", "/api/v1/makeups/credits/{credit_id}/book"): _FAMILY,
        ("POST", "/api/v1/makeups/credits/{credit_id}/extend"): _ADMIN,
        ("POST", "/api/v1/makeups/credits/{credit_id}/void"): _ADMIN,
        # Attendance (api/routes/attendance.py): a teacher marks and totals only their own lessons
        ("POST", "/api/v1/lessons/{lesson_id}/attendance"): _STAFF,
        ("GET", "/api/v1/attendance/students"): _STAFF,
        ("GET", "/api/v1/attendance/students.csv"): _STAFF,
        ("GET", "/api/v1/attendance/teachers"): _STAFF,
        ("GET", "/api/v1/attendance/teachers.csv"): _STAFF,
        # Teacher pay (api/routes/teacher_pay.py): the office and payroll
        ("GET", "/api/v1/teacher-pay/report"): _ADMIN,
        ("GET", "/api/v1/teacher-pay/report.csv"): _ADMIN,
        # The owner's reports (api/routes/reports.py), each as JSON and CSV
        ("GET", "/api/v1/reports/revenue"): _ADMIN,
        ("GET", "/api/v1/reports/revenue.csv"): _ADMIN,
        ("GET", "/api/v1/reports/receivables"): _ADMIN,
        ("GET", "/api/v1/reports/receivables.csv"): _ADMIN,
        ("GET", "/api/v1/reports/retention"): _ADMIN,
        ("GET", "/api/v1/reports/retention.csv"): _ADMIN,
        ("GET", "/api/v1/reports/attendance"): _ADMIN,
        ("GET", "/api/v1/reports/attendance.csv"): _ADMIN,
        ("GET", "/api/v1/reports/makeup-credits"): _ADMIN,
        ("GET", "/api/v1/reports/makeup-credits.csv"): _ADMIN,
        ("GET", "/api/v1/academic-years"): _PUBLIC,
        ("POST", "/api/v1/academic-years"): _ADMIN,
        ("GET", "/api/v1/academic-years/{year_id}"): _PUBLIC,
        ("PATCH", "/api/v1/academic-years/{year_id}"): _ADMIN,
        ("DELETE", "/api/v1/academic-years/{year_id}"): _ADMIN,
        ("POST", "/api/v1/academic-years/{year_id}/semesters"): _ADMIN,
        ("PATCH", "/api/v1/semesters/{semester_id}"): _ADMIN,
        ("DELETE", "/api/v1/semesters/{semester_id}"): _ADMIN,
        ("GET", "/api/v1/closures"): _PUBLIC,
        ("POST", "/api/v1/academic-years/{year_id}/closures"): _ADMIN,
        ("GET", "/api/v1/closures/{closure_id}"): _PUBLIC,
        ("PATCH", "/api/v1/closures/{closure_id}"): _ADMIN,
        ("DELETE", "/api/v1/closures/{closure_id}"): _ADMIN,
        ("GET", "/api/v1/instruments"): _PUBLIC,
        ("POST", "/api/v1/instruments"): _ADMIN,
        ("PATCH", "/api/v1/instruments/{code}"): _ADMIN,
        ("GET", "/api/v1/rates"): _PUBLIC,
        ("POST", "/api/v1/rates"): _ADMIN,
        ("PATCH", "/api/v1/rates/{rate_id}"): _ADMIN,
        ("DELETE", "/api/v1/rates/{rate_id}"): _ADMIN,
        ("GET", "/api/v1/catalog/teachers"): _PUBLIC,
        ("GET", "/api/v1/catalog/teachers/{teacher_id}"): _PUBLIC,
        ("GET", "/api/v1/enrollment-options"): _PUBLIC,
        ("GET", "/api/v1/system-settings"): _ADMIN,
        ("GET", "/api/v1/system-settings/{key}"): _ADMIN,
        ("PUT", "/api/v1/system-settings/{key}"): _ADMIN,
        ("DELETE", "/api/v1/system-settings/{key}"): _ADMIN,
        ("GET", "/api/v1/communications"): _FAMILY_AND_STAFF,
        ("GET", "/api/v1/communications/{communication_id}"): _FAMILY_AND_STAFF,
        ("GET", "/api/v1/audit-log"): _ADMIN,
        ("GET", "/api/v1/invoices"): _FAMILY,
        ("GET", "/api/v1/invoices/{invoice_id}"): _FAMILY,
        ("GET", "/api/v1/payments"): _FAMILY,
        ("GET", "/api/v1/payments/{payment_id}"): _FAMILY,
    }
)

# --- Calendar feeds (api/routes/calendar_feeds.py): the owner sees and issues its URL, an admin may revoke any;
# the feed itself is public, for whoever holds the secret URL (404 when unknown or revoked). ---
_PARENT_OR_ADMIN = frozenset({"parent", "admin"})
_TEACHER_OR_ADMIN = frozenset({"teacher", "admin"})
ROUTE_ACCESS.update(
    {
        ("GET", "/api/v1/parents/{parent_id}/calendar-feed"): frozenset({"parent"}),
        ("POST", "/api/v1/parents/{parent_id}/calendar-feed"): frozenset({"parent"}),
        ("DELETE", "/api/v1/parents/{parent_id}/calendar-feed"): _PARENT_OR_ADMIN,
        ("GET", "/api/v1/teachers/{teacher_id}/calendar-feed"): frozenset({"teacher"}),
        ("POST", "/api/v1/teachers/{teacher_id}/calendar-feed"): frozenset({"teacher"}),
        ("DELETE", "/api/v1/teachers/{teacher_id}/calendar-feed"): _TEACHER_OR_ADMIN,
        ("GET", "/calendar/{secret}.ics"): _PUBLIC,
    }
)

# --- Enrollment (api/routes/enrollments.py): the form and its status page are public (by unguessable id) ---
ROUTE_ACCESS.update(
    {
        ("POST", "/api/v1/enrollments"): _PUBLIC,
        ("GET", "/api/v1/enrollments"): _STAFF,
        ("GET", "/api/v1/enrollments/{enrollment_id}"): _PUBLIC,
        ("POST", "/api/v1/enrollments/{enrollment_id}/demo-outcome"): _STAFF,
        ("POST", "/api/v1/enrollments/{enrollment_id}/cancel"): _FAMILY,
        ("POST", "/api/v1/enrollments/{enrollment_id}/assign-teacher"): _ADMIN,
        # The existing family's answer: anyone holding the emailed link's token.
        ("POST", "/api/v1/enrollments/{enrollment_id}/family-confirmation"): _PUBLIC,
    }
)

# --- Identity (api/routes/auth.py) and the app's own pages ---
_ANYONE = frozenset({"public", "parent", "teacher", "admin"})
_SIGNED_IN = frozenset({"parent", "teacher", "admin"})
ROUTE_ACCESS.update(
    {
        ("GET", "/health"): _ANYONE,
        # Prometheus's scrape: an admin, or the bearer token CEDAR_METRICS_TOKEN (api/routes/metrics.py)
        ("GET", "/metrics"): frozenset({"admin"}),
        ("GET", "/openapi.json"): _ANYONE,
        ("GET", "/docs"): _ANYONE,
        ("GET", "/docs/oauth2-redirect"): _ANYONE,
        ("GET", "/redoc"): _ANYONE,
        ("POST", "/api/v1/auth/login"): _ANYONE,
        ("POST", "/api/v1/auth/refresh"): _ANYONE,
        ("POST", "/api/v1/auth/logout"): _SIGNED_IN,
        ("GET", "/api/v1/auth/me"): _SIGNED_IN,
        ("PATCH", "/api/v1/auth/me"): _SIGNED_IN,
        ("POST", "/api/v1/auth/password-reset"): _ANYONE,
        ("POST", "/api/v1/auth/password-reset/confirm"): _ANYONE,
        ("POST", "/api/v1/auth/set-password"): _ANYONE,
    }
)

# --- People's pages (api/pages/): the same roles as the API they call. A page for a role not allowed answers a
# redirect to /sign-in when nobody is signed in, 403 for another role; every POST also needs its CSRF token. ---
_PARENT = frozenset({"parent"})
ROUTE_ACCESS.update(
    {
        ("GET", "/static/{name}"): _ANYONE,
        ("GET", "/sign-in"): _ANYONE,
        ("POST", "/sign-in"): _ANYONE,
        ("POST", "/sign-out"): _ANYONE,
        # The pages emailed links open, for whoever holds the link's secret (api/pages/links.py)
        ("GET", "/set-password"): _ANYONE,
        ("POST", "/set-password"): _ANYONE,
        ("GET", "/reset-password"): _ANYONE,
        ("POST", "/reset-password"): _ANYONE,
        ("GET", "/confirm-enrollment"): _ANYONE,
        ("POST", "/confirm-enrollment"): _ANYONE,
        ("GET", "/enrollments/{enrollment_id}"): _ANYONE,
        # A family's own pages (api/pages/family.py)
        ("GET", "/family"): _PARENT,
        ("GET", "/family/card"): _PARENT,
        ("POST", "/family/card"): _PARENT,
        ("POST", "/family/lessons/{lesson_id}/cancel"): _PARENT,
        ("GET", "/family/makeups/{credit_id}"): _PARENT,
        ("POST", "/family/makeups/{credit_id}/book"): _PARENT,
        ("GET", "/family/payments/{payment_id}"): _PARENT,
        ("GET", "/family/invoices/{stripe_invoice_id}/confirm"): _PARENT,
        ("GET", "/family/enroll"): _PARENT,
        ("POST", "/family/enroll"): _PARENT,
        ("GET", "/family/privacy"): _PARENT,
        ("POST", "/family/consents"): _PARENT,
        ("GET", "/family/privacy/export"): _PARENT,
        ("POST", "/family/calendar-feed"): _PARENT,
        ("POST", "/family/calendar-feed/revoke"): _PARENT,
    }
)

# --- The staff's pages: a teacher's (api/pages/teacher.py) and the office's (api/pages/office.py) ---
_TEACHER = frozenset({"teacher"})
ROUTE_ACCESS.update(
    {
        ("GET", "/"): _ANYONE,  # the emails' footer: a redirect home, or to the sign-in form (api/pages/home.py)
        ("GET", "/teacher"): _TEACHER,
        ("GET", "/teacher/demos"): _TEACHER,
        ("POST", "/teacher/calendar-feed"): _TEACHER,
        ("POST", "/teacher/calendar-feed/revoke"): _TEACHER,
        ("POST", "/teacher/demos/{enrollment_id}/outcome"): _TEACHER,
        ("POST", "/teacher/lessons/{lesson_id}/attendance"): _TEACHER,
        ("GET", "/office/enrollments"): _ADMIN,
        ("GET", "/office/arrears"): _ADMIN,
        ("GET", "/office/teacher-changes"): _ADMIN,
        ("POST", "/office/teacher-changes/closure"): _ADMIN,
        ("POST", "/office/teacher-changes/substitution"): _ADMIN,
        ("POST", "/office/teacher-changes/substitutions/{substitution_id}/undo"): _ADMIN,
        ("POST", "/office/teacher-changes/transfer"): _ADMIN,
        ("GET", "/office/arrears/{parent_id}"): _ADMIN,
        **{
            ("POST", f"/office/arrears/{{parent_id}}/{action}"): _ADMIN
            for action in ("pause", "resume", "retry-now", "forgive")
        },
    }
)

# One-off charges and credits (api/routes/billing.py): the family's billing workflow makes them, an admin asks
ROUTE_ACCESS[("POST", "/api/v1/billing/families/{parent_id}/charges")] = _ADMIN

# Re-enrollment (api/routes/reenrollments.py): the office opens it and reads the answers; a family answers its own
ROUTE_ACCESS.update(
    {
        ("POST", "/api/v1/semesters/{semester_id}/reenrollment"): _ADMIN,
        ("GET", "/api/v1/semesters/{semester_id}/reenrollment"): _ADMIN,
        ("GET", "/api/v1/semesters/{semester_id}/schedule"): _STAFF,
        ("GET", "/api/v1/reenrollments/{reenrollment_id}"): _FAMILY,
        ("POST", "/api/v1/reenrollments/{reenrollment_id}/answers"): _FAMILY,
        ("GET", "/re-enroll/{semester_id}"): _PARENT,
        ("POST", "/re-enroll/{semester_id}"): _PARENT,
    }
)
