import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import (
    Account,
    AccountType,
    EntryKind,
    JournalEntry,
    LedgerError,
    LedgerEvent,
    Posting,
    bad_debt_written_off,
    balances_sum_to_zero,
    entries_for,
    entry_key,
    estimate_fee,
    invoice_finalized,
    lesson_completed,
    payment_received,
    payout,
    refund_issued,
    reversal,
    trial_balance,
)

A = Account


def lines(entry: JournalEntry) -> list[tuple[Account, int]]:
    return [(p.account, p.amount) for p in entry.postings]


def test_every_account_has_a_type() -> None:
    assert A.STRIPE_CLEARING.type is AccountType.ASSET
    assert A.DEFERRED_REVENUE.type is AccountType.LIABILITY
    assert A.LESSON_REVENUE.type is AccountType.REVENUE
    assert A.REFUNDS.type is AccountType.CONTRA_REVENUE
    assert A.BAD_DEBT.type is AccountType.EXPENSE
    assert {account.type.debit_normal for account in (A.BANK, A.PROCESSING_FEES, A.REFUNDS)} == {True}
    assert not A.DEFERRED_REVENUE.type.debit_normal
    assert all(isinstance(account.type, AccountType) for account in Account)


def test_invoice_finalized() -> None:
    entry = invoice_finalized("in_1", 12_000)
    assert entry.idempotency_key == "invoice_finalized:in_1"
    assert entry.kind is EntryKind.INVOICE_FINALIZED
    assert lines(entry) == [(A.ACCOUNTS_RECEIVABLE, 12_000), (A.DEFERRED_REVENUE, -12_000)]


def test_payment_received_with_fee() -> None:
    entry = payment_received("ch_1", 12_000, 378)
    assert entry.idempotency_key == "payment_received:ch_1"
    assert lines(entry) == [
        (A.STRIPE_CLEARING, 12_000),
        (A.ACCOUNTS_RECEIVABLE, -12_000),
        (A.PROCESSING_FEES, 378),
        (A.STRIPE_CLEARING, -378),
    ]


def test_payment_received_without_fee_has_no_fee_lines() -> None:
    assert lines(payment_received("ch_2", 5_000, 0)) == [(A.STRIPE_CLEARING, 5_000), (A.ACCOUNTS_RECEIVABLE, -5_000)]


@pytest.mark.parametrize(
    ("entry", "key", "debit", "credit"),
    [
        (lesson_completed("les_1", 3_000), "lesson_completed:les_1", A.DEFERRED_REVENUE, A.LESSON_REVENUE),
        (refund_issued("re_1", 2_500), "refund_issued:re_1", A.REFUNDS, A.STRIPE_CLEARING),
        (bad_debt_written_off("in_7", 9_000), "bad_debt_written_off:in_7", A.BAD_DEBT, A.ACCOUNTS_RECEIVABLE),
        (payout("po_1", 40_000), "payout:po_1", A.BANK, A.STRIPE_CLEARING),
    ],
)
def test_two_line_builders(entry: JournalEntry, key: str, debit: Account, credit: Account) -> None:
    amount = entry.postings[0].amount
    assert entry.idempotency_key == key
    assert lines(entry) == [(debit, amount), (credit, -amount)]


@pytest.mark.parametrize("amount", [0, -1, True, 12.5])
def test_builders_refuse_non_positive_or_non_integer_amounts(amount: int) -> None:
    with pytest.raises(LedgerError):
        invoice_finalized("in_1", amount)
    with pytest.raises(LedgerError):
        payment_received("ch_1", amount, 0)


def test_negative_fee_is_refused() -> None:
    with pytest.raises(LedgerError):
        payment_received("ch_1", 1_000, -1)


def test_unbalanced_entry_is_refused() -> None:
    with pytest.raises(LedgerError, match="unbalanced by 1"):
        JournalEntry("k", EntryKind.PAYOUT, (Posting(A.BANK, 101), Posting(A.STRIPE_CLEARING, -100)))


def test_empty_entry_is_refused() -> None:
    with pytest.raises(LedgerError, match="no postings"):
        JournalEntry("k", EntryKind.PAYOUT, ())


