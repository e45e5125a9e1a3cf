// Kron dashboard: routes by path, reads the JSON under /ui/api, polls it for updates and draws
// the run chart as SVG. Plain JavaScript, no library. Elements are built with `h`, never from
// HTML strings, so no name or error text from a timer can become markup.
"use strict";

const POLL_MS = 3000;
let session = null;
let timerHandle = null;
let firstRender = true;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces `el`'s children as `h` builds them: nested lists flattened, nothing for null or "".
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false && c !== ""));
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---- time ----
function abs(ms) {
  if (ms === null || ms === undefined) return "-";
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
function span(ms) {
  const s = Math.abs(ms) / 1000;
  if (s < 1) return `${Math.round(Math.abs(ms))}ms`;
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400) return `${(s / 3600).toFixed(s < 36000 ? 1 : 0)}h`;
  return `${(s / 86400).toFixed(s < 864000 ? 1 : 0)}d`;
}
function rel(ms, now) {
  if (ms === null || ms === undefined) return "-";
  const d = ms - now;
  if (Math.abs(d) < 1000) return "now";
  return d > 0 ? `in ${span(d)}` : `${span(d)} ago`;
}
function when(ms, now) {
  if (ms === null || ms === undefined) return h("span", { class: "muted" }, "-");
  return h("span", { title: new Date(ms).toISOString() }, rel(ms, now),
    h("br"), h("span", { class: "muted small" }, abs(ms)));
}
function dur(ms) { return ms === null || ms === undefined ? "-" : span(ms); }

// ---- fetching ----
async function api(path, options) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (res.status === 401 && session && session.mode === "server") {
    go("/ui/login");
    throw new Error("sign in");
  }
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body;
}

function flash(text, isError) {
  const el = document.getElementById("flash");
  el.textContent = text;
  el.className = isError ? "error" : "";
  el.hidden = false;
  clearTimeout(flash.t);
  flash.t = setTimeout(() => { el.hidden = true; }, 6000);
}

// ---- navigation ----
function go(path) {
  history.pushState(null, "", path);
  route();
}
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-link]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", () => route());

function poll(fn) {
  clearInterval(timerHandle);
  const tick = async () => {
    try { await fn(); } catch (e) { if (e.message !== "sign in") flash(e.message, true); }
  };
  tick();
  timerHandle = setInterval(tick, POLL_MS);
}

function markRendered() {
  if (firstRender) {
    firstRender = false;
    performance.mark("kron-first-render");
  }
  document.body.dataset.rendered = "1";
}

function renderWho() {
  const who = document.getElementById("who");
  who.replaceChildren();
  document.getElementById("nav-cluster").hidden = session.mode !== "server";
  const v = session.viewer;
  if (v) who.append(h("span", { id: "viewer" }, `${v.name} · ${v.role}`));
  if (session.signed_in) {
    who.append(h("form", { method: "post", action: "/ui/logout" }, h("button", { type: "submit" }, "Sign out")));
  } else {
    who.append(h("a", { href: "/ui/login", "data-link": true }, session.mode === "server" ? "Sign in" : "Sign in to act"));
  }
}

async function route() {
  clearInterval(timerHandle);
  const path = location.pathname.replace(/\/+$/, "");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("current", path.startsWith(`/ui/${a.dataset.nav}`));
  }
  const main = document.getElementById("main");
  if (path === "/ui/login") return loginPage(main);
  if (session.mode === "server" && !session.signed_in) return go("/ui/login");
  const m = path.match(/^\/ui\/timers\/(.+)$/);
  if (m) return timerPage(main, decodeURIComponent(m[1]));
  if (path === "/ui/runs") return runsPage(main);
  if (path === "/ui/cluster") return clusterPage(main);
  return timersPage(main);
}

