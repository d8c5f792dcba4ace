"""Opaque keyset cursors: the sort key of a page's last row, base64url-encoded JSON.

Clients must treat a cursor as opaque; it only names a position, so pages stay stable while
rows are added (no offsets that shift) and every page is one index range scan.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from api.errors import InvalidInput


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).rstrip(b"=").decode()


def _bad(field: str) -> InvalidInput:
    return InvalidInput([("query", field, "is not a cursor returned by this API")])


def decode_time_id_cursor(cursor: str, field: str = "cursor") -> tuple[datetime, UUID]:
    """A ``(created_at, id)`` cursor; ``InvalidInput`` naming ``field`` when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, key = orjson.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        # In UTC here, not in the driver: a forged offset at the ends of the calendar
        # overflows when converted, which must be the client's 422, not a 500.
        return when.astimezone(UTC), UUID(key)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
        raise _bad(field) from None
