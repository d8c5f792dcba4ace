// The run page: replays the run's events from its stream and keeps following it live.
// Everything shown is folded from the events (deduplicated by version), so a reconnect that
// resumes with Last-Event-ID, or a reload, never shows a step twice.
import {
  api, artifactLink, badge, duration, el, follow, showError, timeElement,
} from "./common.js";

const runId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const TERMINAL = new Set(["completed", "errored", "timed-out", "cancelled"]);

const run = {
  version: 0, status: "loading", testId: null, testName: null, attempt: null,
  queuedAt: null, startedAt: null, endedAt: null, durationMs: null, worker: null,
  error: null, errorKind: null, errorStep: null, planned: [], results: new Map(),
  ended: false, attempts: null, flaky: false,
};

function statusOf(event) {
  const data = event.data;
  if (event.type === "completed") return data.status;
  if (event.type === "cancelled") return "cancelled";
  return "failed";
}

function apply(event) {
  if (event.version <= run.version) return false; // already shown: a resumed stream repeats nothing
  run.version = event.version;
  const data = event.data;
  switch (event.type) {
    case "queued":
      Object.assign(run, {
        status: "queued", testId: data.test_id, testName: data.test_name,
        attempt: data.attempt, queuedAt: event.timestamp, planned: data.steps || [],
      });
      break;
    case "started":
      Object.assign(run, {
        status: "running", startedAt: event.timestamp, worker: data.worker,
        attempt: data.attempt,
      });
      break;
    case "step":
      run.results.set(data.index, data);
      break;
    default:
      if (TERMINAL.has(event.type)) {
        run.ended = true;
        run.status = statusOf(event);
        run.endedAt = event.timestamp;
        run.error = data.error ?? data.message ?? data.reason ?? null;
        run.errorKind = data.kind ?? (event.type === "timed-out" ? "timeout" : null);
        run.errorStep = data.error_step ?? data.step ?? null;
        run.durationMs = data.duration_ms
          ?? (run.startedAt ? Date.parse(event.timestamp) - Date.parse(run.startedAt) : null);
      }
  }
  return true;
}

// -- rendering ---------------------------------------------------------------------------

function fact(term, ...value) {
  return [el("dt", { text: term }), el("dd", {}, ...value)];
}

function renderHead() {
  document.title = `${run.testName || "Run"} · ${run.status} · runledger`;
  const title = document.getElementById("run-title");
  title.replaceChildren(run.testName || "Run");
  document.getElementById("status").replaceChildren(badge(run.status));
  const facts = document.getElementById("facts");
  facts.replaceChildren(
    ...fact("Test", run.testId ? el("a", { href: `../tests/${run.testId}`, text: run.testName || run.testId }) : "–"),
    ...fact("Run", el("code", { text: runId })),
    ...fact("Attempt", attemptsView()),
    ...fact("Queued", timeElement(run.queuedAt)),
    ...fact("Started", timeElement(run.startedAt)),
    ...fact("Finished", timeElement(run.endedAt)),
    ...fact("Duration", duration(run.durationMs)),
    ...fact("Worker", run.worker || "–"),
  );
  const error = document.getElementById("run-error");
  error.hidden = !run.error || run.status === "passed";
  error.textContent = run.error ? `${run.errorKind ? `${run.errorKind}: ` : ""}${run.error}` : "";
  document.getElementById("cancel").hidden = run.ended || run.status === "loading";
}

function stepState(index) {
  const result = run.results.get(index);
  if (result) return result.status;
  if (!run.ended) return run.status === "running" && index === nextIndex() ? "running" : "pending";
  return "skipped";
}

function nextIndex() {
  let index = 0;
  while (run.results.has(index)) index += 1;
  return index;
}

function renderSteps() {
  const list = document.getElementById("steps");
  const count = Math.max(run.planned.length, ...[...run.results.keys()].map((i) => i + 1), 0);
  const items = [];
  for (let index = 0; index < count; index += 1) {
    items.push(stepItem(index, run.planned[index] || {}, run.results.get(index)));
  }
  list.replaceChildren(...items);
}

function stepItem(index, planned, result) {
  const state = stepState(index);
  const failing = state === "failed";
  const item = el("li", {
    class: `step step-${state}${failing ? " failing" : ""}`,
    id: `step-${index}`, "data-index": index, "data-state": state,
  });
  const action = result?.action || planned.action || "";
  const instruction = result?.instruction || planned.instruction || "";
  item.append(el("div", { class: "step-head" },
    el("span", { class: "step-number", text: `${index + 1}.` }),
    el("span", { class: "action", text: action }),
    el("span", { class: "instruction", text: instruction }),
    el("span", { class: `badge status-${state}`, text: state })));
  if (result) item.append(stepFacts(result));
  if (result?.error) {
    const kind = result.details?.error_kind;
    item.append(el("p", { class: "step-error" },
      kind ? el("strong", { text: `${kind}: ` }) : null, result.error));
  }
  if (failing) item.append(candidates(result));
  if (result) item.append(thumbnails(index, result));
  return item;
}

