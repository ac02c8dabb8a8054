// hookline console: a single page over the public admin API. The link's token arrives in the
// URL fragment (#t=...), is kept in sessionStorage (no cookies) and removed from the address
// bar, and is sent as a bearer token; the API decides what it may see. Views are chosen by the
// fragment (#/overview, #/endpoints, #/subscription/<id>, #/dlq, #/event, #/replay, #/live) and
// re-render while shown. The live parts (overview, live tail, the SSE reader) are in live.js.
"use strict";

const state = { token: null, admin: false, timer: null, flash: null, live: new AbortController() };
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

class ApiError extends Error {
  constructor(status, body) { super(body?.error?.message || `HTTP ${status}`); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}` }, credentials: "omit" };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const resp = await fetch(path, init);
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (resp.status === 401) { denied(); throw new ApiError(401, data); }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// Times in the viewer's zone, UTC on hover.
function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return el("time", { datetime: iso, title: d.toISOString() }, d.toLocaleString());
}
const pct = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(1)}%`);
const ms = (v) => (v === null || v === undefined ? "–" : `${v} ms`);

function denied() {
  clearInterval(state.timer);
  state.live.abort();
  sessionStorage.removeItem("hookline.token");
  $("#nav").hidden = true;
  $("#scope").textContent = "";
  $("#main").replaceChildren(el("div", { class: "denied", role: "alert" },
    el("p", {}, "This console link expired or is invalid."),
    el("p", {}, "Link expired or invalid: ask for a new link.")));
}

// A one-time notice (a new secret) is shown at the top of the next view only.
function show(title, ...content) {
  const flash = state.flash || "";
  state.flash = null;
  $("#main").replaceChildren(el("h1", {}, title), flash, ...content);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("current", location.hash.startsWith(a.getAttribute("href")));
  }
}

function poll(fn, every = 2000) {
  clearInterval(state.timer);
  state.timer = setInterval(() => fn().catch(() => {}), every);
}

// A sortable table; `narrow` lists the columns hidden at phone width (their cells carry the
// class hide-narrow too).
function table(headers, rows, empty, narrow = []) {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  const body = el("tbody", {}, rows);
  const head = headers.map((h, i) => el("th", { scope: "col", tabindex: 0, class: narrow.includes(i) ? "hide-narrow" : null,
    onclick: () => sortBy(body, i), onkeydown: (e) => e.key === "Enter" && sortBy(body, i) }, h));
  return el("div", { class: "table" }, el("table", {}, el("thead", {}, el("tr", {}, head)), body));
}

function sortBy(body, i) {
  const rows = [...body.rows];
  const dir = body.dataset.sorted === String(i) ? -1 : 1;
  body.dataset.sorted = dir === 1 ? String(i) : "";
  rows.sort((a, b) => dir * a.cells[i].textContent.localeCompare(b.cells[i].textContent, undefined, { numeric: true }));
  body.append(...rows);
}

// ---- endpoints ----
async function endpoints() {
  const filter = el("input", { type: "search", placeholder: "Filter by URL, tenant, type", "aria-label": "Filter" });
  const list = el("div", { id: "endpoints" });
  const made = el("div");
  show("Endpoints", createForm(made), made, el("div", { class: "toolbar" }, filter), list);
  const draw = async () => {
    const page = await api("GET", "/v1/subscriptions?limit=500");
    const stats = await Promise.all(page.items.map((s) =>
      api("GET", `/v1/subscriptions/${s.id}/stats`).catch(() => null)));
    const q = filter.value.toLowerCase();
    const rows = page.items.map((s, i) => ({ s, st: stats[i] }))
      .filter(({ s }) => !q || JSON.stringify([s.url, s.tenant_id, s.event_types, s.description]).toLowerCase().includes(q))
      .map(({ s, st }) => el("tr", { "data-id": s.id },
        el("td", { class: "url" }, el("a", { href: `#/subscription/${s.id}` }, s.url)),
        el("td", {}, s.tenant_id || "–"),
        el("td", { class: "hide-narrow" }, s.description || ""),
        el("td", { class: "hide-narrow" }, (s.event_types || []).join(", ") || "all"),
        el("td", { class: `health-${st?.health}` }, st?.health || "?"),
        el("td", {}, String(st?.backlog ?? "")),
        el("td", {}, pct(st?.windows["5m"].success_rate)),
        el("td", { class: "hide-narrow" }, pct(st?.windows["1h"].success_rate)),
        el("td", { class: "hide-narrow" }, pct(st?.windows["24h"].success_rate))));
    list.replaceChildren(table(["URL", "Tenant", "Description", "Event types", "Health", "Backlog", "5m", "1h", "24h"],
      rows, "No endpoints yet: add one with the form above.", [2, 3, 7, 8]));
  };
  filter.addEventListener("input", () => draw().catch(() => {}));
  await draw();
  poll(draw, 5000);
}

