"""The double-entry ledger: accounts, immutable journal entries and their postings (integer minor units)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint
from sqlmodel import Field, SQLModel

from domain.ledger import AccountType
from models.base import created_at_field, id_field, one_of


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (one_of("type", AccountType, "ck_ledger_accounts_type"),)

    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=128)
    type: str = Field(max_length=16)


class JournalEntry(SQLModel, table=True):
    """Never updated or deleted (a trigger refuses it): corrections are reversing entries."""

    __tablename__ = "journal_entries"

    id: uuid.UUID = id_field()
    idempotency_key: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=64, index=True)
    memo: str = Field(default="", max_length=500)
    billing_account_id: uuid.UUID | None = Field(default=None, foreign_key="billing_accounts.id", index=True)
    reverses_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id")
    occurred_at: datetime = created_at_field()
    created_at: datetime = created_at_field()


class Posting(SQLModel, table=True):
    """One line of an entry: positive is a debit, negative a credit; an entry's postings sum to zero."""

    __tablename__ = "postings"
    __table_args__ = (CheckConstraint("amount_minor <> 0", name="ck_postings_nonzero"),)

    id: uuid.UUID = id_field()
    entry_id: uuid.UUID = Field(foreign_key="journal_entries.id", index=True)
    account_code: str = Field(foreign_key="ledger_accounts.code", max_length=64, index=True)
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(default="cad", max_length=3)