def test_zero_posting_is_refused_even_when_balanced() -> None:
    zero_line = (Posting(A.BANK, 100), Posting(A.STRIPE_CLEARING, -100), Posting(A.BAD_DEBT, 0))
    with pytest.raises(LedgerError, match="zero posting"):
        JournalEntry("k", EntryKind.PAYOUT, zero_line)


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_idempotency_key_length_is_checked(key: str) -> None:
    with pytest.raises(LedgerError):
        JournalEntry(key, EntryKind.PAYOUT, (Posting(A.BANK, 1), Posting(A.STRIPE_CLEARING, -1)))


def test_posting_amount_must_be_an_int() -> None:
    with pytest.raises(LedgerError):
        Posting(A.BANK, 1.0)  # type: ignore[arg-type]
    with pytest.raises(LedgerError):
        Posting(A.BANK, True)


def test_reversal_negates_every_posting() -> None:
    original = payment_received("ch_1", 12_000, 378)
    undo = reversal(original)
    assert undo.idempotency_key == "reversal:payment_received:ch_1"
    assert undo.kind is EntryKind.REVERSAL
    assert lines(undo) == [(account, -amount) for account, amount in lines(original)]
    assert set(trial_balance([original, undo]).values()) == {0}
    assert reversal(original, "reversal:dispute:dp_1").idempotency_key == "reversal:dispute:dp_1"


@pytest.mark.parametrize(
    ("amount", "bps", "fixed", "fee"),
    [
        (10_000, 290, 30, 320),  # 290.0 + 30
        (1_050, 290, 30, 60),  # 30.45 rounds down to 30
        (1_500, 290, 30, 74),  # 43.5 rounds half up to 44
        (1_499, 290, 30, 73),  # 43.471 → 43
        (0, 290, 30, 0),  # no charge, no fee
        (12_000, 0, 0, 0),
    ],
)
def test_estimate_fee_rounds_half_up(amount: int, bps: int, fixed: int, fee: int) -> None:
    assert estimate_fee(amount, bps, fixed) == fee


def test_estimate_fee_refuses_negatives() -> None:
    with pytest.raises(LedgerError):
        estimate_fee(-1, 290, 30)


def test_trial_balance_lists_every_account_and_refuses_duplicates() -> None:
    entries = [invoice_finalized("in_1", 12_000), payment_received("ch_1", 12_000, 378)]
    balances = trial_balance(entries)
    assert set(balances) == set(Account)
    assert balances[A.ACCOUNTS_RECEIVABLE] == 0
    assert balances[A.STRIPE_CLEARING] == 11_622
    assert balances[A.BANK] == 0
    assert balances_sum_to_zero(balances)
    assert not balances_sum_to_zero({A.BANK: 1})
    with pytest.raises(LedgerError, match="twice"):
        trial_balance([*entries, invoice_finalized("in_1", 12_000)])


