"""Memory keys: which steps count as "the same step" for locator memory.

A key is the sha256 of the normalised page URL, the action and the normalised instruction.
The URL keeps scheme, host and path — numeric, UUID and long opaque id segments become
placeholders, query and fragment go — so ``/orders/17`` and ``/orders/18`` share memory
while ``/orders`` and ``/invoices`` do not. The instruction is case- and space-folded, and the
step's value (what is typed or picked, often test data) becomes ``{value}``, so editing the
data of a step keeps what was learnt about its target.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_NUMBER = re.compile(r"^\d+$")
# Long tokens mixing letters and digits (hashes, slugs with ids, base64 ids).
_OPAQUE = re.compile(r"^(?=.*\d)(?=.*[a-z])[a-z0-9_-]{16,}$", re.I)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_QUOTES = "'\"\u2018\u2019\u201c\u201d"
_SPACE = re.compile(r"\s+")


def normalise_url(url: str | None) -> str:
    """``https://Shop.example:443/orders/17/?q=1#x`` → ``https://shop.example/orders/{n}``."""
    if not url:
        return ""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        # about:blank, data: and file: pages: the scheme and path are all there is.
        return f"{scheme}:{parts.path}"
    host = (parts.hostname or "").lower()
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    segments = [_segment(s) for s in parts.path.split("/") if s]
    return f"{scheme}://{host}/" + "/".join(segments)


def _segment(segment: str) -> str:
    if _NUMBER.match(segment):
        return "{n}"
    if _UUID.match(segment):
        return "{uuid}"
    if _OPAQUE.match(segment):
        return "{id}"
    return segment


def normalise_instruction(instruction: str, value: str | None = None) -> str:
    """Lower case, single spaces, the value (quoted or bare) replaced by ``{value}``."""
    text = _SPACE.sub(" ", instruction).strip()
    if value:
        quoted = "|".join(
            re.escape(o) + re.escape(value) + re.escape(c)
            for o, c in (("'", "'"), ('"', '"'), ("\u2018", "\u2019"), ("\u201c", "\u201d"))
        )
        replaced, count = re.subn(quoted, "{value}", text)
        if not count:
            replaced = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "{value}", text)
        text = replaced
    return text.lower()


def memory_key(url: str | None, action: str, instruction: str, value: str | None = None
               ) -> str:
    """The key a step's locator is remembered under."""
    material = "\n".join((normalise_url(url), action, normalise_instruction(instruction, value)))
    return hashlib.sha256(material.encode()).hexdigest()
