// Runs in the page (main world): element facts, fingerprints and page state, for
// worker/agent/probe.py, which evaluates this file once per document (as the body of a
// function returning {probeElements, scanPage, pageState}, with BANNERS, the known consent
// banners, defined before it) and keeps the result on window.
const K = Symbol.for('runledger.ids');
const ids = window[K] || (window[K] = {map: new WeakMap(), next: 1});
const idOf = (el) => { let v = ids.map.get(el); if (!v) { v = ids.next++; ids.map.set(el, v); } return v; };
const IMPLICIT = {A: 'link', BUTTON: 'button', SELECT: 'combobox', TEXTAREA: 'textbox',
  H1: 'heading', H2: 'heading', H3: 'heading', H4: 'heading', H5: 'heading', H6: 'heading',
  IMG: 'img', NAV: 'navigation', FORM: 'form', DIALOG: 'dialog', TABLE: 'table', TR: 'row',
  LI: 'listitem', UL: 'list', OL: 'list', OPTION: 'option', SUMMARY: 'button'};
const INPUT_ROLES = {checkbox: 'checkbox', radio: 'radio', button: 'button', submit: 'button',
  reset: 'button', image: 'button', search: 'searchbox', number: 'spinbutton', range: 'slider'};
const roleOf = (el) => {
  const explicit = (el.getAttribute('role') || '').trim().split(/\s+/)[0];
  if (explicit) return explicit;
  if (el.tagName === 'INPUT') return INPUT_ROLES[(el.type || 'text').toLowerCase()] || 'textbox';
  if (el.tagName === 'A' && !el.hasAttribute('href')) return 'generic';
  if (el.tagName === 'SELECT' && (el.multiple || el.size > 1)) return 'listbox';
  if (el.isContentEditable) return 'textbox';
  return IMPLICIT[el.tagName] || 'generic';
};
const clip = (s, n) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);
const labelOf = (el) => {
  const by = el.getAttribute('aria-labelledby');
  if (by) return clip(by.split(/\s+/).map(i => document.getElementById(i)?.innerText || '').join(' '), 80);
  if (el.getAttribute('aria-label')) return clip(el.getAttribute('aria-label'), 80);
  if (el.labels && el.labels.length) return clip(el.labels[0].innerText, 80);
  if (el.tagName === 'IMG') return clip(el.getAttribute('alt'), 80);
  if (el.tagName === 'INPUT' && ['button', 'submit', 'reset'].includes(el.type)) return clip(el.value, 80);
  const own = ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName) ? '' : clip(el.innerText, 80);
  return own || clip(el.getAttribute('title') || el.getAttribute('placeholder'), 80);
};
const visible = (el) => {
  if (el.checkVisibility && !el.checkVisibility()) return false;
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility === 'visible';
};
const enabled = (el) => !(el.disabled === true || el.closest('[aria-disabled="true"]') ||
  (el.closest('fieldset[disabled]') && !el.closest('legend')));
const TEXTLIKE = /^(text|email|password|search|tel|url|number|date|datetime-local|month|time|week)$/;
const editable = (el) => enabled(el) && !el.readOnly && !(el.getAttribute('aria-readonly') === 'true') &&
  ((el.tagName === 'INPUT' && TEXTLIKE.test((el.type || 'text').toLowerCase())) ||
   el.tagName === 'TEXTAREA' || el.isContentEditable || el.getAttribute('role') === 'textbox' ||
   el.getAttribute('role') === 'searchbox' || el.getAttribute('role') === 'combobox');
const step = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id && !/\d{3,}/.test(el.id)) s += '#' + el.id;
  const cls = [...el.classList].filter(c => !/\d{3,}/.test(c)).slice(0, 2);
  if (cls.length) s += '.' + cls.join('.');
  return s;
};
const fingerprint = (el) => {
  const fp = {tag: el.tagName.toLowerCase(), role: roleOf(el), name: labelOf(el)};
  if (el.id) fp.id = el.id.slice(0, 80);
  const cls = [...el.classList].slice(0, 6); if (cls.length) fp.classes = cls;
  const text = clip(el.innerText, 80); if (text && text !== fp.name) fp.text = text;
  const attrs = {};
  for (const a of ['name', 'type', 'placeholder', 'data-testid', 'aria-label', 'title', 'alt', 'href', 'target']) {
    const v = el.getAttribute(a); if (v) attrs[a] = v.slice(0, 120);
  }
  if (Object.keys(attrs).length) fp.attrs = attrs;
  const path = []; let p = el.parentElement;
  for (let i = 0; p && i < 4 && p !== document.body; i++, p = p.parentElement) path.push(step(p));
  if (path.length) fp.path = path.reverse().join(' > ');
  return fp;
};
const modalOf = () => {
  const open = [...document.querySelectorAll('[aria-modal="true"], dialog[open]')]
    .filter(d => visible(d) && (d.getAttribute('aria-modal') === 'true' || d.matches(':modal')));
  return open.length ? open[open.length - 1] : null;
};
const CAPTCHAS = [
  ['iframe[src*="recaptcha/api2/bframe"], iframe[src*="recaptcha/enterprise/bframe"]', 'reCAPTCHA challenge'],
  ['iframe[src*="recaptcha/api2/anchor"], iframe[src*="recaptcha/enterprise/anchor"], .g-recaptcha', 'reCAPTCHA'],
  ['iframe[src*="hcaptcha.com"], .h-captcha', 'hCaptcha'],
  ['iframe[src*="challenges.cloudflare.com"], .cf-turnstile', 'Cloudflare Turnstile'],
  ['#challenge-form, #cf-challenge-running, #challenge-stage', 'Cloudflare challenge'],
  ['iframe[title*="captcha" i], img[alt*="captcha" i]', 'CAPTCHA'],
];
const captchaOf = () => {
  for (const [sel, kind] of CAPTCHAS) {
    for (const el of document.querySelectorAll(sel)) if (visible(el)) return kind;
  }
  return null;
};
const CLICKABLE = 'button, a, [role=button], input[type=button], input[type=submit]';
const consentOf = () => {
  for (const b of BANNERS) {
    const found = [...document.querySelectorAll(b.trigger)].slice(0, 50);
    for (const el of found) {
      if (!visible(el)) continue;
      if (!b.text) return b.name;
      const re = new RegExp(b.text, 'i');
      if ([...el.querySelectorAll(CLICKABLE)].some(x => visible(x) && re.test(clip(x.innerText || x.value, 60)))) return b.name;
    }
  }
  return null;
};
const pageState = (opts) => (opts.state === false ? {modal: !!modalOf()} :
  {modal: !!modalOf(), captcha: captchaOf(), consent: consentOf()});