// ---- login ----
function loginPage(main) {
  document.title = "Sign in · Kron";
  const failed = new URLSearchParams(location.search).has("failed");
  const what = session.mode === "server"
    ? "An API token: a reader token sees, an operator or admin token may also pause, resume, trigger and remove."
    : "The runtime's control token (control.token in the data directory). Reading needs no token; actions do.";
  fill(main, h("div", { class: "login card" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted small" }, what),
    failed ? h("p", { class: "error-text", id: "login-error" }, "That token was not accepted.") : null,
    h("form", { method: "post", action: "/ui/login", id: "login-form" },
      h("label", { for: "token" }, "Token"),
      h("input", { type: "password", name: "token", id: "token", autocomplete: "current-password", required: true }),
      h("button", { type: "submit", class: "primary", id: "login-submit" }, "Sign in"))));
}

// ---- timers ----
const STATES = ["scheduled", "running", "retrying", "paused", "orphaned", "completed", "dead"];

function timersPage(main) {
  document.title = "Timers · Kron";
  const params = new URLSearchParams(location.search);
  const q = h("input", { type: "search", id: "filter-name", placeholder: "Filter by name", value: params.get("q") || "" });
  const state = h("select", { id: "filter-state" }, h("option", { value: "" }, "All states"),
    STATES.map((s) => h("option", { value: s }, s)));
  state.value = params.get("state") || "";
  let page = Number(params.get("page") || "1");
  const summary = h("span", { class: "muted small", id: "timers-summary" });
  const body = h("tbody", { id: "timers-body" });
  const pager = h("div", { class: "pager" });
  fill(main,
    h("h1", {}, "Timers"),
    h("div", { class: "filters" }, q, state, summary),
    h("table", { class: "stack", id: "timers" },
      h("thead", {}, h("tr", {}, ["Name", "State", "Schedule", "Zone", "Next run", "Last status", "Runs", "Failures"]
        .map((t, i) => h("th", { class: i >= 6 ? "num" : null }, t)))),
      body),
    pager);
  const load = async () => {
    const qs = new URLSearchParams();
    if (q.value) qs.set("q", q.value);
    if (state.value) qs.set("state", state.value);
    if (page > 1) qs.set("page", String(page));
    const text = qs.toString();
    const want = location.pathname + (text ? `?${text}` : "");
    if (want !== location.pathname + location.search) history.replaceState(null, "", want);
    const data = await api(`/ui/api/timers${text ? `?${text}` : ""}`);
    for (const opt of state.options) {
      if (opt.value) opt.textContent = `${opt.value} (${(data.counts[opt.value] || 0).toLocaleString()})`;
    }
    const first = data.matching ? (data.page - 1) * data.per_page + 1 : 0;
    summary.textContent = `${first.toLocaleString()}–${(first + data.rows.length - (data.rows.length ? 1 : 0)).toLocaleString()} of ${data.matching.toLocaleString()} matching (${data.all.toLocaleString()} timers)`;
    body.replaceChildren(...data.rows.map((t) => timerRow(t, data.now)));
    if (!data.rows.length) body.append(h("tr", {}, h("td", { colspan: 8, class: "muted" }, data.all ? "No timer matches." : "No timers yet.")));
    const pages = Math.max(1, Math.ceil(data.matching / data.per_page));
    pager.replaceChildren(
      h("button", { id: "prev", disabled: page <= 1, onclick: () => { page -= 1; load(); } }, "‹ Previous"),
      h("span", { class: "small" }, `Page ${page} of ${pages.toLocaleString()}`),
      h("button", { id: "next", disabled: page >= pages, onclick: () => { page += 1; load(); } }, "Next ›"));
    markRendered();
  };
  let debounce = null;
  q.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { page = 1; load(); }, 200); });
  state.addEventListener("change", () => { page = 1; load(); });
  poll(load);
}

function timerRow(t, now) {
  const status = t.last_status || "-";
  const statusClass = `status-${status.split(":")[0]}`;
  return h("tr", { dataset: { timer: t.name } },
    h("td", { "data-label": "Name" }, h("a", { href: `/ui/timers/${encodeURIComponent(t.name)}`, "data-link": true }, t.name),
      h("br"), h("span", { class: "muted small" }, t.target)),
    h("td", { "data-label": "State" }, h("span", { class: `badge ${t.state}` }, t.state)),
    h("td", { "data-label": "Schedule" }, h("code", {}, t.schedule),
      t.schedule_words !== t.schedule ? [h("br"), h("span", { class: "muted small" }, t.schedule_words)] : null),
    h("td", { "data-label": "Zone" }, t.timezone),
    h("td", { "data-label": "Next run" }, when(t.next_run_at, now)),
    h("td", { "data-label": "Last status", class: statusClass }, status,
      t.last_run_at ? [h("br"), h("span", { class: "muted small" }, rel(t.last_run_at, now))] : null),
    h("td", { "data-label": "Runs", class: "num" }, t.run_count.toLocaleString()),
    h("td", { "data-label": "Failures", class: "num" }, t.failure_count.toLocaleString()));
}

