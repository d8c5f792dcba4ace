"""The run page in a real Chromium against the running stack: a run followed live from before
it starts to its end (real worker, real screenshots and trace), a failing run, and a stream
that drops or a page reloaded mid-run without a step shown twice."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from tests.ui.conftest import Browsing, MakeStack, Stack, real_worker

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)
SIGNED = re.compile(r"/artifacts/[0-9a-f]{64}\?expires=\d+&signature=")

PASSING = [
    {"action": "fill", "instruction": "Fill 'Email' with 'ada@example.com'",
     "value": "ada@example.com"},
    {"action": "fill", "instruction": "Fill 'Password'", "value": "correct horse"},
    {"action": "click", "instruction": "Click 'Log in'"},
    {"action": "verify", "instruction": "Welcome", "expected": "Welcome, ada"},
]
FAILING = [
    {"action": "fill", "instruction": "Fill 'Email' with 'ada@example.com'",
     "value": "ada@example.com"},
    {"action": "click", "instruction": "Click 'Launch the rockets'"},
    {"action": "click", "instruction": "Click 'Log in'"},
    {"action": "verify", "instruction": "Welcome", "expected": "Welcome, ada"},
]


async def step_states(page: Page) -> list[str]:
    return [s or "" for s in await page.locator("#steps > li").evaluate_all(
        "items => items.map(i => i.dataset.index + ':' + i.dataset.state)")]


async def test_a_run_is_followed_from_before_it_starts_to_passed(
    make_stack: MakeStack, browsing: Browsing, site: str
) -> None:
    async with make_stack() as stack:
        test_id = await stack.create_test("Sign in", f"{site}/login.html", PASSING)
        run_id = await stack.queue(test_id)
        page = await browsing.page()
        await page.goto(f"{stack.url}/ui/runs/{run_id}")
        await expect(page.locator("#status .badge")).to_have_text("queued")
        await expect(page.locator("#steps > li")).to_have_count(4)
        await expect(page.locator("#cancel")).to_be_visible()
        assert await step_states(page) == [f"{i}:pending" for i in range(4)]

        async with real_worker(stack):
            await expect(page.locator("#status .badge")).to_have_text("passed")
        assert await step_states(page) == [f"{i}:passed" for i in range(4)]
        instructions = await page.locator("#steps .instruction").all_inner_texts()
        assert instructions == [step["instruction"] for step in PASSING]
        await expect(page.locator("#cancel")).to_be_hidden()
        await expect(page.locator("#facts")).to_contain_text("ui-worker")

        # Thumbnails load through signed links; one opens full size.
        first = page.locator("#step-0 .shot img")
        await expect(first).to_have_attribute("src", SIGNED)
        # Its src set, the image is still loading: wait for the load to end (a failed one
        # ends too, with no pixels), then check it drew.
        await expect(first).to_have_js_property("complete", True)
        assert await first.evaluate("img => img.naturalWidth > 0")
        await browsing.shot(page, "run-passed")
        await page.locator("#step-0 .shot").click()
        viewer = page.locator("#viewer-image")
        await expect(viewer).to_be_visible()
        await expect(viewer).to_have_js_property("complete", True)  # loaded (or failed)
        assert await viewer.evaluate("img => img.naturalWidth > 0")
        await page.keyboard.press("Escape")
        await expect(viewer).to_be_hidden()

        # The trace downloads from its link.
        link = page.locator("#trace-link")
        await expect(link).to_be_visible()
        async with page.expect_download() as download:
            await link.click()
        assert (await (await download.value).path()).stat().st_size > 1000
        browsing.assert_clean()


async def test_a_failing_run_shows_the_error_on_its_step_and_skips_the_rest(
    make_stack: MakeStack, browsing: Browsing, site: str
) -> None:
    async with make_stack() as stack:
        test_id = await stack.create_test("Sign in, wrongly", f"{site}/login.html", FAILING)
        run_id = await stack.queue(test_id)
        async with real_worker(stack, traces="failures"):
            page = await browsing.page()
            await page.goto(f"{stack.url}/ui/runs/{run_id}")
            await expect(page.locator("#status .badge")).to_have_text("failed")
        assert await step_states(page) == ["0:passed", "1:failed", "2:skipped", "3:skipped"]
        failing = page.locator("#step-1")
        await expect(failing).to_have_class("step step-failed failing")
        await expect(failing.locator(".step-error")).to_contain_text("Launch the rockets")
        await expect(failing.locator(".candidates")).to_be_visible()
        await expect(page.locator("#run-error")).to_be_visible()
        await expect(page.locator("#trace-link")).to_be_visible()
        await browsing.shot(page, "run-failed")

        narrow = await browsing.page(width=380, height=800)
        await narrow.goto(f"{stack.url}/ui/runs/{run_id}")
        await expect(narrow.locator("#step-1 .candidates")).to_be_visible()
        assert await narrow.evaluate("document.documentElement.scrollWidth <= 380")
        await browsing.shot(narrow, "run-failed-narrow")
        browsing.assert_clean()


async def test_a_dropped_stream_and_a_reload_resume_without_duplicates(
    make_stack: MakeStack, browsing: Browsing
) -> None:
    async with make_stack() as stack:
        test_id = await stack.create_test("Controlled", "http://127.0.0.1:9/", PASSING)
        run_id = await stack.queue(test_id)
        page = await browsing.page()
        await page.goto(f"{stack.url}/ui/runs/{run_id}")
        await expect(page.locator("#connection")).to_have_text("live")
        await run_steps(stack, run_id, 0, 1)
        await expect(page.locator("#step-1")).to_have_attribute("data-state", "passed")
        await expect(page.locator("#step-1 .healed")).to_have_text(
            'healed #sign-in → get_by_role("button")')

        # The connection drops mid-run: the page reconnects with Last-Event-ID.
        await stack.proxy.cut()
        await expect(page.locator("#connection")).to_have_text("reconnecting…")
        await run_steps(stack, run_id, 2)
        await stack.proxy.restore()
        await expect(page.locator("#step-2")).to_have_attribute("data-state", "passed")
        await expect(page.locator("#connection")).to_have_text("live")
        assert await step_states(page) == ["0:passed", "1:passed", "2:passed", "3:running"]

        # A reload mid-run replays the history once, then follows.
        await page.reload()
        await expect(page.locator("#step-2")).to_have_attribute("data-state", "passed")
        assert await step_states(page) == ["0:passed", "1:passed", "2:passed", "3:running"]
        await run_steps(stack, run_id, 3)
        await stack.fake.complete(uuid.UUID(run_id))
        await expect(page.locator("#status .badge")).to_have_text("passed")
        assert await step_states(page) == [f"{i}:passed" for i in range(4)]
        assert await page.locator(".shot").count() == 4
        browsing.assert_clean(dropped_connections=True)


async def test_the_cancel_button_cancels_a_queued_run(
    make_stack: MakeStack, browsing: Browsing
) -> None:
    async with make_stack() as stack:
        test_id = await stack.create_test("Never run", "http://127.0.0.1:9/", PASSING)
        run_id = await stack.queue(test_id)
        page = await browsing.page()
        await page.goto(f"{stack.url}/ui/runs/{run_id}")
        await page.get_by_role("button", name="Cancel run").click()
        await expect(page.locator("#status .badge")).to_have_text("cancelled")
        await expect(page.locator("#run-error")).to_have_text("cancelled from the run page")
        await expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
        assert await step_states(page) == [f"{i}:skipped" for i in range(4)]
        browsing.assert_clean()


async def run_steps(stack: Stack, run_id: str, *indexes: int) -> None:
    run = uuid.UUID(run_id)
    if 0 in indexes:
        await stack.fake.start(run)
    for index in indexes:
        healed = index == 1
        await stack.fake.step(run, index, screenshot=PNG, healed=healed, details={
            "heal": {"from": "memory", "old": "#sign-in", "new": 'get_by_role("button")'},
        } if healed else None)


#: a 1x1 PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")
