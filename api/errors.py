"""The API's exception tree. ``api.problems`` maps these (and the ledger's) to HTTP responses.

    ApiError                        base of everything this package raises
    ├── NotFound                    something a request names does not exist (404)
    │   └── TestNotFound            no test with that id
    ├── InvalidInput                a value is malformed; ``errors`` names each field (422)
    │   └── IdempotencyKeyReused    an ``Idempotency-Key`` was sent again with another request
    ├── PreconditionFailed          ``If-Match`` named a version that is no longer current (412)
    ├── Unauthorized                no or a wrong API key (401)
    ├── TooManyFailedKeys           this address sent too many wrong keys lately (429)
    └── PayloadTooLarge             the request body exceeds ``MAX_BODY_BYTES`` (413)
"""

from __future__ import annotations

from uuid import UUID


class ApiError(Exception):
    """Base class for every error raised by the ``api`` package."""


class NotFound(ApiError):
    """Raised when a resource named by the request does not exist."""


class TestNotFound(NotFound):
    """Raised when no test has the requested id."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, test_id: UUID) -> None:
        self.test_id = test_id
        super().__init__(f"test {test_id} not found")


class InvalidInput(ApiError):
    """Raised for malformed input; ``errors`` lists ``(in, field, message)`` triples."""

    def __init__(self, errors: list[tuple[str, str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{where}.{field}: {msg}" for where, field, msg in errors))


class IdempotencyKeyReused(InvalidInput):
    """Raised when an ``Idempotency-Key`` already served a request with a different body."""

    def __init__(self) -> None:
        super().__init__([(
            "header", "Idempotency-Key",
            "this key was already used for a different request; use a new key",
        )])


class PreconditionFailed(ApiError):
    """Raised when ``If-Match`` does not name the resource's current version."""


class Unauthorized(ApiError):
    """Raised when a route requires an API key and none, or a wrong one, was sent."""


class TooManyFailedKeys(ApiError):
    """Raised when a client address sent ``API_KEY_FAILURE_LIMIT`` wrong keys within the
    window; ``retry_after`` is the whole seconds until it may try again."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
        super().__init__(f"too many wrong API keys from this address; retry in "
                         f"{retry_after} s")


class PayloadTooLarge(ApiError):
    """Raised when a request body exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body exceeds the {limit}-byte limit")
