"""Double-entry bookkeeping in integer minor units (cents of CAD): debits positive, credits negative.

Every entry balances on its own, so any set of entries balances. Each entry's idempotency key comes from the
Stripe (or Cedar) object that caused it, so recording the same webhook twice cannot post twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "Account",
    "AccountType",
    "EntryKind",
    "JournalEntry",
    "LedgerError",
    "LedgerEvent",
    "LedgerEventKind",
    "Posting",
    "bad_debt_written_off",
    "balances_sum_to_zero",
    "charge_earned",
    "credit_given",
    "entries_for",
    "entry_key",
    "estimate_fee",
    "invoice_finalized",
    "lesson_completed",
    "payment_received",
    "payout",
    "refund_issued",
    "reversal",
    "trial_balance",
    "tuition_returned",
]

MAX_KEY_LENGTH = 255


class LedgerError(ValueError):
    """An entry that would break the books."""


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    CONTRA_REVENUE = "contra_revenue"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        """Whether a healthy balance of this type is a debit (positive)."""
        return self in (AccountType.ASSET, AccountType.EXPENSE, AccountType.CONTRA_REVENUE)


class Account(StrEnum):
    STRIPE_CLEARING = "stripe_clearing"
    BANK = "bank"
    ACCOUNTS_RECEIVABLE = "accounts_receivable"
    DEFERRED_REVENUE = "deferred_revenue"
    LESSON_REVENUE = "lesson_revenue"
    REFUNDS = "refunds"
    PROCESSING_FEES = "processing_fees"
    BAD_DEBT = "bad_debt"
    OTHER_REVENUE = "other_revenue"
    CREDITS_GIVEN = "credits_given"

    @property
    def type(self) -> AccountType:
        return ACCOUNT_TYPES[self]


ACCOUNT_TYPES: dict[Account, AccountType] = {
    Account.STRIPE_CLEARING: AccountType.ASSET,
    Account.BANK: AccountType.ASSET,
    Account.ACCOUNTS_RECEIVABLE: AccountType.ASSET,
    Account.DEFERRED_REVENUE: AccountType.LIABILITY,
    Account.LESSON_REVENUE: AccountType.REVENUE,
    Account.REFUNDS: AccountType.CONTRA_REVENUE,
    Account.PROCESSING_FEES: AccountType.EXPENSE,
    Account.BAD_DEBT: AccountType.EXPENSE,
    Account.OTHER_REVENUE: AccountType.REVENUE,
    Account.CREDITS_GIVEN: AccountType.CONTRA_REVENUE,
}


class EntryKind(StrEnum):
    INVOICE_FINALIZED = "invoice_finalized"
    PAYMENT_RECEIVED = "payment_received"
    LESSON_COMPLETED = "lesson_completed"
    REFUND_ISSUED = "refund_issued"
    BAD_DEBT_WRITTEN_OFF = "bad_debt_written_off"
    PAYOUT = "payout"
    REVERSAL = "reversal"
    CHARGE_EARNED = "charge_earned"
    CREDIT_GIVEN = "credit_given"
    TUITION_RETURNED = "tuition_returned"


@dataclass(frozen=True)
class Posting:
    """One line of an entry: ``amount`` minor units, a debit when positive, a credit when negative."""

    account: Account
    amount: int

    def __post_init__(self) -> None:
        # bool is an int subclass; a True posting is a bug, not one cent.
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise LedgerError(f"posting amounts are integer minor units, got {self.amount!r}")
        object.__setattr__(self, "account", Account(self.account))


@dataclass(frozen=True)
class JournalEntry:
    """A balanced set of postings, recorded at most once per ``idempotency_key``."""

    idempotency_key: str
    kind: EntryKind
    postings: tuple[Posting, ...]
    memo: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "postings", tuple(self.postings))
        object.__setattr__(self, "kind", EntryKind(self.kind))
        if not self.idempotency_key or len(self.idempotency_key) > MAX_KEY_LENGTH:
            raise LedgerError(f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters")
        if not self.postings:
            raise LedgerError(f"entry {self.idempotency_key} has no postings")
        if any(p.amount == 0 for p in self.postings):
            raise LedgerError(f"entry {self.idempotency_key} has a zero posting")
        total = sum(p.amount for p in self.postings)
        if total != 0:
            raise LedgerError(f"entry {self.idempotency_key} is unbalanced by {total}")


def entry_key(kind: EntryKind, source_id: str) -> str:
    """The idempotency key of the ``kind`` entry caused by ``source_id``, e.g. ``invoice_finalized:in_123``."""
    return f"{EntryKind(kind).value}:{source_id}"


def _require_positive(name: str, amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerError(f"{name} must be a positive integer of minor units, got {amount!r}")


def _transfer(kind: EntryKind, source_id: str, debit: Account, credit: Account, amount: int, memo: str) -> JournalEntry:
    _require_positive("amount", amount)
    postings = (Posting(debit, amount), Posting(credit, -amount))
    return JournalEntry(entry_key(kind, source_id), kind, postings, memo)


def invoice_finalized(invoice_id: str, amount: int) -> JournalEntry:
    """The family owes for lessons not yet given: Dr receivable, Cr deferred revenue."""
    return _transfer(
        EntryKind.INVOICE_FINALIZED,
        invoice_id,
        Account.ACCOUNTS_RECEIVABLE,
        Account.DEFERRED_REVENUE,
        amount,
        f"invoice {invoice_id} finalized",
    )


def payment_received(payment_id: str, amount: int, fee: int) -> JournalEntry:
    """Stripe collected ``amount`` and kept ``fee``: Dr clearing / Cr receivable, Dr fees / Cr clearing.

    The fee lines are left out when the fee is 0 (an entry may not hold zero postings).
    """
    _require_positive("amount", amount)
    if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
        raise LedgerError(f"fee must be a non-negative integer of minor units, got {fee!r}")
    postings = [Posting(Account.STRIPE_CLEARING, amount), Posting(Account.ACCOUNTS_RECEIVABLE, -amount)]
    if fee:
        postings += [Posting(Account.PROCESSING_FEES, fee), Posting(Account.STRIPE_CLEARING, -fee)]
    return JournalEntry(
        entry_key(EntryKind.PAYMENT_RECEIVED, payment_id),
        EntryKind.PAYMENT_RECEIVED,
        tuple(postings),
        f"payment {payment_id} received, fee {fee}",
    )


def lesson_completed(lesson_id: str, amount: int) -> JournalEntry:
    """A lesson was given, so its share of the invoice is earned: Dr deferred revenue, Cr lesson revenue."""
    return _transfer(
        EntryKind.LESSON_COMPLETED,
        lesson_id,
        Account.DEFERRED_REVENUE,
        Account.LESSON_REVENUE,
        amount,
        f"lesson {lesson_id} completed",
    )


def refund_issued(refund_id: str, amount: int) -> JournalEntry:
    """Money back to the family: Dr refunds, Cr clearing. Stripe keeps its fee, so fees are untouched."""
    return _transfer(
        EntryKind.REFUND_ISSUED,
        refund_id,
        Account.REFUNDS,
        Account.STRIPE_CLEARING,
        amount,
        f"refund {refund_id} issued",
    )


def tuition_returned(refund_id: str, amount: int) -> JournalEntry:
    """A refund of tuition not yet earned (lessons that will not happen after a student stops): Dr deferred
    revenue, Cr refunds, beside the refund's own entry, so the refund comes out of deferred revenue, not revenue."""
    return _transfer(
        EntryKind.TUITION_RETURNED,
        refund_id,
        Account.DEFERRED_REVENUE,
        Account.REFUNDS,
        amount,
        f"refund {refund_id}: unearned tuition given back",
    )


