// hookline console, live parts: the server-sent-event reader over GET /v1/live (fetch, so the
// bearer token travels in a header, never in a URL), the overview fed by its per-second ticks,
// and the live tail of attempts. Loaded before console.js, which owns routing and helpers.
"use strict";

// Follows `path` (an SSE endpoint) until the view changes, calling onEvent(name, data) per
// event; reconnects after 2 s when the stream ends or fails. Returns nothing: the route's
// AbortController (state.live) stops it.
function follow(path, onEvent, onState = () => {}) {
  const ctl = state.live;
  const once = async () => {
    const resp = await fetch(path, { headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
      credentials: "omit", signal: ctl.signal });
    if (resp.status === 401) { denied(); return false; }
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    onState(true);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buf += value;
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  };
  (async () => {
    while (!ctl.signal.aborted) {
      try { if (!(await once())) return; } catch { /* reconnect below */ }
      if (ctl.signal.aborted) return;
      onState(false);
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
}

// ---- overview (admin) ----
async function overview() {
  const status = el("p", { class: "k", id: "live-state" }, "Connecting to the live feed…");
  const cards = el("div", { class: "cards", "aria-live": "polite" });
  const charts = el("div", { class: "cards" });
  show("Overview", status, cards, charts);
  const ticks = [];
  let gauges = null;
  const card = (k, v, id) => el("div", { class: "card", id }, el("div", { class: "v" }, String(v)), el("div", { class: "k" }, k));
  const sum = (list, f) => list.reduce((n, t) => n + f(t), 0);
  const draw = () => {
    const last10 = ticks.slice(-10);
    const lastMin = ticks.slice(-60);
    const made = (t) => t.succeeded + t.failed + t.dead_lettered;
    const tried = sum(lastMin, made);
    const latest = [...ticks].reverse().find((t) => t.latency_p50_ms !== null);
    const g = gauges || {};
    // Until the feed has a second with attempts, the stored 5-minute window stands in.
    const w5 = g.windows?.["5m"] || {};
    const made5 = (w5.succeeded ?? 0) + (w5.failed ?? 0) + (w5.dead_lettered ?? 0);
    const lat = latest || w5;
    cards.replaceChildren(
      tried ? card("deliveries/s (last 10 s)", (sum(last10, made) / Math.max(1, last10.length)).toFixed(1), "stat-rate")
        : card("deliveries/s (5 min)", (made5 / 300).toFixed(2), "stat-rate"),
      tried ? card("success rate (last minute)", pct(sum(lastMin, (t) => t.succeeded) / tried), "stat-success")
        : card("success rate (5 min)", pct(w5.success_rate), "stat-success"),
      card(latest ? "p50 / p95 / p99 (latest second)" : "p50 / p95 / p99 (5 min)", `${ms(lat.latency_p50_ms)} / ${ms(lat.latency_p95_ms)} / ${ms(lat.latency_p99_ms)}`, "stat-latency"),
      card("DLQ depth", g.dlq_messages ?? "–", "stat-dlq"),
      card("fan-out lag", g.fanout_lag ?? "–", "stat-lag"),
      card("backlog", g.backlog ?? "–", "stat-backlog"),
      card("deferred (1 min)", sum(lastMin, (t) => t.deferred), "stat-deferred"),
      card("breakers open", g.breakers_open ?? "–", "stat-breakers"),
      card("delivered (24 h)", g.windows ? g.windows["24h"].succeeded : "–", "stat-24h"));
    charts.replaceChildren(
      chart("deliveries/s, last 3 min", ticks.map(made)),
      chart("success rate, last 3 min", ticks.map((t) => (made(t) ? t.succeeded / made(t) : 1)), 1),
      chart("p99 latency (ms), last 3 min", ticks.map((t) => t.latency_p99_ms ?? 0)),
      chart("DLQ depth, last 3 min", ticks.map((t) => t.dlq ?? 0)));
  };
  // The gauges (DLQ depth, lag, backlog, breakers) are state, not attempts: read every 5 s.
  const gauge = async () => { gauges = await api("GET", "/v1/stats"); draw(); };
  await gauge();
  poll(gauge, 5000);
  follow("/v1/live", (name, data) => {
    if (name !== "tick") return;
    data.dlq = gauges?.dlq_messages;
    ticks.push(data);
    if (ticks.length > 180) ticks.shift();
    draw();
  }, (up) => { status.textContent = up ? "Live: updated every second from the attempt stream." : "Live feed lost: reconnecting…"; });
}

// A small time chart (SVG polyline) of the last 180 samples.
function chart(title, values, max) {
  const NS = "http://www.w3.org/2000/svg";
  const top = max ?? Math.max(1e-9, ...values);
  const points = values.map((v, i) => `${(i / 179) * 300},${58 - (v / top) * 56}`).join(" ");
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 300 60");
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  return el("div", { class: "card" }, svg, el("div", { class: "k" }, title));
}

// ---- live tail: every attempt the token sees, as it happens ----
async function liveTail(sub) {
  const failures = el("input", { type: "checkbox", id: "failures-only" });
  const pause = el("button", { class: "secondary", type: "button", "aria-pressed": "false" }, "Pause");
  const status = el("p", { class: "k", id: "live-state" }, "Connecting…");
  const rows = el("tbody");
  const dropped = el("p", { class: "k" });
  let paused = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  });
  show(sub ? `Live tail of ${sub}` : "Live tail",
    el("div", { class: "toolbar" }, el("label", {}, failures, " failures only"), pause), status, dropped,
    el("div", { id: "tail", "aria-live": "polite" }, attemptTable(rows, true)));
  const start = () => {
    state.live.abort();
    state.live = new AbortController();
    const q = new URLSearchParams();
    if (sub) q.set("subscription_id", sub);
    if (failures.checked) q.set("failures", "true");
    follow(`/v1/live?${q}`, (name, data) => {
      if (name === "tick") {
        dropped.textContent = data.dropped ? `${data.dropped} attempts in the last second were too many to show.` : "";
        return;
      }
      if (paused) return;
      rows.prepend(attemptRow(data, true));
      while (rows.rows.length > 200) rows.deleteRow(-1);
    }, (up) => { status.textContent = up ? "Following attempts as they happen (newest first)." : "Live feed lost: reconnecting…"; });
  };
  failures.addEventListener("change", start);
  start();
}
