"""A test's addresses judged at definition time: ``POST``/``PUT /tests`` refuse a ``url`` or
navigate ``target`` whose literal host ``NAVIGATION_POLICY`` blocks.

Only the literal host can be judged here (a name may resolve anywhere later, a page may
redirect): the worker's egress proxy judges every connection again at run time. This check
is for the user, who learns at once rather than at the first run.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from api.errors import InvalidInput
from ledger.definition import Action, TestSpec
from ledger.navigation import InvalidHost, NavigationPolicy, blocked_message


def ensure_navigable(spec: TestSpec, policy: NavigationPolicy) -> None:
    """Raise ``InvalidInput`` naming each field whose URL's host the policy blocks."""
    # A relative target is on the test's own host: judged with ``url``.
    urls = [("url", spec.url)] + [
        (f"definition.steps[{index}].target", step.target)
        for index, step in enumerate(spec.definition.steps)
        if step.action == Action.NAVIGATE and step.target and urlsplit(step.target).netloc
    ]
    errors: list[tuple[str, str, str]] = []
    for field, url in urls:
        try:
            reason = policy.judge_url(url)
        except InvalidHost as exc:
            errors.append(("body", field, str(exc)))
            continue
        if reason is not None:
            host = url.split("//", 1)[-1].split("/", 1)[0].rpartition("@")[2]
            errors.append(("body", field, blocked_message("the host", host, reason,
                                                          policy.mode)))
    if errors:
        raise InvalidInput(errors)
