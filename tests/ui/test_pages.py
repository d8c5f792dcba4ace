"""The runs list, the test page, keys in a browser and /docs, in a real Chromium against the
running stack (runs driven by a stand-in worker that appends to the ledger as one does)."""

from __future__ import annotations

import re
import time
import uuid

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from api.signing import UrlSigner, signing_secret
from runledger.testing import wait_for_position
from tests.api.helpers import API_KEY
from tests.ui.conftest import Browsing, MakeStack, Stack
from tests.ui.test_run_page import PASSING, PNG

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)


async def finish(stack: Stack, run_id: str, status: str) -> None:
    run = uuid.UUID(run_id)
    await stack.fake.start(run)
    await stack.fake.step(run, 0, status=status, screenshot=PNG)
    await stack.fake.complete(run, status=status)


async def test_the_runs_list_pages_filters_and_shows_new_runs_live(
    make_stack: MakeStack, browsing: Browsing, pool: asyncpg.Pool
) -> None:
    async with make_stack() as stack:
        login = await stack.create_test("Sign in", "http://127.0.0.1:9/", PASSING)
        search = await stack.create_test("Search", "http://127.0.0.1:9/", PASSING)
        older = [await stack.queue(login) for _ in range(3)]
        await finish(stack, older[0], "passed")
        # Not waiting for the runs model: a run it lacks when the page reads the list comes
        # through the feed, which starts where the list is (api.feed).

        page = await browsing.page()
        await page.goto(f"{stack.url}/")  # redirects to the list
        await expect(page).to_have_url(re.compile(r"/ui/runs$"))
        rows = page.locator("#runs tbody tr")
        await expect(rows).to_have_count(3)
        await expect(page.locator("#connection")).to_have_text("live")

        # A run queued now appears on top, and follows its status, without a reload.
        fresh = await stack.queue(search)
        await expect(rows).to_have_count(4)
        await expect(rows.first).to_have_attribute("data-run-id", fresh)
        await finish(stack, fresh, "failed")
        await expect(rows.first).to_have_attribute("data-status", "failed")
        await browsing.shot(page, "runs")

        # Keyset paging: two at a time, newest first, older ones on demand.
        # A page of two is the runs model's: a run it lacked would come through the feed as
        # a third row. Let the model catch up so that the page holds exactly two.
        await wait_for_position(pool, "runs")
        await page.goto(f"{stack.url}/ui/runs?limit=2")
        await expect(rows).to_have_count(2)
        await page.get_by_role("button", name="Older runs").click()
        await expect(rows).to_have_count(4)
        shown = await rows.evaluate_all("rows => rows.map(r => r.dataset.runId)")
        assert shown == [fresh, *reversed(older)]
        await expect(page.get_by_role("button", name="Older runs")).to_be_hidden()

        # Filters, by label: status, then test.
        await page.goto(f"{stack.url}/ui/runs")
        await page.get_by_label("Status").select_option("passed")
        await expect(page).to_have_url(re.compile(r"status=passed"))
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-run-id", older[0])
        await page.get_by_label("Status").select_option("")
        await page.get_by_label("Test").select_option(label="Search")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-run-id", fresh)
        # ...and live runs respect them: a new run of the other test stays out.
        await stack.queue(login)
        newest = await stack.queue(search)
        await expect(rows.first).to_have_attribute("data-run-id", newest)
        await expect(rows).to_have_count(2)

        narrow = await browsing.page(width=380, height=800)
        await narrow.goto(f"{stack.url}/ui/runs")
        await expect(narrow.locator("#runs tbody tr")).to_have_count(6)
        assert await narrow.evaluate("document.documentElement.scrollWidth <= 380")
        await browsing.shot(narrow, "runs-narrow")
        browsing.assert_clean()


async def test_the_test_page_shows_results_and_flakiness(
    make_stack: MakeStack, browsing: Browsing
) -> None:
    async with make_stack() as stack:
        test_id = await stack.create_test("Checkout", "http://127.0.0.1:9/", PASSING)
        page = await browsing.page()
        await page.goto(f"{stack.url}/ui/tests/{test_id}")
        await expect(page.locator("h1")).to_have_text("Checkout")
        await expect(page.locator(".definition-steps li")).to_have_count(4)
        await expect(page.locator("#pass-rate")).to_have_text("\u2013")

        for status in ("passed", "failed", "passed", "failed", "passed"):
            await finish(stack, await stack.queue(test_id), status)
        # The page refreshes itself as its runs end.
        await expect(page.locator("#strip li")).to_have_count(5)
        await expect(page.locator("#flaky")).to_have_text("flaky")
        await expect(page.locator("#flip-rate")).to_have_text("100 %")
        await expect(page.locator("#pass-rate")).to_have_text("60 %")
        statuses = await page.locator("#strip li").evaluate_all(
            "items => items.map(i => i.dataset.status)")
        assert statuses == ["passed", "failed", "passed", "failed", "passed"]
        await browsing.shot(page, "test")

        stats = (await stack.http.get(f"/tests/{test_id}/stats")).json()
        assert (stats["flips"], stats["flaky"], stats["window"]) == (4, True, 5)
        listed = (await stack.http.get("/tests")).json()["items"]
        assert [t["stats"]["flip_rate"] for t in listed] == [1.0]
        browsing.assert_clean()


