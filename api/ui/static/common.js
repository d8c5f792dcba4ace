// What every page shares: the API key (asked for once, kept for the tab's session), calls to
// the API, SSE read with fetch (EventSource cannot send the key in a header), small helpers.

const KEY = "runledger.apiKey";

// The API's root: the path before /ui/ or /docs, so the pages work behind a path prefix.
const cut = location.pathname.search(/\/(ui|docs)(\/|$)/);
export const BASE = cut > 0 ? location.pathname.slice(0, cut) : "";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY);
}

export function keepKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

let asking = null;

// Shows the key dialog; resolves with the key typed. One dialog at a time: concurrent
// requests that all got 401 wait for the same answer.
export function askForKey(message) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "key-dialog";
    dialog.setAttribute("aria-labelledby", "key-title");
    dialog.innerHTML = `
      <form method="dialog">
        <h2 id="key-title">API key needed</h2>
        <p class="key-message"></p>
        <label for="api-key">API key</label>
        <input id="api-key" name="key" type="password" autocomplete="off" required
               spellcheck="false">
        <p class="hint">Kept for this tab only (session storage), sent as a header.</p>
        <button type="submit">Use this key</button>
      </form>`;
    dialog.querySelector(".key-message").textContent = message;
    const input = dialog.querySelector("input");
    dialog.addEventListener("cancel", (event) => event.preventDefault()); // nothing works without
    dialog.querySelector("form").addEventListener("submit", () => {
      const key = input.value.trim();
      keepKey(key);
      dialog.remove();
      asking = null;
      resolve(key);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
  return asking;
}

function withKey(headers) {
  const key = storedKey();
  const all = new Headers(headers || {});
  if (key && !all.has("Authorization")) all.set("Authorization", `Bearer ${key}`);
  return all;
}

// fetch with the key; on 401 asks for a (new) key and tries again.
export async function authedFetch(path, options = {}) {
  for (;;) {
    const response = await fetch(BASE + path, { ...options, headers: withKey(options.headers) });
    if (response.status !== 401) return response;
    const had = storedKey();
    await response.body?.cancel();
    await askForKey(had ? "That key was refused. Enter a valid API key."
                        : "This server requires an API key.");
  }
}

export async function api(path, options = {}) {
  const response = await authedFetch(path, options);
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Parses SSE text: calls onMessage({id, event, data}) per message; returns the unparsed rest.
function parse(buffer, onMessage) {
  // A chunk may end between \r and \n: leave a trailing \r for the next chunk.
  const end = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
  let text = buffer.slice(0, end).replace(/\r\n?/g, "\n");
  const rest = buffer.slice(end);
  let split;
  while ((split = text.indexOf("\n\n")) >= 0) {
    const block = text.slice(0, split);
    text = text.slice(split + 2);
    const message = { id: null, event: "message", data: [] };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") message.data.push(value);
      else if (field === "id") message.id = value;
      else if (field === "event") message.event = value;
    }
    if (message.data.length) {
      onMessage({ ...message, data: JSON.parse(message.data.join("\n")) });
    }
  }
  return text + rest;
}

// Follows an SSE stream with fetch, reconnecting with Last-Event-ID after a drop (with
// back-off) until done() says the stream is complete or close() is called.
export function follow(path, { onMessage, onState = () => {}, done = () => false }) {
  const control = new AbortController();
  let lastId = null;
  let closed = false;
  const run = async () => {
    let delay = 500;
    while (!closed) {
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await authedFetch(path, { headers, signal: control.signal });
        if (!response.ok) {
          const problem = await response.json().catch(() => null);
          throw new ApiError(response.status, problem);
        }
        onState("live");
        delay = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done: ended } = await reader.read();
          if (ended) break;
          buffer = parse(buffer + value, (message) => {
            if (message.id !== null) lastId = message.id;
            onMessage(message);
          });
        }
        if (done()) {
          onState("ended");
          return;
        }
      } catch (error) {
        if (closed) return;
        if (error instanceof ApiError && error.status < 500) {
          onState("failed", error);
          return;
        }
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  };
  run();
  return {
    close() {
      closed = true;
      control.abort();
    },
  };
}

// A signed link to an artifact, for an <img> or a download (cached until near expiry).
const links = new Map();
export async function artifactLink(runId, artifactId) {
  const cached = links.get(artifactId);
  if (cached && Date.parse(cached.expires_at) - Date.now() > 30000) return cached.url;
  const link = await api(`/runs/${runId}/artifacts/${encodeURIComponent(artifactId)}/link`);
  links.set(artifactId, link);
  return link.url;
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60000);
  return `${minutes} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function timeElement(iso) {
  return iso ? el("time", { datetime: iso, text: when(iso) }) : "–";
}

export function badge(status) {
  return el("span", { class: `badge status-${status}`, text: status });
}

export function showError(error) {
  const box = document.getElementById("error");
  if (!box) return;
  box.textContent = error.message || String(error);
  box.hidden = false;
}
