"""Where a test's browser may go: ``NAVIGATION_POLICY`` and ``NAVIGATION_ALLOW``.

Pure: no resolution, no sockets. The API judges the literal host of a test's ``url`` and
navigate targets with it (``NavigationPolicy.judge_host``); the worker's egress proxy judges
the address it is about to connect to (``NavigationPolicy.judge_address``) — the only
judgement that sees redirects, subresources and DNS answers.

One parser reads a host however it is spelled — ``2130706433``, ``0177.1``, ``0x7f.0.0.1``,
``[::ffff:127.0.0.1]``, full-width digits, percent-encoding — the way browsers (WHATWG URL)
read it, so the API and the browser agree on which address a host names.

* ``default`` blocks link-local addresses and cloud metadata endpoints.
* ``public`` also blocks loopback, private (RFC 1918, fc00::/7), shared (100.64.0.0/10),
  unspecified, multicast and reserved addresses: everything not globally routable.

``NAVIGATION_ALLOW`` (``host``, ``host:port``, ``*.domain``, an address or a CIDR) exempts
what it names from either policy.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Mode = Literal["default", "public"]

#: names that answer with a cloud provider's instance metadata (credentials, user data)
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.internal",
    "instance-data", "instance-data.ec2.internal", "metadata.tencentyun.com",
    "metadata.platformequinix.com", "metadata.packet.net",
})
#: addresses of metadata services outside link-local space (169.254.169.254 is inside it)
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "169.254.170.2",
))
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class InvalidHost(ValueError):
    """Raised when a host looks like an IPv4 address but is not a valid one (``1.2.3.999``):
    browsers refuse such URLs."""


def _number(part: str) -> int | None:
    """One part of an IPv4 host as WHATWG reads it: ``0x`` hex, leading-zero octal, decimal."""
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:], 16
        if not part:
            return 0
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    try:
        return int(part, base) if part.isascii() and part.isalnum() else None
    except ValueError:
        return None


def _ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read as an IPv4 address the way browsers read it; None when it is a name."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts[-1] or _number(parts[-1]) is None:
        return None  # does not end in a number: a domain name
    numbers = [_number(p) if p else None for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise InvalidHost(f"{host!r} is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise InvalidHost(f"{host!r} is not a valid IPv4 address")
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return ipaddress.IPv4Address(address)


def canonical_host(host: str) -> str:
    """``host`` as a browser reads it: percent-decoded, Unicode-normalised (full-width digits
    and dots), lower case, without brackets or a trailing dot."""
    text = unicodedata.normalize("NFKC", unquote(host)).translate(_DOTS).strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def parse_host(host: str) -> IPAddress | str:
    """The address ``host`` spells, or its canonical name when it is a domain name.

    Raises ``InvalidHost`` for a number that is no address (``256.1.1.1``)."""
    text = canonical_host(host)
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError as exc:
            raise InvalidHost(f"{host!r} is not a valid IPv6 address") from exc
    address = _ipv4(text)
    return address if address is not None else text


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (0 < int(address) < 2**32 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_class(address: IPAddress, mode: Mode) -> str | None:
    """Why ``mode`` blocks ``address`` (``"loopback"``, ``"cloud metadata"`` …); None when it
    does not. An IPv6 address carrying an IPv4 one is judged on both."""
    inner = embedded_ipv4(address)
    if inner is not None:
        found = address_class(inner, mode)
        if found is not None:
            return found
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if any(address in net for net in _LINK_LOCAL if net.version == address.version):
        return "link-local"
    if mode == "default":
        return None
    for label, hit in (
        ("loopback", address.is_loopback), ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast), ("reserved", address.is_reserved),
        ("shared address space", address in _SHARED if address.version == 4 else False),
        ("private", address.is_private),
    ):
        if hit:
            return label
    return None if address.is_global else "not globally routable"


@dataclass(frozen=True)
class Exemption:
    """One ``NAVIGATION_ALLOW`` entry: a name (``*.`` for subdomains) or a network, with an
    optional port."""

    name: str | None = None
    network: Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Exemption:
        entry = text.strip()
        try:
            return cls(network=ipaddress.ip_network(canonical_host(entry), strict=False))
        except ValueError:
            pass
        parts = urlsplit(f"//{entry}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"{text!r} has an invalid port") from exc
        raw = parts.hostname or ""
        if not raw or parts.path or parts.query or parts.username:
            raise ValueError(f"{text!r} is not a host, host:port or CIDR")
        wildcard = raw.startswith("*.")
        host = parse_host(raw[2:] if wildcard else raw)
        if isinstance(host, str):
            return cls(name=("*." if wildcard else "") + host, port=port)
        if wildcard:
            raise ValueError(f"{text!r}: a wildcard needs a domain name")
        return cls(network=ipaddress.ip_network(host), port=port)

    def covers(self, name: str | None, address: IPAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address.version == self.network.version \
                and address in self.network
        if name is None or self.name is None:
            return False
        if self.name.startswith("*."):
            return name.endswith(self.name[1:])
        return name == self.name


@dataclass(frozen=True)
class NavigationPolicy:
    """``NAVIGATION_POLICY`` with its ``NAVIGATION_ALLOW`` exemptions."""

    mode: Mode = "default"
    allow: tuple[Exemption, ...] = ()

    def _exempt(self, name: str | None, address: IPAddress | None, port: int) -> bool:
        return any(entry.covers(name, address, port) for entry in self.allow)

    def judge_address(self, name: str, address: IPAddress, port: int) -> str | None:
        """Why connecting to ``address`` (for host ``name``) is blocked; None when allowed."""
        host = parse_host(name)
        requested = host if isinstance(host, str) else None
        if self._exempt(requested, address, port):
            return None
        if requested is not None and requested in METADATA_NAMES:
            return "cloud metadata"
        return address_class(address, self.mode)

    def judge_host(self, host: str, port: int) -> str | None:
        """Why a URL naming ``host`` is blocked before anything is resolved (the API's
        check); None when its literal host is allowed. Raises ``InvalidHost``."""
        parsed = parse_host(host)
        if isinstance(parsed, str):
            if self._exempt(parsed, None, port):
                return None
            if parsed in METADATA_NAMES:
                return "cloud metadata"
            if self.mode == "public" and (parsed == "localhost" or parsed.endswith(".localhost")):
                return "loopback"
            return None
        if self._exempt(None, parsed, port):
            return None
        return address_class(parsed, self.mode)

    def judge_url(self, url: str) -> str | None:
        """``judge_host`` for an absolute http(s) URL (relative URLs: None)."""
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("http", "https"):
            return None
        host = parts.netloc.rpartition("@")[2]
        host = host[: host.rindex("]") + 1] if host.startswith("[") else host.split(":")[0]
        return self.judge_host(host, _port(parts.scheme, parts))


def _port(scheme: str, parts: Any) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidHost("the URL has an invalid port") from exc
    return port if port is not None else (443 if scheme == "https" else 80)


def blocked_message(what: str, host: str, reason: str, mode: Mode) -> str:
    """The one wording of a refusal, e.g. ``NAVIGATION_POLICY=public blocked navigation to
    127.0.0.1:8080 (loopback); NAVIGATION_ALLOW can exempt it``."""
    return (f"NAVIGATION_POLICY={mode} blocked {what} {host} ({reason}); "
            "NAVIGATION_ALLOW can exempt it")


class NavigationConfig(BaseModel):
    """The two variables the API and the worker share (mixed into both settings classes)."""

    navigation_policy: Mode = Field(
        "default",
        description="Where tests' browsers may connect. `default` blocks link-local "
        "addresses and cloud metadata endpoints; `public` also blocks loopback, private "
        "(RFC 1918, fc00::/7), shared, multicast and reserved addresses. Judged on the "
        "address each browser request actually connects to.",
    )
    navigation_allow: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated exemptions from NAVIGATION_POLICY: `host`, `host:port`, "
        "`*.domain`, an address or a CIDR (e.g. `staging.internal,10.1.0.0/16`).",
    )

    @field_validator("navigation_allow", mode="before")
    @classmethod
    def _split_allow(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("navigation_allow")
    @classmethod
    def _parse_allow(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                Exemption.parse(entry)
            except ValueError as exc:
                raise ValueError(f"NAVIGATION_ALLOW: {exc}") from None
        return value

    @property
    def navigation(self) -> NavigationPolicy:
        return NavigationPolicy(self.navigation_policy,
                                tuple(Exemption.parse(entry) for entry in self.navigation_allow))
