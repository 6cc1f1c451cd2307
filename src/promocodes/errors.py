"""Domain errors. Each carries a stable slug (the problem ``type``) and its HTTP status,
so the API, the web UI and the CLI all report the same thing the same way."""

from __future__ import annotations

from typing import Any


def field_of(error: Any, whole: str = "body") -> str:
    """Where a pydantic validation error is: its location (a request's ``body`` left
    out), and below it the path a validator names in the error's context (a segment's
    filter limits name the node, ``filter.filters[3].value``; a JSON value the key,
    ``attributes.n``; a check of the whole body, the field it names). ``whole``: the name
    of an error of the whole thing."""
    field = ".".join(str(p) for p in error["loc"] if p != "body")
    inner = (error.get("ctx") or {}).get("path")
    if not isinstance(inner, str) or not inner:
        return field or whole
    if not field:  # a validator of the whole that names one of its fields
        return inner
    return f"{field}{inner}" if inner.startswith("[") else f"{field}.{inner}"


def message_of(error: Any) -> str:
    """A pydantic validation error's message. A length limit on text checked by a
    validator of its own (``text.Text``) reaches pydantic as a limit on "items"; said
    in characters, as pydantic says it of plain strings."""
    ctx = error.get("ctx") or {}
    if error.get("type") in ("too_long", "too_short") and isinstance(error.get("input"), str):
        if error["type"] == "too_long":
            limit = f"at most {ctx.get('max_length')}"
        else:
            limit = f"at least {ctx.get('min_length')}"
        return f"should have {limit} characters, not {ctx.get('actual_length')}"
    return str(error["msg"])


class DomainError(Exception):
    slug = "error"
    status = 400
    title = "Request failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    slug = "not-found"
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    slug = "forbidden"
    status = 403
    title = "Not allowed"


class Conflict(DomainError):
    slug = "conflict"
    status = 409
    title = "Conflict"


class ValidationFailed(DomainError):
    slug = "validation-error"
    status = 422
    title = "Validation failed"


class PayloadTooLarge(DomainError):
    """A request body (or one field of a form) over its limit: refused with 413 wherever
    it is noticed, while the body streams or after."""

    slug = "payload-too-large"
    status = 413
    title = "Request body too large"

    def __init__(self, limit: int, detail: str | None = None) -> None:
        super().__init__(detail or f"the request body is larger than {limit:,} bytes")
        self.limit = limit


class GroupNotFound(NotFound):
    slug = "group-not-found"
    title = "Group not found"


class GroupNameTaken(Conflict):
    slug = "group-name-taken"
    title = "Group name already in use"


class UploadNotFound(NotFound):
    slug = "upload-not-found"
    title = "Upload not found"


class CodeNotFound(NotFound):
    slug = "code-not-found"
    title = "Code not found"


class GroupExhausted(Conflict):
    slug = "group-exhausted"
    title = "No codes left in the group"


class GroupExpired(Conflict):
    slug = "group-expired"
    title = "The group has expired"


class GroupNotYetValid(Conflict):
    slug = "group-not-yet-valid"
    title = "The group is not valid yet"


class CodeAlreadyRedeemed(Conflict):
    slug = "code-already-redeemed"
    title = "Code already redeemed"


class CodeBlocked(Conflict):
    slug = "code-blocked"
    title = "Code blocked"


class CodeNotIssued(Conflict):
    slug = "code-not-issued"
    title = "Code not issued"


class IdempotencyKeyReused(ValidationFailed):
    slug = "idempotency-key-reused"
    title = "Idempotency key reused with a different request"


class CodeNotRedeemed(Conflict):
    slug = "code-not-redeemed"
    title = "Code not redeemed"


class WrongOrder(Conflict):
    slug = "wrong-order"
    title = "Code redeemed by another order"


class CustomerLimitReached(Conflict):
    slug = "customer-limit"
    title = "The customer holds the group's limit of codes"


class DatabaseBusy(DomainError):
    """SQLite stayed locked by another writer for the whole busy timeout. Nothing was
    written; the same request can simply be sent again."""

    slug = "database-busy"
    status = 503
    title = "Database busy"
    retry_after = 1

    @classmethod
    def after(cls, seconds: float) -> DatabaseBusy:
        """Said with the time really waited: SQLite may answer busy at once (a snapshot
        another writer moved past), not only after its whole timeout."""
        return cls(
            f"the database is busy with another writer (gave up after {seconds:.2g} s); "
            "nothing was changed, retry in a moment"
        )