EVENTS = ["invoice", "payment", "refund", "lesson", "write_off", "payout"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_billing_history_keeps_the_books_balanced(data: st.DataObject) -> None:
    entries: list[JournalEntry] = []
    unpaid: dict[str, int] = {}  # invoice id → amount still owed
    refundable: dict[str, int] = {}  # payment id → amount not yet refunded
    unearned = clearing = fees = refunds = revenue = written_off = paid_out = 0
    for n, event in enumerate(data.draw(st.lists(st.sampled_from(EVENTS), min_size=1, max_size=40))):
        owed = sorted(i for i, amount in unpaid.items() if amount > 0)
        paid = sorted(p for p, amount in refundable.items() if amount > 0)
        if event == "invoice":
            amount = data.draw(st.integers(1, 50_000))
            entry = invoice_finalized(f"in_{n}", amount)
            unpaid[f"in_{n}"] = amount
            unearned += amount
        elif event == "payment" and owed:
            invoice_id = data.draw(st.sampled_from(owed))
            amount = data.draw(st.integers(1, unpaid[invoice_id]))
            fee = data.draw(st.sampled_from([0, estimate_fee(amount, 290, 30)]))
            entry = payment_received(f"ch_{n}", amount, fee)
            unpaid[invoice_id] -= amount
            refundable[f"ch_{n}"] = amount
            clearing += amount - fee
            fees += fee
        elif event == "refund" and paid:
            payment_id = data.draw(st.sampled_from(paid))
            amount = data.draw(st.integers(1, refundable[payment_id]))
            entry = refund_issued(f"re_{n}", amount)
            refundable[payment_id] -= amount
            clearing -= amount
            refunds += amount
        elif event == "lesson" and unearned:
            amount = data.draw(st.integers(1, unearned))
            entry = lesson_completed(f"les_{n}", amount)
            unearned -= amount
            revenue += amount
        elif event == "write_off" and owed:
            invoice_id = data.draw(st.sampled_from(owed))
            entry = bad_debt_written_off(invoice_id, unpaid[invoice_id])
            written_off += unpaid[invoice_id]
            unpaid[invoice_id] = 0
        elif event == "payout" and clearing > 0:
            amount = data.draw(st.integers(1, clearing))
            entry = payout(f"po_{n}", amount)
            clearing -= amount
            paid_out += amount
        else:
            continue
        assert sum(p.amount for p in entry.postings) == 0
        assert all(p.amount != 0 for p in entry.postings)
        entries.append(entry)

    balances = trial_balance(entries)
    assert balances_sum_to_zero(balances)
    assert balances[A.ACCOUNTS_RECEIVABLE] == sum(unpaid.values())
    assert balances[A.DEFERRED_REVENUE] == -unearned
    assert balances[A.LESSON_REVENUE] == -revenue
    assert balances[A.STRIPE_CLEARING] == clearing
    assert balances[A.PROCESSING_FEES] == fees
    assert balances[A.REFUNDS] == refunds
    assert balances[A.BAD_DEBT] == written_off
    assert balances[A.BANK] == paid_out
    # Undoing everything brings every account back to zero.
    assert set(trial_balance([*entries, *(reversal(e) for e in entries)]).values()) == {0}


@pytest.mark.parametrize(
    ("event", "kind", "key", "lines_expected"),
    [
        (
            LedgerEvent("invoice_finalized", "in_1", 12_000),
            EntryKind.INVOICE_FINALIZED,
            "invoice_finalized:in_1",
            [(A.ACCOUNTS_RECEIVABLE, 12_000), (A.DEFERRED_REVENUE, -12_000)],
        ),
        (
            LedgerEvent("invoice_voided", "in_1", 12_000),
            EntryKind.REVERSAL,
            "reversal:invoice_finalized:in_1",
            [(A.ACCOUNTS_RECEIVABLE, -12_000), (A.DEFERRED_REVENUE, 12_000)],
        ),
        (
            LedgerEvent("payment_received", "ch_1", 12_000, fee_minor=378),
            EntryKind.PAYMENT_RECEIVED,
            "payment_received:ch_1",
            [
                (A.STRIPE_CLEARING, 12_000),
                (A.ACCOUNTS_RECEIVABLE, -12_000),
                (A.PROCESSING_FEES, 378),
                (A.STRIPE_CLEARING, -378),
            ],
        ),
        (
            LedgerEvent("refund_issued", "re_1", 5_000),
            EntryKind.REFUND_ISSUED,
            "refund_issued:re_1",
            [(A.REFUNDS, 5_000), (A.STRIPE_CLEARING, -5_000)],
        ),
        (
            LedgerEvent("written_off", "in_2", 7_000),
            EntryKind.BAD_DEBT_WRITTEN_OFF,
            "bad_debt_written_off:in_2",
            [(A.BAD_DEBT, 7_000), (A.ACCOUNTS_RECEIVABLE, -7_000)],
        ),
        (
            LedgerEvent("lesson_completed", "les_1", 3_000),
            EntryKind.LESSON_COMPLETED,
            "lesson_completed:les_1",
            [(A.DEFERRED_REVENUE, 3_000), (A.LESSON_REVENUE, -3_000)],
        ),
    ],
)
def test_posting_rules(
    event: LedgerEvent, kind: EntryKind, key: str, lines_expected: list[tuple[Account, int]]
) -> None:
    (entry,) = entries_for(event)
    assert entry.kind is kind
    assert entry.idempotency_key == key
    assert lines(entry) == lines_expected


@pytest.mark.parametrize("amount", [0, -100])
def test_an_event_without_an_amount_posts_nothing(amount: int) -> None:
    assert entries_for(LedgerEvent("payment_received", "ch_0", amount)) == []


def test_an_unknown_event_kind_has_no_posting_rule() -> None:
    with pytest.raises(LedgerError, match="no posting rule"):
        entries_for(LedgerEvent("teleported", "x_1", 100))  # type: ignore[arg-type]


def test_entry_keys_name_the_kind_and_its_source() -> None:
    assert entry_key(EntryKind.LESSON_COMPLETED, "les_9") == "lesson_completed:les_9"
    assert invoice_finalized("in_9", 100).idempotency_key == entry_key(EntryKind.INVOICE_FINALIZED, "in_9")
