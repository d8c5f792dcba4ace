"""Consent banners, native dialogs and CAPTCHAs: what gets in a test's way.

With ``auto_handle_popups`` a run's page dismisses known consent banners (OneTrust,
Cookiebot, Didomi, TrustArc, CookieYes, Osano, and generic cookie/consent containers with an
"Accept all" / "Agree" button) and accepts native dialogs. Two mechanisms, because neither
covers everything alone:

* a *sweep* before each step resolves its target: the page-state probe names a visible
  banner and its accept button is clicked — a banner that is an ``aria-modal`` dialog would
  otherwise confine the search to itself;
* one Playwright *locator handler* for the known consent managers, for banners that
  appear mid-action (Playwright runs it before any action or assertion the banner would
  block); generic containers are left to the sweep, their check being too costly to run
  before every action.

Every dismissal is logged and lands in the ``details.popups`` of the step it happened in.
Without ``auto_handle_popups`` dialogs are dismissed (Playwright's default) and logged, and
banners stay — a step they block fails saying so. CAPTCHAs are never attempted.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from playwright.async_api import Dialog, Locator, Page
from playwright.async_api import Error as PlaywrightError

from worker.agent.banners import ACCEPT_TEXT, BANNERS, BY_NAME, Banner
from worker.agent.probe import page_state

log = logging.getLogger(__name__)

_DISMISS_TIMEOUT_MS = 3000


class PopupGuard:
    """Watches one run's page; ``take()`` hands over what happened since the last call."""

    def __init__(self, page: Page, *, auto_handle: bool) -> None:
        self._page = page
        self.auto_handle = auto_handle
        self._events: list[dict[str, Any]] = []

    async def install(self) -> None:
        self._page.on("dialog", self._on_dialog)
        if self.auto_handle:
            await self._page.add_locator_handler(self._any_banner(), self._on_banner)

    def take(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    async def sweep(self, banner: str | None) -> bool:
        """Dismiss ``banner`` (named by a page-state probe); True when one was dismissed."""
        if not (self.auto_handle and banner):
            return False
        return await self._dismiss(banner, via="sweep", force=True)

    # -- internals --------------------------------------------------------------------------

    def _any_banner(self) -> Locator:
        # Playwright checks this before every action: plain CSS of the known consent
        # managers keeps that cheap. Generic cookie containers need a role-and-name search
        # for their accept button, too costly per action: the sweep handles them.
        return self._page.locator(
            ", ".join(f"{b.trigger}:visible" for b in BANNERS if b.accept)
        )

    @staticmethod
    def _accept_buttons(container: Locator) -> Locator:
        text = re.compile(ACCEPT_TEXT, re.I)
        return container.get_by_role("button", name=text).or_(
            container.get_by_role("link", name=text)
        )

    def _accept_locator(self, banner: Banner) -> Locator:
        container = self._page.locator(f"{banner.trigger}").filter(visible=True)
        if banner.accept:
            return self._page.locator(banner.accept).filter(visible=True).first
        return self._accept_buttons(container).filter(visible=True).first

    async def _on_banner(self, _: Locator) -> None:
        # Called by Playwright before an action the banner would block.
        state = await page_state(self._page)
        if state.consent:
            await self._dismiss(state.consent, via="locator handler", force=False)

    async def _dismiss(self, name: str, *, via: str, force: bool) -> bool:
        banner = BY_NAME[name]
        try:
            # force: outside a locator handler a normal click would itself wait for the
            # handler to clear the banner it is clicking.
            await self._accept_locator(banner).click(force=force, timeout=_DISMISS_TIMEOUT_MS)
        except PlaywrightError as exc:
            log.warning("could not dismiss the %s banner: %s", name, _first_line(exc))
            self._events.append({"kind": "consent", "name": name, "action": "failed",
                                 "via": via, "error": _first_line(exc)})
            return False
        # Without query or fragment: they may carry a revealed {{secrets.NAME}}.
        log.info("dismissed the %s consent banner (%s) url=%s", name, via,
                 self._page.url.split("?", 1)[0].split("#", 1)[0])
        self._events.append({"kind": "consent", "name": name, "action": "accepted", "via": via})
        return True

    async def _on_dialog(self, dialog: Dialog) -> None:
        action = "accepted" if self.auto_handle else "dismissed"
        self._events.append({
            "kind": "dialog", "type": dialog.type, "message": dialog.message[:200],
            "action": action,
        })
        try:
            if self.auto_handle:
                await dialog.accept()
            else:
                await dialog.dismiss()
        except PlaywrightError as exc:  # the page went away with its dialog
            log.debug("dialog already closed: %s", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
