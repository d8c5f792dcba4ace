"""The consent banners runledger knows: their containers and accept buttons.

Shared by the page probe (which recognises a visible banner) and ``PopupGuard`` (which
dismisses it). Add a consent manager here: a name, the CSS of its container, the CSS of its
accept button (or ``None`` to take any button whose text matches ``ACCEPT_TEXT``).
"""

from __future__ import annotations

from dataclasses import dataclass

ACCEPT_TEXT = (
    r"^\s*(accept( all)?( cookies)?|allow( all)?( cookies)?|agree( and (continue|close))?|"
    r"i agree|i accept|accept (and|&) (continue|close)|got it|ok(ay)?|yes,? i agree)\s*[.!]?\s*$"
)
GENERIC = ", ".join(
    f"[{attr}*={word} i]"
    for attr in ("id", "class", "aria-label")
    for word in ("cookie", "consent", "gdpr")
)


@dataclass(frozen=True)
class Banner:
    name: str
    trigger: str  # CSS of the banner's container
    accept: str | None  # CSS of its accept button (None: any button matching ACCEPT_TEXT)


BANNERS: tuple[Banner, ...] = (
    Banner("OneTrust", "#onetrust-banner-sdk", "#onetrust-accept-btn-handler"),
    Banner(
        "Cookiebot", "#CybotCookiebotDialog",
        "#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll, "
        "#CybotCookiebotDialogBodyButtonAccept, #CybotCookiebotDialogBodyLevelButtonAccept",
    ),
    Banner("Didomi", "#didomi-notice", "#didomi-notice-agree-button"),
    Banner("TrustArc", "#truste-consent-track", "#truste-consent-button"),
    Banner("CookieYes", ".cky-consent-container", ".cky-btn-accept"),
    Banner("Osano", ".osano-cm-dialog", ".osano-cm-accept-all"),
    Banner("consent banner", GENERIC, None),
)
BY_NAME = {b.name: b for b in BANNERS}

#: what the page-state probe needs to recognise a banner
PROBE_BANNERS: list[dict[str, str]] = [
    {"name": b.name, "trigger": b.trigger, **({} if b.accept else {"text": ACCEPT_TEXT})}
    for b in BANNERS
]
