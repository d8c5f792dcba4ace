"""The ladder's pure parts: choosing among probed candidates, fingerprints, candidates,
locator strings, check wording, error explanations."""

from __future__ import annotations

import orjson
import pytest
from playwright.async_api import Error as PlaywrightError

from worker.agent.actions import explain
from worker.agent.candidates import Candidate, candidates, fuzzy_candidates
from worker.agent.checks import url_matches
from worker.agent.dom import Finding, decide
from worker.agent.instruction import Intent
from worker.agent.locators import InvalidLocator, LocatorSpec
from worker.agent.probe import Match, similarity

pytestmark = pytest.mark.unit


def finding(score: float, *ids: int, exact: bool = True, ok: bool = True,
            name: str = "x") -> Finding:
    spec = LocatorSpec.of("get_by_role", "button", name=name, exact=exact)
    return Finding(Candidate(spec, score, "role", exact), None, spec,
                   tuple(Match(i, ok, False, {"tag": "button"}) for i in ids))


def test_the_best_unique_candidate_wins() -> None:
    verdict = decide([finding(105, 1, exact=False), finding(100, 1), finding(180, 1, 2)], None)
    assert verdict.kind == "winner" and verdict.match is not None and verdict.match.id == 1
    assert verdict.finding is not None and verdict.finding.candidate.score == 100


def test_several_matches_for_the_best_candidate_are_ambiguous() -> None:
    assert decide([finding(100, 1, 2)], None).kind == "ambiguous"


def test_an_ordinal_picks_among_the_matches() -> None:
    verdict = decide([finding(100, 1, 2, 3)], 1)
    assert verdict.kind == "winner" and verdict.match is not None and verdict.match.id == 2
    assert str(verdict.finding.spec).endswith(".filter(visible=True).nth(1)")  # type: ignore[union-attr]
    last = decide([finding(100, 1, 2, 3)], -1)
    assert last.match is not None and last.match.id == 3
    assert str(last.finding.spec).endswith(".last")  # type: ignore[union-attr]
    assert decide([finding(100, 1, 2)], 4).kind == "ambiguous"  # no fifth one


def test_a_close_rival_on_another_element_is_ambiguous() -> None:
    verdict = decide([finding(100, 1), finding(120, 2)], None)
    assert verdict.kind == "ambiguous" and len(verdict.rivals) == 2


def test_a_looser_rival_does_not_outvote_an_exact_match() -> None:
    # "Save" exactly vs a substring match on "Save as PDF": the exact one stands.
    assert decide([finding(100, 1), finding(105, 2, exact=False)], None).kind == "winner"
    # Far apart in score: no rivalry either.
    assert decide([finding(100, 1), finding(180, 2)], None).kind == "winner"


def test_a_disabled_winner_is_reported_as_such() -> None:
    assert decide([finding(100, 1, ok=False)], None).kind == "disabled"


def test_nothing_matched() -> None:
    assert decide([finding(100), finding(180)], None).kind == "nothing"


FP = {"tag": "button", "role": "button", "name": "Place order", "id": "btn-4821",
      "classes": ["btn", "btn-primary"], "path": "body > main > form",
      "attrs": {"type": "button"}}


def test_similarity_tolerates_a_changed_id_but_not_another_element() -> None:
    assert similarity(FP, FP) == 1.0
    moved = {**FP, "id": "btn-9932"}
    assert similarity(FP, moved) > 0.85
    other = {"tag": "a", "role": "link", "name": "Help", "classes": ["nav"],
             "path": "body > nav", "attrs": {"href": "/help"}}
    assert similarity(FP, other) < 0.3


def test_candidates_follow_the_codegen_ranking() -> None:
    click = candidates(Intent("click", "Save", ()))
    assert [c.source for c in click[:2]] == ["role", "role"]
    assert click[0].roles[:2] == ("button", "link") and click[0].exact
    assert [c.score for c in click] == sorted(c.score for c in click)
    fill = candidates(Intent("fill", "Email", ()))
    assert {c.source for c in fill} >= {"role", "placeholder", "label", "near", "slug"}
    assert candidates(Intent("click", "submit-btn", ()))[0].source == "testid"
    assert candidates(Intent("click", None, ("link",)))[0].spec == LocatorSpec.of(
        "get_by_role", "link")


def test_fuzzy_candidates_from_the_aria_snapshot() -> None:
    snapshot = '- main:\n  - button "Place your order"\n  - button "Back to cart"\n'
    found = fuzzy_candidates(Intent("click", "Place order", ()), snapshot)
    assert [str(c.spec) for c in found] == [
        'get_by_role("button", name="Place your order", exact=True)']
    assert 250 < found[0].score < 300
    assert fuzzy_candidates(Intent("click", "Checkout now", ()), snapshot) == []


def test_locator_strings_round_trip_and_refuse_code() -> None:
    spec = (LocatorSpec.of("get_by_role", "row").then("filter", has_text='Grace "G"')
            .then("get_by_role", "button", name="Edit", exact=True).then("last"))
    text = str(spec)
    assert text == ('get_by_role("row").filter(has_text="Grace \\"G\\"")'
                    '.get_by_role("button", name="Edit", exact=True).last')
    assert LocatorSpec.parse(text) == spec
    for bad in ('__import__("os").system("id")', "get_by_role(x)", "page.evaluate('1')",
                'get_by_role("button", timeout=1)', "not a locator ("):
        with pytest.raises(InvalidLocator):
            LocatorSpec.parse(bad)


def test_url_matching() -> None:
    url = "http://127.0.0.1:8000/dashboard.html?user=ada"
    assert url_matches(url, "/dashboard.html", contains=False)
    assert url_matches(url, "http://127.0.0.1:8000/dashboard.html?user=ada", contains=False)
    assert url_matches(url, "*/dashboard.html*", contains=False)
    assert url_matches(url, "dashboard", contains=True)
    assert not url_matches(url, "/login.html", contains=False)
    assert not url_matches(url, "dashboard", contains=False)


def test_explain_keeps_the_reason_from_the_call_log() -> None:
    error = PlaywrightError(
        "Locator.click: Timeout 2000ms exceeded.\nCall log:\n  - waiting for get_by_role(...)\n"
        '    - <div id="onetrust-banner-sdk">…</div> intercepts pointer events\n'
        "  - retrying click action"
    )
    text = explain(error)
    assert text.startswith("Locator.click: Timeout 2000ms exceeded; blocked:")
    assert "onetrust-banner-sdk" in text and "intercepts pointer events" in text


def test_step_details_are_trimmed_to_fit_the_event_limit() -> None:
    from ledger.domain import STEP_BUDGETS
    from worker import bounds

    details = {"locator": "x", "heal": {"old": "a", "new": "b"},
               "candidates": [["get_by_text(" + "y" * 190 + ")", 180, 1]] * 80,
               "fingerprint": {"name": "z" * 80}}
    fitted = bounds.details(details)
    assert len(orjson.dumps(fitted)) <= STEP_BUDGETS["details"]
    assert fitted["trimmed"] == ["candidates"] and fitted["heal"] and "fingerprint" in fitted