function probeElements(els, opts) {
  const modal = modalOf();
  const out = [];
  const shown = [];
  let hidden = 0;
  for (const el of els) {
    if (!visible(el)) { hidden++; continue; }
    const ok = opts.editable ? editable(el) : (opts.enabled ? enabled(el) : true);
    shown.push(el);
    out.push({id: idOf(el), ok, modal: !!(modal && modal.contains(el)), within: [], fp: null});
  }
  // Fingerprints only where a winner can come from: a few matches (innerText costs layout).
  if (opts.fingerprints && shown.length <= 4) shown.forEach((el, i) => { out[i].fp = fingerprint(el); });
  // A link and the image inside it can both match: say which matches hold others.
  if (shown.length > 1 && shown.length <= 50) {
    shown.forEach((el, i) => shown.forEach((other, j) => {
      if (i !== j && other.contains(el)) out[i].within.push(out[j].id);
    }));
  }
  return {elements: out, hidden, page: pageState(opts)};
}

// Every visible element that could be what a stale fingerprint described.
function scanPage(opts) {
  const modal = modalOf();
  const root = modal || document;
  const out = [];
  for (const el of root.querySelectorAll(opts.selector)) {
    if (out.length >= 400) break;
    if (!visible(el)) continue;
    const tag = el.tagName.toLowerCase();
    if (opts.roles.length && !opts.roles.includes(roleOf(el)) && !opts.tags.includes(tag)) {
      continue;
    }
    out.push({id: idOf(el), ok: opts.editable ? editable(el) : enabled(el), fp: fingerprint(el)});
  }
  return out;
}

// When the document last changed: a page is "settled" once it has been quiet a moment.
const ACT = Symbol.for('runledger.activity');
const activity = window[ACT] || (window[ACT] = (() => {
  const a = {last: performance.now(), opened: 0, closing: false};
  // Count window.open calls: a click that opens a popup makes the run wait for it.
  const open = window.open;
  if (typeof open === 'function') {
    window.open = function (...args) { a.opened++; return open.apply(this, args); };
  }
  const close = window.close;
  if (typeof close === 'function') {
    window.close = function (...args) { a.closing = true; return close.apply(this, args); };
  }
  try {
    new MutationObserver(() => { a.last = performance.now(); }).observe(document,
      {subtree: true, childList: true, attributes: true, characterData: true});
  } catch (e) { /* no document yet: counted from now */ }
  return a;
})());
function takeOpened() {
  const out = {opened: activity.opened, closing: activity.closing};
  activity.opened = 0;
  return out;
}
function settleState() {
  return {ready: document.readyState === 'complete', quiet_ms: performance.now() - activity.last};
}

// What a person could have meant, for a "not found" message: visible elements with a role
// or their own text, as (role, name, text), bounded in elements scanned and rows returned.
const NAMED = 'a, button, input, select, textarea, label, summary, h1, h2, h3, h4, h5, h6, ' +
  'img[alt], [role], [aria-label], [title], li, td, th, p, span, div, dt, dd, legend, strong, em';
const ownText = (el) => clip([...el.childNodes].filter(n => n.nodeType === 3)
  .map(n => n.textContent).join(' '), 80);
function namedElements(opts) {
  const out = [];
  const seen = new Set();
  let scanned = 0;
  for (const el of document.querySelectorAll(NAMED)) {
    if (++scanned > opts.scan || out.length >= opts.limit) break;
    const role = roleOf(el);
    const text = ownText(el);
    const name = role === 'generic' ? '' : clip(el.getAttribute('aria-label') ||
      (el.labels && el.labels.length ? el.labels[0].textContent : '') ||
      el.getAttribute('alt') || el.getAttribute('title') || el.getAttribute('placeholder') ||
      (['button', 'submit', 'reset'].includes(el.type) ? el.value : '') || text, 80);
    if (!name && !text) continue;
    const key = role + '\u0000' + name + '\u0000' + text;
    if (seen.has(key) || !visible(el)) continue;
    seen.add(key);
    out.push([role, name, text]);
  }
  // One string: Playwright validates every value of a structured result on the worker's
  // event loop, which for thousands of rows takes longer than parsing their JSON.
  return JSON.stringify(out);
}