// A subscription's body_format values and how the console names them.
const BODY_FORMATS = [["envelope", "Standard Webhooks envelope"], ["payload", "Payload only"],
  ["cloudevents", "CloudEvent (structured)"], ["cloudevents_binary", "CloudEvent (binary)"]];

function createForm(made) {
  const url = el("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/hooks", size: 34 });
  const types = el("input", { name: "event_types", placeholder: "order.*, invoice.paid" });
  const desc = el("input", { name: "description", placeholder: "optional" });
  const tenant = el("input", { name: "tenant_id", placeholder: "optional" });
  const keyType = el("select", { name: "key_type" },
    el("option", { value: "hmac" }, "HMAC-SHA256 (v1)"), el("option", { value: "ed25519" }, "Ed25519 (v1a)"));
  const bodyFormat = el("select", { name: "body_format" }, ...BODY_FORMATS.map(([v, label]) => el("option", { value: v }, label)));
  const more = advancedFields(null);
  const submit = async (e) => {
    e.preventDefault();
    const body = { url: url.value, event_types: types.value.split(",").map((t) => t.trim()).filter(Boolean) };
    if (desc.value) body.description = desc.value;
    if (state.admin && tenant.value) body.tenant_id = tenant.value;
    if (keyType.value !== "hmac") body.key_type = keyType.value;
    if (bodyFormat.value !== "envelope") body.body_format = bodyFormat.value;
    try {
      more.apply(body);
      const s = await api("POST", "/v1/subscriptions", body);
      state.flash = s.secret ? secretNotice(`Endpoint ${s.id} created.`, s.secret) : publicKeyNotice(`Endpoint ${s.id} created.`, s.public_key);
      await route();
    } catch (err) { made.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  return el("form", { class: "inline", onsubmit: submit, "aria-label": "Add an endpoint" },
    el("label", {}, "URL", url), el("label", {}, "Event types", types), el("label", {}, "Description", desc),
    state.admin ? el("label", {}, "Tenant", tenant) : "", el("label", {}, "Signature", keyType),
    el("label", {}, "Body", bodyFormat), more.fields,
    el("button", { type: "submit" }, "Add endpoint"));
}

// The subscription features beyond URL and types: payload filter, own retry schedule, custom
// headers. Empty fields leave a setting as it is on edit; `{}` / an emptied schedule remove it.
function advancedFields(s) {
  const filter = el("textarea", { name: "filter", rows: 3, cols: 40, placeholder: '{"amount": {"$gt": 100}}' });
  filter.value = s?.filter ? JSON.stringify(s.filter) : "";
  const schedule = el("input", { name: "retry_schedule", placeholder: "global: or 0s, 1m, 10m", value: (s?.retry_schedule || []).join(", ") });
  const validation = el("select", { name: "validation" }, ["none", "cloudevents"].map((v) => el("option", { value: v, selected: v === (s?.validation || "none") }, v)));
  const headers = el("textarea", { name: "headers", rows: 2, cols: 40,
    placeholder: s?.headers ? `set: ${Object.keys(s.headers).join(", ")} (values hidden); JSON replaces all, {} removes` : '{"X-Api-Key": "..."}' });
  const json = (field, text) => {
    try { return JSON.parse(text); } catch { throw new Error(`${field}: not valid JSON`); }
  };
  const apply = (body) => {
    const f = filter.value.trim();
    if (f !== (s?.filter ? JSON.stringify(s.filter) : "")) body.filter = f ? json("filter", f) : {};
    const r = schedule.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (r.join(",") !== (s?.retry_schedule || []).join(",")) body.retry_schedule = r;
    if (headers.value.trim()) body.headers = json("headers", headers.value.trim());
    if (validation.value !== (s?.validation || "none")) body.validation = validation.value;
    if (!s && body.retry_schedule && !body.retry_schedule.length) delete body.retry_schedule;
    return body;
  };
  const fields = el("details", { class: "more" }, el("summary", {}, "Filter, retry schedule, headers, validation"),
    el("div", { class: "inline" }, el("label", {}, "Payload filter (JSON)", filter), el("label", {}, "Retry schedule", schedule),
      el("label", {}, "Custom headers (JSON)", headers), el("label", {}, "Endpoint validation (CloudEvents handshake)", validation)));
  return { fields, apply };
}

function secretNotice(what, secret) {
  return el("div", { class: "notice", role: "status" }, el("p", {}, `${what} Its signing secret is shown only this once:`),
    el("div", { class: "secret", id: "secret" }, secret));
}

// An ed25519 subscription: hookline keeps the private key; the receiver verifies with this one.
function publicKeyNotice(what, key) {
  return el("div", { class: "notice", role: "status" }, el("p", {}, `${what} Receivers verify its v1a signatures with this public key:`),
    el("div", { class: "secret", id: "public-key" }, key));
}

// ---- one subscription ----
async function subscription(id) {
  const s = await api("GET", `/v1/subscriptions/${id}`);
  const notice = el("div");
  const act = async (what, confirmText) => {
    if (confirmText && !confirm(confirmText)) return;
    try {
      const r = await api("POST", `/v1/subscriptions/${id}/${what}`, {});
      if (what === "rotate-secret") {
        state.flash = r.secret ? secretNotice("Secret rotated.", r.secret) : publicKeyNotice("Signing key rotated.", r.public_key);
      }
      await route();
    } catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  const remove = async () => {
    if (!confirm(`Delete the endpoint ${s.url}? Its deliveries stop for good.`)) return;
    try {
      await api("DELETE", `/v1/subscriptions/${id}`);
      state.flash = el("p", { class: "notice", role: "status" }, `Endpoint ${id} deleted.`);
      location.hash = "#/endpoints";
    } catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  const test = async () => {
    notice.replaceChildren(el("p", { class: "notice", role: "status" }, "Sending a test event…"));
    try {
      const r = await api("POST", `/v1/subscriptions/${id}/test`, {});
      const what = r.delivered ? "Test event delivered" : "Test event not delivered";
      notice.replaceChildren(el("div", { class: "notice", role: "status", id: "test-outcome" },
        el("p", {}, `${what}: HTTP ${r.status ?? "–"} in ${ms(r.duration_ms)}.`),
        r.error ? el("p", {}, r.error) : "", r.response_body ? el("pre", {}, r.response_body) : ""));
    } catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  const rows = el("tbody");
  const empty = el("p", { class: "empty" }, "No attempts yet: publish an event this endpoint subscribes to, or send a test event.");
  show(s.description || s.url,
    notice,
    el("dl", {}, el("dt", {}, "id"), el("dd", {}, s.id), el("dt", {}, "URL"), el("dd", {}, s.url),
      el("dt", {}, "tenant"), el("dd", {}, s.tenant_id || "–"),
      el("dt", {}, "event types"), el("dd", {}, (s.event_types || []).join(", ") || "all"),
      el("dt", {}, "state"), el("dd", { id: "sub-state" }, s.active ? "active" : `inactive${s.disabled_reason ? ` (${s.disabled_reason})` : ""}`),
      s.validation_status ? [el("dt", {}, "validation"), el("dd", { id: "sub-validation" }, `cloudevents handshake ${s.validation_status}${s.allowed_rate_per_minute ? `, ${s.allowed_rate_per_minute}/min granted` : ""}`)] : "",
      el("dt", {}, "signature"), el("dd", { id: "sub-signature" }, s.key_type === "ed25519" ? "Ed25519 (v1a)" : "HMAC-SHA256 (v1)"),
      el("dt", {}, "body"), el("dd", { id: "sub-body-format" }, (BODY_FORMATS.find(([v]) => v === s.body_format) || [0, s.body_format])[1]),
      s.public_key ? [el("dt", {}, "public key"), el("dd", {}, el("code", { id: "sub-public-key" }, s.public_key))] : "",
      s.filter ? [el("dt", {}, "payload filter"), el("dd", {}, el("code", { id: "sub-filter" }, JSON.stringify(s.filter)))] : "",
      el("dt", {}, "retry schedule"), el("dd", { id: "sub-schedule" }, s.retry_schedule ? s.retry_schedule.join(", ") : "the global one"),
      s.headers ? [el("dt", {}, "custom headers"), el("dd", {}, `${Object.keys(s.headers).join(", ")} (values hidden)`)] : "",
      el("dt", {}, "created"), el("dd", {}, time(s.created_at))),
    el("div", { class: "toolbar" },
      s.active ? el("button", { class: "secondary", onclick: () => act("deactivate", "Deactivate this endpoint? Deliveries pause.") }, "Deactivate")
        : el("button", { onclick: () => act("activate") }, "Activate"),
      el("button", { class: "secondary", onclick: test, id: "send-test" }, "Send a test event"),
      el("button", { class: "secondary", onclick: () => act("rotate-secret", "Rotate the signing secret? The old one keeps signing for the grace window.") }, "Rotate secret"),
      el("button", { class: "danger", onclick: () => remove(), id: "delete" }, "Delete"),
      el("a", { href: `#/dlq/${id}` }, "Dead letters of this endpoint"),
      el("a", { href: `#/replay/${id}` }, "Replay to this endpoint")),
    editForm(s, notice), el("h2", {}, "Attempts (live)"),
    el("div", { id: "attempts", "aria-live": "polite" }, empty, attemptTable(rows, false)));
  const seen = new Set();
  const add = (a, atTop) => {
    if (seen.has(a.attempt_id)) return;
    seen.add(a.attempt_id);
    empty.hidden = true;
    if (atTop) rows.prepend(attemptRow(a, false)); else rows.append(attemptRow(a, false));
    while (rows.rows.length > 200) rows.deleteRow(-1);
  };
  // The stored attempts, then every new one as it happens: the page is read once the live feed
  // is connected, so none falls between the two (doubles are dropped by id).
  let connected;
  const up = new Promise((resolve) => { connected = resolve; });
  follow(`/v1/live?subscription_id=${encodeURIComponent(id)}`, (name, data) => { if (name === "attempt") add(data, true); },
    (ok) => ok && connected());
  await Promise.race([up, new Promise((r) => setTimeout(r, 3000))]);
  const page = await api("GET", `/v1/attempts?subscription_id=${encodeURIComponent(id)}&limit=50`);
  for (const a of page.items) add(a, false);
  empty.hidden = rows.rows.length > 0;
}

// The attempts table (headers only; rows come from attemptRow).
function attemptTable(rows, withSub) {
  const head = ["When", ...(withSub ? ["Subscription"] : []), "Event", "Attempt", "Status", "HTTP", "Duration", "Response / error"];
  return el("div", { class: "table" }, el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))), rows));
}

