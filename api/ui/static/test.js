// The test page: its definition, and its last 30 results as a strip (from the test_stats
// read model) with pass rate and flakiness; refreshed when one of its runs ends.
import { api, duration, el, follow, showError, timeElement } from "./common.js";

const testId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const ENDED = new Set(["completed", "errored", "timed-out", "cancelled"]);

function fact(term, ...value) {
  return [el("dt", { text: term }), el("dd", {}, ...value)];
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 100)} %`;
}

function renderDefinition(test) {
  document.title = `${test.name} · runledger`;
  document.getElementById("test-title").textContent = test.name;
  document.getElementById("test-runs").href = `../runs?test_id=${encodeURIComponent(test.id)}`;
  document.getElementById("definition").replaceChildren(
    ...fact("Starts at", el("a", { href: test.url, rel: "noreferrer", text: test.url })),
    ...fact("Pop-ups", test.auto_handle_popups ? "dismissed automatically" : "left alone"),
    ...fact("Version", test.version),
    ...fact("Updated", timeElement(test.updated_at)),
  );
  document.getElementById("definition-steps").replaceChildren(...test.definition.steps.map(
    (step) => el("li", {},
      el("span", { class: "action", text: step.action }), " ",
      el("span", { class: "instruction", text: step.instruction }),
      step.value !== undefined && step.value !== null ? el("span", { class: "hint", text: ` · value: ${step.value}` }) : null,
      step.expected ? el("span", { class: "hint", text: ` · expects: ${step.expected}` }) : null,
      step.target ? el("span", { class: "hint", text: ` · to: ${step.target}` }) : null)));
}

function renderStats(stats) {
  document.getElementById("stats").replaceChildren(
    ...fact("Pass rate", el("span", { id: "pass-rate", text: percent(stats.pass_rate) }),
      el("span", { class: "hint", text: ` of the last ${stats.window}` })),
    ...fact("Flakiness", el("span", { id: "flip-rate", text: percent(stats.flip_rate) }),
      el("span", { class: "hint", text: ` (${stats.flips} flip${stats.flips === 1 ? "" : "s"} between consecutive results)` }),
      stats.flaky ? el("span", { class: "badge flaky", id: "flaky", text: "flaky" }) : null),
    ...fact("All runs", `${stats.runs} finished, ${stats.passed} passed`),
  );
  const longest = Math.max(1, ...stats.recent.map((r) => r.duration_ms || 0));
  const cells = [...stats.recent].reverse().map((result) => {
    const label = `${result.status} in ${duration(result.duration_ms)}, ${new Date(result.finished_at).toLocaleString()}`;
    const bar = el("a", {
      href: `../runs/${result.run_id}`, class: `bar status-${result.status}`,
      "aria-label": label, title: label,
    });
    // CSSOM, not a style attribute: the Content-Security-Policy allows no inline styles.
    bar.style.height = `${Math.max(8, Math.round(((result.duration_ms || 0) / longest) * 64))}px`;
    return el("li", { "data-status": result.status }, bar,
      el("span", { class: "bar-duration", text: duration(result.duration_ms) }));
  });
  const strip = document.getElementById("strip");
  strip.replaceChildren(...cells);
  if (!cells.length) strip.append(el("li", { class: "hint", text: "No finished runs yet." }));
}

async function loadStats(runId = null) {
  // The read model follows the log a moment behind the feed: wait for the run to count.
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const stats = await api(`/tests/${testId}/stats`);
    if (!runId || stats.recent.some((r) => r.run_id === runId) || attempt === 19) {
      renderStats(stats);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function main() {
  renderDefinition(await api(`/tests/${testId}`));
  await loadStats();
  follow("/runs/feed", {
    onMessage(message) {
      if (!ENDED.has(message.data.type)) return;
      api(`/runs/${message.data.run_id}`).then((run) => {
        if (run.test_id === testId && run.status !== "cancelled") return loadStats(run.id);
        return null;
      }).catch(showError);
    },
  });
}

main().catch(showError);
