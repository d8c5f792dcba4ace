"""The real-world suite (``tests/executor/realworld/``): flows on pages from widely used UI
kits and example apps, each first proven with plain Playwright locators — with the
executor's resolver asked, before each action, which element the words mean (it must never
name another one) — then run through the executor, which must end as the flow expects.

One browser and one module for the whole suite, screenshots and traces off: it adds tens of
seconds to the suite, not minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from runledger.bench.realworld import ROOT, Flow, load_flows, prove, run_flow
from runledger.testing import local_site
from worker.agent import AgentExecutor
from worker.agent.browser import ChromiumHost
from worker.agent.probe import INSTALL_JS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

FLOWS = load_flows()


@pytest.fixture(scope="module")
def realworld() -> Iterator[str]:
    with local_site(ROOT, name="realworld") as url:
        yield url


async def test_the_suite_is_large_enough() -> None:
    assert len(FLOWS) >= 40 and len({f.page for f in FLOWS}) >= 12
    for folder in {f.page.split("/")[0] for f in FLOWS}:
        assert any((ROOT / folder).glob("LICENSE*")), f"{folder} has no licence file"


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
async def test_a_real_world_flow(flow: Flow, realworld: str, host: ChromiumHost,
                                 make_executor: Callable[..., AgentExecutor]) -> None:
    # A fresh context as for a run: the apps keep their state in local storage.
    async with host.context() as (context, _):
        await context.add_init_script(script=INSTALL_JS)
        proof = await prove(await context.new_page(), realworld, flow)
    assert proof.wrong == [], "the resolver named another element than the proof"
    executor = make_executor(screenshots="off", traces="off", not_found_seconds=1.0)
    verdict = await run_flow(executor, realworld, flow)
    assert verdict.as_expected, f"expected {flow.expect}, got {verdict.status}: {verdict.detail}"
