"""Temporal plumbing shared by the API and the worker: client, data converter, ids and search attributes."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry.trace import Tracer
from temporalio.client import Client, Interceptor
from temporalio.common import HeaderCodecBehavior, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from core.payload_codec import EncryptionCodec
from core.payload_keys import PayloadKeyring, master_keys
from core.settings import Settings
from core.tracing import tracing_interceptor

if TYPE_CHECKING:
    from core.metrics import SdkMetrics

# Search attributes hold states and ids only: the Temporal UI shows them in plain text, so no personal data.
ENROLLMENT_STATE = SearchAttributeKey.for_keyword("CedarEnrollmentState")
DUNNING_STATE = SearchAttributeKey.for_keyword("CedarDunningState")
# A family's re-enrollment: open, answered (every offer has an answer) or closed (the deadline passed).
REENROLLMENT_STATE = SearchAttributeKey.for_keyword("CedarReenrollment")
# A family's billing: "failed-commands" once some work failed after every retry (the office is told), else "ok";
# and "open-invoice" while an invoice is unpaid, else "clear".
BILLING_ATTENTION = SearchAttributeKey.for_keyword("CedarBillingAttention")
BILLING_STATE = SearchAttributeKey.for_keyword("CedarBillingState")
SEARCH_ATTRIBUTES: dict[str, str] = {
    ENROLLMENT_STATE.name: "Keyword",
    DUNNING_STATE.name: "Keyword",
    REENROLLMENT_STATE.name: "Keyword",
    BILLING_ATTENTION.name: "Keyword",
    BILLING_STATE.name: "Keyword",
}


def enrollment_workflow_id(enrollment_id: uuid.UUID | str) -> str:
    return f"enrollment-{enrollment_id}"


def billing_workflow_id(parent_id: uuid.UUID | str) -> str:
    """One billing workflow per family, keyed by the parent (never by an email)."""
    return f"family-billing-{parent_id}"


_DUNNING_PREFIX = "family-dunning-"


def dunning_workflow_id(parent_id: uuid.UUID | str) -> str:
    """One dunning workflow per family (the same key as billing's), alive while the family owes money."""
    return f"{_DUNNING_PREFIX}{parent_id}"


def dunning_workflow_parent(workflow_id: str) -> uuid.UUID:
    """The parent whose dunning workflow has id ``workflow_id`` (the inverse of :func:`dunning_workflow_id`)."""
    return uuid.UUID(workflow_id.removeprefix(_DUNNING_PREFIX))


def makeup_credit_workflow_id(credit_id: uuid.UUID | str) -> str:
    """One workflow per make-up credit, for the credit's whole life."""
    return f"makeup-credit-{credit_id}"


def lesson_cancellation_workflow_id(lesson_id: uuid.UUID | str) -> str:
    """The notices of one cancelled lesson (a lesson is cancelled once)."""
    return f"lesson-cancellation-{lesson_id}"


def closure_workflow_id(closure_id: uuid.UUID | str) -> str:
    """The lessons booked on a closure's days, handled once per closure."""
    return f"closure-{closure_id}"


def substitution_workflow_id(substitution_id: uuid.UUID | str, undone: bool = False) -> str:
    """The notices of a substitution (and, apart, of its undoing)."""
    return f"substitution-{substitution_id}" + ("-undo" if undone else "")


def teacher_transfer_workflow_id(enrollment_id: uuid.UUID | str, from_date: object) -> str:
    """The notices of a student's transfer to another teacher from a date."""
    return f"teacher-transfer-{enrollment_id}-{from_date}"


class TemporalAccessError(ValueError):
    """The Temporal access settings are incomplete or name a file that is not there."""


@dataclass(frozen=True)
class TemporalAccess:
    """How to reach the Temporal server: ``Client.connect``'s namespace, tls and api_key."""

    namespace: str
    tls: bool | TLSConfig
    api_key: str | None


def temporal_access(settings: Settings) -> TemporalAccess:
    """The one place Temporal's TLS and API key are read from settings; every client connects through it."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    files = {
        "CEDAR_TEMPORAL_TLS_CA_CERT_FILE": settings.temporal_tls_ca_cert_file,
        "CEDAR_TEMPORAL_TLS_CLIENT_CERT_FILE": settings.temporal_tls_client_cert_file,
        "CEDAR_TEMPORAL_TLS_CLIENT_KEY_FILE": settings.temporal_tls_client_key_file,
    }
    server_name = settings.temporal_tls_server_name or None
    # Temporal Cloud takes API keys over TLS only; a configured certificate is never silently left unused.
    use_tls = settings.temporal_tls or bool(api_key) or server_name is not None or any(files.values())
    if not use_tls:
        return TemporalAccess(settings.temporal_namespace, False, api_key)
    cert, key = settings.temporal_tls_client_cert_file, settings.temporal_tls_client_key_file
    if (cert is None) != (key is None):
        missing = "CEDAR_TEMPORAL_TLS_CLIENT_KEY_FILE" if key is None else "CEDAR_TEMPORAL_TLS_CLIENT_CERT_FILE"
        raise TemporalAccessError(
            f"{missing} is not set: a client certificate needs its key and the key its certificate"
        )
    contents = {name: _read(name, path) for name, path in files.items() if path is not None}
    if not contents and server_name is None:
        return TemporalAccess(settings.temporal_namespace, True, api_key)
    tls = TLSConfig(
        server_root_ca_cert=contents.get("CEDAR_TEMPORAL_TLS_CA_CERT_FILE"),
        client_cert=contents.get("CEDAR_TEMPORAL_TLS_CLIENT_CERT_FILE"),
        client_private_key=contents.get("CEDAR_TEMPORAL_TLS_CLIENT_KEY_FILE"),
        domain=server_name,
    )
    return TemporalAccess(settings.temporal_namespace, tls, api_key)


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TemporalAccessError(f"{setting}: cannot read {path} ({error.strerror})") from error


def data_converter(settings: Settings, keyring: PayloadKeyring | None = None) -> DataConverter:
    """The one converter of every client, worker, schedule and replayer: pydantic values, then every payload and
    failure message sealed (docs/privacy.md). Without a keyring (no database at hand) payloads are sealed with the
    master key and family data keys cannot be opened."""
    masters = keyring.masters if keyring is not None else master_keys(settings)
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(masters, keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def create_runtime(sdk_metrics: SdkMetrics | None) -> Runtime | None:
    """The process's Temporal runtime, recording the SDK's metrics into ``sdk_metrics`` (None: the SDK's default
    runtime, without metrics). Create one per process: every client and worker of the process shares it."""
    if sdk_metrics is None:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=sdk_metrics.buffer))


async def connect_temporal(
    settings: Settings,
    address: str | None = None,
    *,
    keyring: PayloadKeyring | None = None,
    runtime: Runtime | None = None,
    tracer: Tracer | None = None,
) -> Client:
    """A client on :func:`data_converter`; pass the keyring wherever workflows are started, run or read, so that
    family payloads are sealed with (and opened by) the family's data key. With a tracer, its calls and the
    workflows and activities its workers run join the caller's trace (core/tracing.py)."""
    access = temporal_access(settings)
    interceptors: list[Interceptor] = [tracing_interceptor(tracer)] if tracer is not None else []
    return await Client.connect(
        address or settings.effective_temporal_address,
        namespace=access.namespace,
        tls=access.tls,
        api_key=access.api_key,
        data_converter=data_converter(settings, keyring),
        interceptors=interceptors,
        runtime=runtime,
        # Headers (the trace context) sealed like every other payload: nothing plain reaches a history.
        header_codec_behavior=HeaderCodecBehavior.CODEC,
    )


class LazyTemporalClient:
    """Connects on first use, so the API starts (and reports Temporal as down) while Temporal is away."""

    def __init__(
        self,
        settings: Settings,
        keyring: PayloadKeyring | None = None,
        *,
        runtime: Runtime | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._settings = settings
        self.keyring = keyring
        self._runtime = runtime
        self._tracer = tracer
        self._client: Client | None = None

    async def get(self) -> Client:
        if self._client is None:
            self._client = await connect_temporal(
                self._settings, keyring=self.keyring, runtime=self._runtime, tracer=self._tracer
            )
        return self._client
