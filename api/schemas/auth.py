"""Request and response bodies of /api/v1/auth: unknown fields are refused and every string has a length limit."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Accounts exist already: any address-looking string is looked up (a strict validator would lock out valid
# addresses it dislikes, such as reserved test domains).
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
]
Password = Annotated[str, Field(min_length=10, max_length=256, description="10 to 256 characters")]
LoginPassword = Annotated[str, Field(min_length=1, max_length=256)]
OpaqueToken = Annotated[str, Field(min_length=16, max_length=512)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ().-]{7,32}$", max_length=32)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    email: Email
    password: LoginPassword


class RefreshRequest(Strict):
    refresh_token: OpaqueToken


class LogoutRequest(Strict):
    refresh_token: OpaqueToken | None = None


class PasswordResetRequest(Strict):
    email: Email


class NewPasswordRequest(Strict):
    token: OpaqueToken = Field(description="The token from the emailed link")
    password: Password


class SessionUser(BaseModel):
    id: uuid.UUID
    email: str
    role: str


class TokenResponse(BaseModel):
    """Supabase's session shape, so one front end works with either identity provider."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (OAuth's token type, not a secret)
    expires_in: int
    expires_at: int
    refresh_token: str
    user: SessionUser


class Accepted(BaseModel):
    detail: str


class Profile(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    display_name: str | None = None
    bio: str | None = None
    parent_id: uuid.UUID | None = None
    teacher_id: uuid.UUID | None = None


class ProfileUpdate(Strict):
    """Parents may change their name and phone; teachers their name, display name and bio. A field left out stays
    as it is; none may be set to null (the columns are required)."""

    first_name: Name | None = None
    last_name: Name | None = None
    phone: Phone | None = None
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)] | None = None
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # only an explicit null gets here: a left-out field keeps its default unvalidated
            raise ValueError("may not be null; leave the field out to keep it as it is")
        return value