// ---- a timer ----
function timerPage(main, name) {
  document.title = `${name} · Kron`;
  fill(main, h("p", { class: "muted" }, "Loading…"));
  const load = async () => {
    let d;
    try {
      d = await api(`/ui/api/timers/${encodeURIComponent(name)}`);
    } catch (e) {
      fill(main, h("h1", {}, name), h("p", { class: "error-text" }, e.message),
        h("p", {}, h("a", { href: "/ui/timers", "data-link": true }, "All timers")));
      clearInterval(timerHandle);
      return;
    }
    const open = new Set([...main.querySelectorAll("details[open]")].map((x) => x.dataset.key));
    fill(main,
      h("h1", {}, h("span", { id: "timer-name" }, d.timer.name),
        h("span", { class: `badge ${d.timer.state}`, id: "timer-state" }, d.timer.state), actions(d.timer)),
      h("div", { class: "grid" },
        h("section", { class: "card" }, h("h2", {}, "Definition"), definition(d)),
        h("section", { class: "card" }, h("h2", {}, "Next 10 fire times"), fires(d))),
      h("h2", {}, "Recent runs"),
      chart(d.runs, d.now),
      h("h2", {}, "Explanation"),
      h("p", { class: "card", id: "explanation" }, d.explanation
        ? [h("span", { class: `badge ${d.explanation.outcome}` }, d.explanation.outcome), " ", d.explanation.summary]
        : h("span", { class: "muted" }, "No explanation available.")),
      d.in_flight.length ? [h("h2", {}, "In flight"), runsTable(d.in_flight, d.now, false)] : "",
      h("h2", {}, "History"),
      historyTable(d.history, d.now));
    for (const x of main.querySelectorAll("details")) if (open.has(x.dataset.key)) x.open = true;
    markRendered();
  };
  poll(load);
}

function actions(t) {
  if (!session.viewer || !session.viewer.can_write) return null;
  const paused = t.state === "paused";
  const act = (action, text, danger) => h("button", {
    class: danger ? "danger" : null, id: `action-${action}`, "data-action": action,
    onclick: () => confirmAction(t.name, action, text),
  }, text);
  return h("span", { class: "actions", id: "actions" },
    paused ? act("resume", "Resume") : act("pause", "Pause"),
    act("trigger", "Trigger now"),
    act("remove", "Remove", true));
}