function attemptRow(a, withSub) {
  return el("tr", { "data-event": a.event_id, "data-attempt": a.attempt_id },
    el("td", {}, time(a.at)),
    withSub ? el("td", {}, el("a", { href: `#/subscription/${a.subscription_id}` }, a.subscription_id)) : "",
    el("td", {}, el("a", { href: `#/event/${encodeURIComponent(a.event_id)}` }, `${a.event_type} ${a.event_id}`)),
    el("td", {}, String(a.attempt)),
    el("td", { class: `status-${a.status}` }, a.status), el("td", {}, String(a.http_status ?? "–")),
    el("td", {}, ms(a.duration_ms)), el("td", { class: "excerpt" }, (a.error || "") + (a.response_body ? ` ${a.response_body}` : "")));
}

function editForm(s, notice) {
  const url = el("input", { name: "url", type: "url", required: true, value: s.url, size: 34 });
  const types = el("input", { name: "event_types", value: (s.event_types || []).join(", ") });
  const desc = el("input", { name: "description", value: s.description || "" });
  const more = advancedFields(s);
  const save = async (e) => {
    e.preventDefault();
    const body = { url: url.value, description: desc.value,
      event_types: types.value.split(",").map((t) => t.trim()).filter(Boolean) };
    try {
      more.apply(body);
      await api("PATCH", `/v1/subscriptions/${s.id}`, body);
      state.flash = el("p", { class: "notice", role: "status" }, "Endpoint saved.");
      await route();
    } catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  return el("details", {}, el("summary", {}, "Edit"),
    el("form", { class: "inline", onsubmit: save, "aria-label": "Edit the endpoint" },
      el("label", {}, "URL", url), el("label", {}, "Event types", types), el("label", {}, "Description", desc),
      more.fields, el("button", { type: "submit" }, "Save")));
}

// ---- DLQ ----
async function dlq(sub) {
  const q = sub ? `?subscription_id=${encodeURIComponent(sub)}` : "";
  const notice = el("div", { role: "status" });
  const list = el("div", { id: "dlq" });
  const subs = (await api("GET", "/v1/subscriptions?limit=500")).items;
  const pick = el("select", { "aria-label": "Subscription", onchange: (e) => { location.hash = e.target.value ? `#/dlq/${e.target.value}` : "#/dlq"; } },
    el("option", { value: "" }, "every subscription"),
    subs.map((s) => el("option", { value: s.id, selected: s.id === sub }, `${s.url} (${s.id})`)));
  const run = async (fn, confirmText) => {
    if (confirmText && !confirm(confirmText)) return;
    try { notice.replaceChildren(el("p", { class: "notice" }, await fn())); await draw(); }
    catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  const redeliver = async (seq) => {
    const d = await api("POST", `/v1/dlq/${seq}/redeliver`, {});
    return `Redelivered entry ${d.sequence} (event ${d.event_id}).`;
  };
  // A reason filter narrows the list in the page; "Redeliver all" then names the entries shown.
  const reason = el("select", { "aria-label": "Reason", id: "dlq-reason", onchange: () => draw().catch(() => {}) },
    el("option", { value: "" }, "every reason"));
  let shown = [];
  const all = async () => {
    const body = reason.value ? { sequences: shown.map((d) => d.sequence) }
      : sub ? { all: true, subscription_id: sub } : { all: true };
    if (reason.value && !shown.length) return "Nothing to redeliver.";
    const r = await api("POST", "/v1/dlq/redeliver", body);
    return `Redelivered ${r.redelivered.length}, failed ${r.failed.length}.`;
  };
  const purge = async () => { const r = await api("DELETE", `/v1/dlq${q}`); return `Purged ${r.purged} entries.`; };
  const purgeButton = el("button", { class: "danger", onclick: () => run(purge, `Purge every dead letter${sub ? " of this endpoint" : ""}? They cannot be recovered.`) }, "Purge");
  show("Dead letters", el("div", { class: "toolbar" }, pick, reason,
    el("button", { onclick: () => run(all, "Redeliver every entry shown?") }, "Redeliver all shown"), purgeButton),
  notice, list);
  const draw = async () => {
    const entries = await api("GET", `/v1/dlq${q}`);
    const reasons = [...new Set(entries.map((d) => d.reason))].sort();
    const chosen = reason.value;
    reason.replaceChildren(el("option", { value: "" }, "every reason"),
      ...reasons.map((r) => el("option", { value: r, selected: r === chosen }, r)));
    if (chosen && !reasons.includes(chosen)) reason.append(el("option", { value: chosen, selected: true }, chosen));
    // Purge works on a subscription or everything, not on a reason: not offered while filtering.
    purgeButton.disabled = Boolean(chosen);
    purgeButton.title = chosen ? "Purge removes every entry (of the subscription), not one reason: clear the reason filter first" : "";
    shown = entries.filter((d) => !chosen || d.reason === chosen);
    // Entries being inspected stay open across refreshes.
    const open = new Set([...list.querySelectorAll("tr[data-seq] details[open]")].map((d) => d.closest("tr").dataset.seq));
    list.replaceChildren(table(["Seq", "Dead-lettered", "Subscription", "Event", "Reason", "Attempts", "Last HTTP", ""],
      shown.map((d) => el("tr", { "data-seq": d.sequence },
        el("td", {}, String(d.sequence)), el("td", {}, time(d.dead_lettered_at)), el("td", {}, d.subscription_id),
        el("td", {}, `${d.event_type} ${d.event_id}`),
        el("td", {}, el("details", { open: open.has(String(d.sequence)) }, el("summary", {}, d.reason), el("pre", {}, JSON.stringify(d, null, 2)))),
        el("td", {}, String(d.attempts)), el("td", {}, String(d.last_status ?? "–")),
        el("td", {}, el("button", { class: "secondary", onclick: () => run(() => redeliver(d.sequence)) }, "Redeliver")))),
      chosen ? "No dead letter with this reason." : "The dead-letter queue is empty: nothing failed for good."));
  };
  await draw();
  poll(draw, 3000);
}

// ---- event lookup and replay ----
async function eventView(id) {
  const input = el("input", { type: "search", name: "event_id", value: id || "", placeholder: "evt_...", "aria-label": "Event id" });
  const go = (e) => { e.preventDefault(); if (input.value) location.hash = `#/event/${encodeURIComponent(input.value.trim())}`; };
  const notice = el("div", { role: "status" });
  const timeline = el("div", { id: "timeline" });
  const replay = async () => {
    if (!confirm(`Replay ${id} to every subscription that matches it?`)) return;
    try {
      const r = await api("POST", "/v1/replay", { event_id: id });
      notice.replaceChildren(el("p", { class: "notice" }, `Replay queued ${r.queued} deliver${r.queued === 1 ? "y" : "ies"}.`));
    } catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  show("Event lookup", el("form", { class: "inline", onsubmit: go }, el("label", {}, "Event id", input), el("button", { type: "submit" }, "Look up")),
    id ? el("div", { class: "toolbar" }, el("button", { class: "secondary", onclick: replay }, "Replay this event")) : "", notice, timeline);
  if (!id) return timeline.append(el("p", { class: "empty" }, "Enter an event id to see every attempt of it, per subscription."));
  const draw = async () => {
    const page = await api("GET", `/v1/attempts?event_id=${encodeURIComponent(id)}&limit=200`);
    const rows = page.items.slice().reverse().map((a) => el("tr", { "data-subscription": a.subscription_id },
      el("td", {}, el("a", { href: `#/subscription/${a.subscription_id}` }, a.subscription_id)), el("td", {}, time(a.at)),
      el("td", {}, String(a.attempt)), el("td", { class: `status-${a.status}` }, a.status),
      el("td", {}, String(a.http_status ?? "–")), el("td", {}, a.next_retry_at ? time(a.next_retry_at) : ""),
      el("td", {}, a.error || "")));
    timeline.replaceChildren(table(["Subscription", "When", "Attempt", "Status", "HTTP", "Next retry", "Error"], rows,
      "No attempt of this event yet: it may not match any subscription, or not be published yet."));
  };
  await draw();
  poll(draw);
}

// ---- replay: one event or a time range, to every matching subscription or one ----
async function replayView(sub) {
  const subs = (await api("GET", "/v1/subscriptions?limit=500")).items;
  const notice = el("div", { role: "status" });
  const eventId = el("input", { name: "event_id", placeholder: "evt_... (or leave empty and give a time range)", size: 30 });
  const since = el("input", { name: "since", type: "datetime-local", step: 1 });
  const until = el("input", { name: "until", type: "datetime-local", step: 1 });
  const types = el("input", { name: "event_types", placeholder: "all types, or order.created, ..." });
  const target = el("select", { name: "subscription_id", "aria-label": "Replay to" },
    el("option", { value: "" }, "every matching subscription"),
    subs.map((s) => el("option", { value: s.id, selected: s.id === sub }, `${s.url} (${s.id})`)));
  const submit = async (e) => {
    e.preventDefault();
    const body = {};
    if (eventId.value.trim()) body.event_id = eventId.value.trim();
    else {
      if (!since.value) return notice.replaceChildren(el("p", { class: "notice", role: "alert" }, "Give an event id, or the start of a time range."));
      body.since = new Date(since.value).toISOString();
      if (until.value) body.until = new Date(until.value).toISOString();
      const t = types.value.split(",").map((x) => x.trim()).filter(Boolean);
      if (t.length) body.event_types = t;
    }
    if (target.value) body.subscription_id = target.value;
    const what = body.event_id ? `event ${body.event_id}` : `every event from ${new Date(body.since).toLocaleString()} to ${body.until ? new Date(body.until).toLocaleString() : "now"}`;
    if (!confirm(`Replay ${what} to ${target.value ? target.selectedOptions[0].textContent : "every matching subscription"}? Receivers get it again.`)) return;
    try {
      const r = await api("POST", "/v1/replay", body);
      notice.replaceChildren(el("p", { class: "notice", id: "replay-outcome" }, `Replay queued ${r.queued} deliver${r.queued === 1 ? "y" : "ies"}.`));
    } catch (err) { notice.replaceChildren(el("p", { class: "notice", role: "alert" }, err.message)); }
  };
  show("Replay",
    el("p", { class: "k" }, "Sends events again from the event log, signed as new attempts. Times are in your zone."),
    el("form", { class: "inline", onsubmit: submit, "aria-label": "Replay" },
      el("label", {}, "Event id", eventId), el("label", {}, "or from", since), el("label", {}, "to (default now)", until),
      el("label", {}, "Event types", types), el("label", {}, "To", target), el("button", { type: "submit" }, "Replay")),
    notice);
}

// ---- routing ----
async function route() {
  clearInterval(state.timer);
  state.live.abort();
  state.live = new AbortController();
  const [, view, arg] = location.hash.split("/");
  const param = arg ? decodeURIComponent(arg) : null;
  try {
    if (view === "subscription" && arg) return await subscription(param);
    if (view === "dlq") return await dlq(param);
    if (view === "event") return await eventView(param);
    if (view === "replay") return await replayView(param);
    if (view === "live") return await liveTail(param);
    if (view === "endpoints" || !state.admin) return await endpoints();
    return await overview();
  } catch (err) {
    if (err.status !== 401) show("Something went wrong", el("p", { class: "notice", role: "alert" }, err.message));
  } finally {
    // Keyboard users continue from the new view's content, not from the link they used.
    if (document.activeElement === document.body || document.activeElement?.closest("nav")) $("#main").focus();
  }
}

async function start() {
  const m = location.hash.match(/^#t=([^&]+)/);
  if (m) {
    sessionStorage.setItem("hookline.token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/");
  }
  state.token = sessionStorage.getItem("hookline.token");
  if (!state.token) return denied();
  try {
    // Overall stats answer only an admin: that tells which console to show.
    await api("GET", "/v1/subscriptions?limit=1");
    state.admin = await api("GET", "/v1/stats").then(() => true, (e) => (e.status === 401 ? null : false));
  } catch { return; }
  if (state.admin === null) return;
  $("#nav").hidden = false;
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = !state.admin;
  $("#scope").textContent = state.admin ? "operator console" : "endpoint portal";
  // The skip link moves the focus; following it as a link would change the view.
  $(".skip").addEventListener("click", (e) => { e.preventDefault(); $("#main").focus(); });
  window.addEventListener("hashchange", route);
  await route();
  $("#main").focus();
}

start();