function stepFacts(result) {
  const facts = el("p", { class: "step-facts" },
    el("span", { text: `${duration(result.duration_ms)}` }),
    result.strategy ? el("span", { text: `strategy: ${result.strategy}` }) : null,
    result.attempts > 1 ? el("span", { text: `attempts: ${result.attempts}` }) : null);
  const heal = result.details?.heal;
  if (result.healed) {
    facts.append(el("span", { class: "healed", title: "healed" },
      "healed",
      heal ? el("span", { class: "heal" }, " ", el("code", { text: heal.old }), " → ",
        el("code", { text: heal.new })) : null));
  }
  return facts;
}

function candidates(result) {
  const rows = result?.details?.candidates || [];
  if (!rows.length) return el("p", { class: "hint", text: "No candidate elements were found." });
  return el("details", { class: "candidates", open: true },
    el("summary", { text: "Closest candidates" }),
    el("table", {},
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "Locator" }), el("th", { scope: "col", text: "Score" }),
        el("th", { scope: "col", text: "Matches" }))),
      el("tbody", {}, rows.map(([locator, score, matches]) => el("tr", {},
        el("td", {}, el("code", { text: locator })), el("td", { text: score }),
        el("td", { text: matches }))))));
}

function thumbnails(index, result) {
  const box = el("div", { class: "shots" });
  for (const artifact of result.artifacts || []) {
    if (artifact.kind === "trace") {
      showTrace(artifact);
      continue;
    }
    if (!(artifact.content_type || "").startsWith("image/")) continue;
    const link = el("a", { class: "shot", href: "#", "aria-label": `Screenshot of step ${index + 1}, full size` });
    const image = el("img", { alt: `Screenshot after step ${index + 1}`, loading: "lazy", width: 240 });
    link.append(image);
    artifactLink(runId, artifact.id).then((url) => {
      image.src = url;
      link.href = url;
    }).catch(showError);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openViewer(link.href, `Screenshot after step ${index + 1}`);
    });
    box.append(link);
  }
  return box;
}

function showTrace(artifact) {
  const section = document.getElementById("trace");
  const link = document.getElementById("trace-link");
  artifactLink(runId, artifact.id).then((url) => {
    link.href = url;
    section.hidden = false;
  }).catch(showError);
}

function openViewer(url, label) {
  const viewer = document.getElementById("viewer");
  const image = document.getElementById("viewer-image");
  image.src = url;
  image.alt = label;
  viewer.setAttribute("aria-label", label);
  viewer.showModal();
}

// A failed run of a test with `retries` is queued again as its next attempt, a run of its
// own: the head lists every attempt with a link, and says "flaky" when the last one passed.
function attemptsView() {
  if (!run.attempts || run.attempts.length < 2) return String(run.attempt ?? "–");
  const items = run.attempts.map((a) => el("li", {},
    a.run_id === runId
      ? el("strong", { text: `#${a.attempt} ${a.status}`, "aria-current": "page" })
      : el("a", { href: encodeURIComponent(a.run_id), text: `#${a.attempt} ${a.status}` })));
  return [el("ol", { class: "attempts" }, ...items),
    run.flaky ? el("span", { class: "badge flaky", text: "flaky" }) : null];
}

let attemptsAsked = 0;
async function loadAttempts() {
  try {
    const body = await api(`/runs/${runId}/attempts`);
    Object.assign(run, { attempts: body.items, flaky: body.flaky });
    renderHead();
    // A retry is queued by a follower a moment after this run failed: while this run is the
    // last attempt and failed, ask again a few times rather than keep a stream open for it.
    const last = body.items[body.items.length - 1];
    if (run.ended && last && last.run_id === runId && last.status === "failed"
        && attemptsAsked < 5) {
      attemptsAsked += 1;
      setTimeout(loadAttempts, 1000);
    }
  } catch (error) {
    showError(error);
  }
}

function render() {
  renderHead();
  renderSteps();
}

// -- wiring ------------------------------------------------------------------------------

document.getElementById("cancel").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    await api(`/runs/${runId}/cancel`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason: "cancelled from the run page" }),
    });
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
});

const connection = document.getElementById("connection");
follow(`/runs/${runId}/stream`, {
  onMessage(message) {
    if (!apply(message.data)) return;
    render();
    const type = message.data.type;
    if (type === "queued" || TERMINAL.has(type)) loadAttempts();
  },
  onState(state, error) {
    connection.textContent = { live: "live", ended: "", reconnecting: "reconnecting…" }[state] ?? "";
    connection.dataset.state = state;
    if (state === "failed") showError(error);
  },
  done: () => run.ended,
});