function confirmAction(name, action, text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = `${text}: ${name}?` +
    (action === "remove" ? " The timer is deleted; its history stays." : "");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    try {
      const r = await api(`/ui/api/timers/${encodeURIComponent(name)}/${action}`, {
        method: "POST", headers: { "X-Kron-CSRF": session.csrf || "" },
      });
      flash(r.message);
      if (action === "remove") go("/ui/timers"); else route();
    } catch (e) { flash(e.message, true); }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

function definition(d) {
  const t = d.timer, def = d.definition;
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  return h("dl", {},
    row("Schedule", [h("code", {}, t.schedule),
      t.schedule_words !== t.schedule ? [" ", h("span", { class: "muted" }, t.schedule_words)] : ""]),
    row("Time zone", t.timezone),
    row(def.payload !== null ? "Task" : "Function", t.target),
    def.payload !== null ? row("Payload", h("code", {}, def.payload)) : null,
    def.tenant ? row("Tenant", def.tenant) : null,
    row("Max attempts", def.max_attempts),
    row("Overlap", def.overlap),
    row("Catch-up", def.catchup),
    row("Jitter", def.jitter_ms ? dur(def.jitter_ms) : "none"),
    row("Next run", when(t.next_run_at, d.now)),
    row("Last status", t.last_status || "-"),
    row("Runs / failures", `${t.run_count} / ${t.failure_count}`),
    row("Created", abs(def.created_at)),
    row("Updated", abs(def.updated_at)));
}

function fires(d) {
  if (!d.next_fires.length) return h("p", { class: "muted" }, "No further fire times.");
  return h("ol", { id: "next-fires", class: "small" }, d.next_fires.map((f) =>
    h("li", {}, f.local, " ", h("span", { class: "muted" }, rel(f.at, d.now)),
      f.dst_change ? h("span", { class: "dst", title: "The zone's UTC offset changes before this fire time" }, " DST change") : null)));
}

// The chart: one dot per finished attempt (x: when it started, y: duration, colour: outcome)
// and, below, how late each scheduled first attempt started.
function chart(points, now) {
  const W = 800, H = 240, L = 56, R = 12, T = 12, B = 70, LATE_H = 34;
  const el = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", id: "run-chart", role: "img",
    "aria-label": `${points.length} recent runs` });
  const wrap = h("div", {}, el, h("div", { class: "legend" },
    ["succeeded", "failed", "interrupted", "lease_expired"].map((o) => h("span", { class: o }, o.replace("_", " "))),
    h("span", { class: "late" }, "lateness (below)")));
  if (!points.length) {
    el.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No finished runs in the history read."));
    return wrap;
  }
  const t0 = Math.min(...points.map((p) => p.at));
  const t1 = Math.max(now, ...points.map((p) => p.at));
  const maxD = Math.max(1, ...points.map((p) => p.duration_ms || 0));
  const maxL = Math.max(1, ...points.map((p) => Math.max(0, p.lateness_ms || 0)));
  const plotH = H - T - B;
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (ms) => T + plotH - (ms / maxD) * plotH;
  el.append(
    svg("line", { class: "axis", x1: L, y1: T + plotH, x2: W - R, y2: T + plotH }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: T + plotH }),
    svg("text", { x: L - 6, y: T + 10, "text-anchor": "end" }, dur(maxD)),
    svg("text", { x: L - 6, y: T + plotH, "text-anchor": "end" }, "0"),
    svg("text", { x: L, y: T + plotH + 14 }, abs(t0)),
    svg("text", { x: W - R, y: T + plotH + 14, "text-anchor": "end" }, abs(t1)),
    svg("text", { x: L - 6, y: H - 8, "text-anchor": "end" }, `late ${dur(maxL)}`));
  const lateTop = H - LATE_H - 4;
  for (const p of points) {
    const cx = x(p.at);
    const tip = `${abs(p.at)} · ${p.outcome} · ${dur(p.duration_ms)}` +
      (p.lateness_ms !== null ? ` · ${dur(p.lateness_ms)} late` : "") + (p.error ? ` · ${p.error}` : "");
    el.append(svg("circle", { cx, cy: y(p.duration_ms || 0), r: 4.5, class: `pt ${p.outcome}` }, svg("title", {}, tip)));
    if (p.lateness_ms !== null && p.lateness_ms > 0) {
      const bh = Math.max(1, (p.lateness_ms / maxL) * LATE_H);
      el.append(svg("rect", { x: cx - 1.5, y: lateTop + LATE_H - bh, width: 3, height: bh, class: "late" }, svg("title", {}, tip)));
    }
  }
  return wrap;
}

function errorBlock(text, key) {
  if (!text) return null;
  const lines = text.trim().split("\n");
  return h("details", { dataset: { key } }, h("summary", {}, lines[lines.length - 1]), h("pre", { class: "traceback" }, text));
}

function historyTable(events, now) {
  if (!events.length) return h("p", { class: "muted" }, "No history.");
  return h("table", { class: "stack", id: "history" },
    h("thead", {}, h("tr", {}, ["Time", "Event", "Attempt", "Duration", "Detail"].map((t) => h("th", {}, t)))),
    h("tbody", {}, events.map((e) => h("tr", { dataset: { kind: e.kind } },
      h("td", { "data-label": "Time" }, when(e.ts, now)),
      h("td", { "data-label": "Event" }, e.kind),
      h("td", { "data-label": "Attempt", class: "num" }, e.attempt ?? "-"),
      h("td", { "data-label": "Duration", class: "num" }, dur(e.duration_ms)),
      h("td", { "data-label": "Detail" },
        e.run_id ? h("span", { class: "muted small" }, `run ${e.run_id}`) : null,
        e.worker ? h("span", { class: "muted small" }, ` · worker ${e.worker}`) : null,
        e.manual ? h("span", { class: "muted small" }, " · manual") : null,
        errorBlock(e.error, `e${e.seq}`))))));
}

// ---- runs ----
function runsTable(runs, now, withTimer) {
  const cols = (withTimer ? ["Timer"] : []).concat(["Run", "Phase", "Attempt", "Starts / started", "Worker", "Lease until"]);
  return h("table", { class: "stack", id: withTimer ? "running" : "in-flight" },
    h("thead", {}, h("tr", {}, cols.map((t) => h("th", {}, t)))),
    h("tbody", {}, runs.map((r) => h("tr", {},
      withTimer ? h("td", { "data-label": "Timer" }, h("a", { href: `/ui/timers/${encodeURIComponent(r.timer)}`, "data-link": true }, r.timer)) : null,
      h("td", { "data-label": "Run" }, h("code", { class: "small" }, r.run_id), r.manual ? " (manual)" : ""),
      h("td", { "data-label": "Phase" }, h("span", { class: `badge ${r.phase}` }, r.phase)),
      h("td", { "data-label": "Attempt", class: "num" }, r.attempt),
      h("td", { "data-label": "Starts / started" }, when(r.fire_at, now)),
      h("td", { "data-label": "Worker" }, r.worker || "-"),
      h("td", { "data-label": "Lease until" }, r.lease_until ? when(r.lease_until, now) : "-")))));
}