def bad_debt_written_off(invoice_id: str, amount: int) -> JournalEntry:
    """An invoice we give up collecting: Dr bad debt, Cr receivable."""
    return _transfer(
        EntryKind.BAD_DEBT_WRITTEN_OFF,
        invoice_id,
        Account.BAD_DEBT,
        Account.ACCOUNTS_RECEIVABLE,
        amount,
        f"invoice {invoice_id} written off",
    )


def charge_earned(item_id: str, amount: int) -> JournalEntry:
    """A one-off charge (books, a recital fee) on a paid invoice is earned at once: Dr deferred, Cr other revenue.

    The invoice's finalized entry put its whole amount in deferred revenue; this takes the charge's part out.
    """
    return _transfer(
        EntryKind.CHARGE_EARNED,
        item_id,
        Account.DEFERRED_REVENUE,
        Account.OTHER_REVENUE,
        amount,
        f"one-off charge {item_id} earned",
    )


def credit_given(item_id: str, amount: int) -> JournalEntry:
    """A one-off credit (a negative invoice item) on a paid invoice: Dr credits given (contra-revenue), Cr deferred.

    The invoice was finalized for its net amount; the lessons on it are still earned in full, so the credit is
    booked against revenue rather than against what the lessons are worth.
    """
    return _transfer(
        EntryKind.CREDIT_GIVEN,
        item_id,
        Account.CREDITS_GIVEN,
        Account.DEFERRED_REVENUE,
        amount,
        f"one-off credit {item_id} given",
    )


