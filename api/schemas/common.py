"""Base classes and constrained types every request and response schema of the school's API shares."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints, ValidationInfo, field_validator

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32, pattern=r"^[0-9+() .-]+$")]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=2000)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class RequestModel(BaseModel):
    """A request body: unknown fields are rejected (422) rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=2000)


class PatchModel(RequestModel):
    """A partial update: only the fields sent change; ``null`` is refused except for ``nullable`` fields."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    """The one error shape (``api.errors``), documented on every route of the school's API."""

    error: str
    detail: str
    fields: dict[str, str]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a router: each code answers :class:`ErrorOut` (422 included, not FastAPI's shape)."""
    meaning = {
        401: "no valid bearer token",
        403: "the caller's role may not do this",
        404: "not found, or not the caller's to see",
        409: "conflicts with the current state (the reason is in error, the details in fields)",
        422: "invalid request, with a message per field",
    }
    return {code: {"model": ErrorOut, "description": meaning[code]} for code in codes}