function runsPage(main) {
  document.title = "Runs · Kron";
  const load = async () => {
    const d = await api("/ui/api/activity");
    const open = new Set([...main.querySelectorAll("details[open]")].map((x) => x.dataset.key));
    fill(main,
      h("h1", {}, "Runs in progress"),
      d.running.length ? runsTable(d.running, d.now, true) : h("p", { class: "muted", id: "running" }, "Nothing is running or waiting now."),
      h("h2", {}, "Dead runs, last 24 hours"),
      d.dead.length ? h("table", { class: "stack", id: "dead" },
        h("thead", {}, h("tr", {}, ["Timer", "When", "Attempt", "Error"].map((t) => h("th", {}, t)))),
        h("tbody", {}, d.dead.map((r, i) => h("tr", {},
          h("td", { "data-label": "Timer" }, h("a", { href: `/ui/timers/${encodeURIComponent(r.timer)}`, "data-link": true }, r.timer)),
          h("td", { "data-label": "When" }, when(r.at, d.now)),
          h("td", { "data-label": "Attempt", class: "num" }, r.attempt ?? "-"),
          h("td", { "data-label": "Error" }, errorBlock(r.error, `d${r.run_id || i}`))))))
        : h("p", { class: "muted", id: "dead" }, "No run died in the last 24 hours."),
      d.dead_total > d.dead.length
        ? h("p", { class: "muted small", id: "dead-more" },
          `The newest ${d.dead.length.toLocaleString()} of ${d.dead_total.toLocaleString()} dead runs; `,
          `${(d.dead_total - d.dead.length).toLocaleString()} more are in the timers' histories.`)
        :"");
    for (const x of main.querySelectorAll("details")) if (open.has(x.dataset.key)) x.open = true;
    markRendered();
  };
  poll(load);
}

// ---- cluster (server mode) ----
function clusterPage(main) {
  document.title = "Cluster · Kron";
  const load = async () => {
    const d = await api("/ui/api/cluster");
    const table = (id, cols, rows) => h("table", { class: "stack", id },
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v, i) => h("td", { "data-label": cols[i] }, v))))));
    fill(main,
      h("h1", {}, "Cluster"),
      h("div", { class: "card" }, h("dl", {},
        [["This node", d.node_id], ["Role", h("span", { class: "badge" }, d.role)], ["Term", d.term],
          ["Leader", d.leader_id || "none"], ["Commit index", d.commit_index], ["Applied index", d.applied_index],
          ["Lag (entries)", d.lag]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
      h("h2", {}, "Members"),
      table("members", ["Node", "Role", "Term", "Matched index", "Lag (entries)", "HTTP"], d.members.map((m) =>
        [m.node_id, h("span", { class: `badge ${m.role}` }, m.role), m.term ?? "-", m.matched_index ?? "-", m.lag ?? "-", m.http_addr || "-"])),
      d.role !== "leader"
        ? h("p", { class: "muted small", id: "members-note" },
          "Term, matched index and lag of each member are measured by the leader: see the leader's dashboard",
          d.leader_id ? ` (${d.leader_id}).` : ".")
        : "",
      h("h2", {}, "Workers"),
      d.workers.length
        ? table("workers", ["Worker", "Tasks served", "Last heartbeat", "Runs held"],
          d.workers.map((w) => [w.worker_id, w.tasks.join(", "), when(w.last_heartbeat, d.now), w.runs_held]))
        : h("p", { class: "muted", id: "workers" }, "No worker has registered with this node."),
      h("h2", {}, "Tenants"),
      table("tenants", ["Tenant", "Timers"], d.tenants.map((t) => [t.tenant || "(none)", t.timers])));
    markRendered();
  };
  poll(load);
}

async function start() {
  try {
    session = await api("/ui/api/session");
  } catch (e) {
    fill(document.getElementById("main"), h("p", { class: "error-text" }, e.message));
    return;
  }
  renderWho();
  route();
}
start();
