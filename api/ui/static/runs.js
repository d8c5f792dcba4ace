// The runs list: newest first, filtered by status and test (kept in the URL), paged by
// keyset cursor ("Older runs"), and kept live by the runs feed: each run the feed names is
// read again and shown, moved or dropped as the filters say.
import { api, badge, duration, el, follow, showError, timeElement } from "./common.js";

const params = new URLSearchParams(location.search);
const filters = { status: params.get("status") || "", test_id: params.get("test_id") || "" };
const pageSize = params.get("limit") || "25";
const rows = new Map(); // run id → run row
let cursor = null;

const statusSelect = document.getElementById("status-filter");
const testSelect = document.getElementById("test-filter");
const body = document.querySelector("#runs tbody");

function query(extra = {}) {
  const q = new URLSearchParams({ limit: pageSize, ...extra });
  if (filters.status) q.set("status", filters.status);
  if (filters.test_id) q.set("test_id", filters.test_id);
  return q.toString();
}

function matches(run) {
  return (!filters.status || run.status === filters.status)
    && (!filters.test_id || run.test_id === filters.test_id);
}

function order(a, b) {
  // Newest first, as the API pages: by created_at, then id.
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : -1;
}

function row(run) {
  return el("tr", { "data-run-id": run.id, "data-status": run.status },
    el("td", { "data-label": "Test" }, el("a", { href: `tests/${run.test_id}`, text: run.test_name })),
    el("td", { "data-label": "Status" }, badge(run.status)),
    el("td", { "data-label": "Queued" }, timeElement(run.created_at)),
    el("td", { "data-label": "Duration", text: duration(run.duration_ms) }),
    el("td", { "data-label": "Steps" }, el("span", {},
      `${run.steps_passed} passed`,
      run.steps_failed ? el("span", { class: "failed-count", text: `, ${run.steps_failed} failed` }) : null)),
    el("td", { "data-label": "Run" }, el("a", {
      href: `runs/${run.id}`, "aria-label": `Run of ${run.test_name}, ${run.status}`,
      text: "Open",
    })));
}

function render() {
  const sorted = [...rows.values()].sort(order);
  body.replaceChildren(...sorted.map(row));
  document.getElementById("empty").hidden = sorted.length > 0;
  document.getElementById("more").hidden = cursor === null;
}

async function loadPage(after) {
  const page = await api(`/runs?${query(after ? { cursor: after } : {})}`);
  for (const run of page.items) rows.set(run.id, run);
  cursor = page.next_cursor;
  render();
}

async function refresh(runId) {
  const run = await api(`/runs/${runId}`);
  const { steps, ...summary } = run;
  if (matches(summary)) rows.set(summary.id, summary);
  else rows.delete(summary.id);
  render();
}

async function loadTests() {
  const tests = await api("/tests?limit=200");
  for (const test of tests.items) {
    testSelect.append(el("option", { value: test.id, text: test.name }));
  }
  testSelect.value = filters.test_id;
}

function applyFilters() {
  const q = new URLSearchParams();
  if (statusSelect.value) q.set("status", statusSelect.value);
  if (testSelect.value) q.set("test_id", testSelect.value);
  location.search = q.toString(); // a page per filter: links and the back button work
}

statusSelect.value = filters.status;
statusSelect.addEventListener("change", applyFilters);
testSelect.addEventListener("change", applyFilters);
document.getElementById("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilters();
});
document.getElementById("more").addEventListener("click", () => loadPage(cursor).catch(showError));

const connection = document.getElementById("connection");
// The feed opens first, and the list is read once it is live: the feed starts where the list
// is (what the runs model has not shown yet comes through it), so no run falls between the
// two (showing one twice is impossible, rows are keyed by id).
let feedOpened;
const opened = new Promise((resolve) => { feedOpened = resolve; });
follow("/runs/feed", {
  onMessage(message) {
    refresh(message.data.run_id).catch(showError);
  },
  onState(state, error) {
    connection.textContent = { live: "live", reconnecting: "reconnecting…" }[state] ?? "";
    connection.dataset.state = state;
    if (state !== "ended") feedOpened(); // live; or not now: the list without it
    if (state === "failed") showError(error);
  },
});
loadTests().then(() => opened).then(() => loadPage(null)).catch(showError);