async def test_the_run_page_shows_a_retried_run_s_attempts_and_flaky(
    make_stack: MakeStack, browsing: Browsing
) -> None:
    async with make_stack() as stack:
        created = await stack.http.post("/tests", json={
            "name": "Retried", "url": "http://127.0.0.1:9/", "retries": 1,
            "definition": {"steps": PASSING}})
        assert created.status_code == 201, created.text
        first = await stack.queue(str(created.json()["id"]))
        page = await browsing.page()
        await page.goto(f"{stack.url}/ui/runs/{first}")
        await expect(page.locator("#status .badge")).to_have_text("queued")
        await finish(stack, first, "failed")
        # The retries follower queues attempt 2; the failed run's page links to it.
        second = page.locator("#facts .attempts a", has_text="#2")
        await expect(second).to_have_text("#2 queued")
        await second.click()
        await expect(page.locator("#facts .attempts [aria-current=page]")).to_have_text(
            "#2 queued")
        second_id = page.url.rsplit("/", 1)[-1]
        await finish(stack, second_id, "passed")
        await expect(page.locator("#status .badge")).to_have_text("passed")
        await expect(page.locator("#facts .attempts")).to_contain_text("#1 failed")
        await expect(page.locator("#facts .badge.flaky")).to_have_text("flaky")
        await browsing.shot(page, "run-retried")
        browsing.assert_clean()


async def enter_key(page: Page, key: str) -> None:
    dialog = page.get_by_role("dialog", name="API key needed")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("API key").fill(key)
    await dialog.get_by_role("button", name="Use this key").click()


async def test_with_api_keys_the_pages_ask_once_and_links_are_signed(
    make_stack: MakeStack, browsing: Browsing
) -> None:
    async with make_stack(api_keys=[API_KEY], signed_url_seconds=60) as stack:
        test_id = await stack.create_test("Guarded", "http://127.0.0.1:9/", PASSING)
        run_id = await stack.queue(test_id)
        await finish(stack, run_id, "passed")

        page = await browsing.page()
        await page.goto(f"{stack.url}/ui/runs")
        await enter_key(page, "not-the-key")
        await expect(page.get_by_role("dialog")).to_contain_text("refused")
        await browsing.shot(page, "key-prompt")
        await enter_key(page, API_KEY)
        await expect(page.locator("#runs tbody tr")).to_have_count(1)
        # Kept for the tab: the run page (stream and all) asks no more.
        await page.get_by_role("link", name=re.compile("Run of Guarded")).click()
        await expect(page.locator("#status .badge")).to_have_text("passed")
        image = page.locator("#step-0 .shot img")
        await expect(image).to_have_attribute("src", re.compile(r"signature="))
        # Its src set, the image is still loading: wait for the load to end (a failed one
        # ends too, with no pixels), then check it drew.
        await expect(image).to_have_js_property("complete", True)
        assert await image.evaluate("img => img.naturalWidth > 0")
        assert await page.get_by_role("dialog").count() == 0

        # The link works without a key, for that run and artifact only, until it expires.
        url = await image.get_attribute("src")
        assert url is not None and API_KEY not in url
        artifact = re.search(r"/artifacts/([0-9a-f]{64})", url)[1]  # type: ignore[index]
        async with httpx.AsyncClient(base_url=stack.url) as anonymous:
            assert (await anonymous.get(url)).status_code == 200
            other_run = url.replace(run_id, str(uuid.uuid4()))
            assert (await anonymous.get(other_run)).status_code == 401
            assert (await anonymous.get(url.replace("signature=", "signature=x"))
                    ).status_code == 401
            # Signed with the server's secret, but expired a second ago.
            earlier = UrlSigner(signing_secret(None, stack.settings.api_keys), ttl_seconds=60,
                                clock=lambda: time.time() - 61)
            expires, signature = earlier.sign(uuid.UUID(run_id), artifact)
            expired = await anonymous.get(
                f"/runs/{run_id}/artifacts/{artifact}",
                params={"expires": expires, "signature": signature})
            assert expired.status_code == 401 and "expired" in expired.json()["detail"]
            assert (await anonymous.get(f"/runs/{run_id}/artifacts/{artifact}")
                    ).status_code == 401
        browsing.assert_clean(refused_keys=True)


async def test_docs_render_offline_and_carry_the_key(
    make_stack: MakeStack, browsing: Browsing
) -> None:
    async with make_stack(api_keys=[API_KEY]) as stack:
        page = await browsing.page()
        await page.goto(f"{stack.url}/docs")
        await enter_key(page, API_KEY)
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("runledger")
        await expect(page.locator(".swagger-ui .btn.authorize.locked")).to_be_visible()
        # Try it out: the request carries the key.
        operation = page.locator("#operations-tests-list_tests_tests_get")
        await operation.locator(".opblock-summary").click()
        await operation.get_by_role("button", name="Try it out").click()
        await operation.get_by_role("button", name="Execute").click()
        await expect(operation.locator(".live-responses-table tbody .response-col_status")
                     ).to_have_text("200")
        await operation.locator(".opblock-summary").click()
        await browsing.shot(page, "docs", full_page=False)
        assert browsing.blocked == []  # nothing was even asked of another host
        browsing.assert_clean(refused_keys=True)