def payout(payout_id: str, amount: int) -> JournalEntry:
    """Stripe paid out to the bank: Dr bank, Cr clearing (a positive payout; reverse a failed one)."""
    return _transfer(EntryKind.PAYOUT, payout_id, Account.BANK, Account.STRIPE_CLEARING, amount, f"payout {payout_id}")


def reversal(entry: JournalEntry, key: str | None = None) -> JournalEntry:
    """The entry that cancels ``entry`` (every posting negated); key defaults to ``reversal:<its key>``."""
    return JournalEntry(
        key if key is not None else entry_key(EntryKind.REVERSAL, entry.idempotency_key),
        EntryKind.REVERSAL,
        tuple(Posting(p.account, -p.amount) for p in entry.postings),
        f"reversal of {entry.idempotency_key}",
    )


# --- billing's posting rules: a money event → its journal entries ---

LedgerEventKind = Literal[
    "invoice_finalized",
    "invoice_voided",
    "payment_received",
    "refund_issued",
    "written_off",
    "lesson_completed",
    "charge_earned",
    "credit_given",
    "tuition_returned",
]


@dataclass(frozen=True)
class LedgerEvent:
    """A money event as the ledger sees it; ``source_id`` is the Stripe (or Cedar) object that caused it."""

    kind: LedgerEventKind
    source_id: str
    amount_minor: int
    fee_minor: int = 0


def entries_for(event: LedgerEvent) -> list[JournalEntry]:
    """The posting rules of billing: each entry balanced and keyed by its source, so it posts once. An event of
    no amount posts nothing.

    * invoice finalized: Dr receivable / Cr deferred revenue; voided (a finalized invoice cancelled): its reversal;
    * payment received: Dr clearing / Cr receivable, and the fee Dr fees / Cr clearing;
    * refund issued: Dr refunds / Cr clearing; written off: Dr bad debt / Cr receivable;
    * unearned tuition given back (a stop's refund, beside its refund issued): Dr deferred revenue / Cr refunds;
    * lesson completed: Dr deferred revenue / Cr lesson revenue;
    * one-off charge on a paid invoice: Dr deferred revenue / Cr other revenue; one-off credit on a paid invoice
      (a negative item, ``amount_minor`` its size): Dr credits given / Cr deferred revenue.
    """
    if event.amount_minor <= 0:
        return []
    match event.kind:
        case "invoice_finalized":
            return [invoice_finalized(event.source_id, event.amount_minor)]
        case "invoice_voided":
            return [reversal(invoice_finalized(event.source_id, event.amount_minor))]
        case "payment_received":
            return [payment_received(event.source_id, event.amount_minor, event.fee_minor)]
        case "refund_issued":
            return [refund_issued(event.source_id, event.amount_minor)]
        case "written_off":
            return [bad_debt_written_off(event.source_id, event.amount_minor)]
        case "lesson_completed":
            return [lesson_completed(event.source_id, event.amount_minor)]
        case "charge_earned":
            return [charge_earned(event.source_id, event.amount_minor)]
        case "credit_given":
            return [credit_given(event.source_id, event.amount_minor)]
        case "tuition_returned":
            return [tuition_returned(event.source_id, event.amount_minor)]
    raise LedgerError(f"no posting rule for {event.kind!r}")


def estimate_fee(amount: int, percent_bps: int, fixed_minor: int) -> int:
    """Stripe's fee for a charge of ``amount``: ``amount × bps / 10 000`` rounded half up, plus ``fixed``.

    Rounding is half up on the percentage part only, in integers (no floats): 2.9 % of 1 050 is 30.45 → 30,
    of 1 500 is 43.5 → 44. A zero amount is no charge and costs nothing.
    """
    if amount < 0 or percent_bps < 0 or fixed_minor < 0:
        raise LedgerError("amount, percent_bps and fixed_minor cannot be negative")
    if amount == 0:
        return 0
    return (amount * percent_bps + 5_000) // 10_000 + fixed_minor


def trial_balance(entries: Iterable[JournalEntry]) -> dict[Account, int]:
    """Net balance of every account (all accounts present, zero included).

    Refuses two entries with the same idempotency key: counting an event twice is the bug keys prevent.
    """
    balances = dict.fromkeys(Account, 0)
    seen: set[str] = set()
    for entry in entries:
        if entry.idempotency_key in seen:
            raise LedgerError(f"entry {entry.idempotency_key} appears twice")
        seen.add(entry.idempotency_key)
        for posting in entry.postings:
            balances[posting.account] += posting.amount
    return balances


def balances_sum_to_zero(balances: Mapping[Account, int]) -> bool:
    """Whether debits equal credits across all accounts (true of any set of valid entries)."""
    return sum(balances.values()) == 0
