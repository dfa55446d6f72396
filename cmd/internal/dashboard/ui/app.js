// Wingman's dashboard: reads the daemon's JSON API (/v1) every two seconds
// and draws hosts, VMs, failover timelines and the event stream. Actions
// call the same POST routes as the CLI, each after a confirmation, with the
// session's CSRF header when the page was opened through `wingman ui`.
"use strict";

const pollEvery = 2000;
const eventsKept = 300;
// Hosts write events with their own clocks: each poll reaches this far back
// before the newest event seen, and drops duplicates by (host, seq).
const eventsOverlap = 30000;

const state = { csrf: "", status: null, vms: [], incidents: [], events: [], seen: new Set(), newest: null, rendered: {} };

// el builds an element; text goes through textContent, never HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const $ = (sel) => document.querySelector(sel);

// api calls the daemon; a failure throws an Error with the daemon's message
// and hint.
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && state.csrf) opts.headers["X-Wingman-CSRF"] = state.csrf;
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    let msg = (data && data.error) || `${method} ${path}: ${resp.status} ${text.trim()}`;
    if (data && data.hint) msg += ` (${data.hint})`;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function banner(msg, kind) {
  const b = $("#banner");
  b.hidden = !msg;
  b.className = "banner" + (kind ? " " + kind : "");
  b.textContent = msg || "";
}

const mib = (n) => (n >= 1024 ? (n / 1024).toFixed(n >= 10240 ? 0 : 1) + " GiB" : n + " MiB");
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
const secs = (ms) => (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s";
const isZero = (t) => !t || t.startsWith("0001-");

function stateBadge(s) {
  const kind = { alive: "ok", running: "ok", maintenance: "warn", joining: "warn", suspect: "warn", isolated: "warn",
    dead: "bad", left: "bad", paused: "warn", crashed: "bad" }[s.split(" ")[0]] || "";
  return el("span", { class: "badge " + kind }, s);
}

// renderIf redraws a part only when its data changed, so that a poll does
// not replace the buttons under the pointer.
function renderIf(key, data, fn) {
  const s = JSON.stringify(data);
  if (state.rendered[key] === s) return;
  state.rendered[key] = s;
  fn(data);
}

function renderStatus(st) {
  $("#cluster").textContent = st.cluster;
  const coord = st.hosts.find((h) => h.id === st.coordinator);
  $("#summary").replaceChildren(
    el("span", { id: "quorum" }, "quorum ", el("span", { class: "badge " + (st.quorate ? "ok" : "bad") }, st.quorate ? "quorate" : "no quorum")),
    el("span", { id: "coordinator" }, "coordinator ", el("strong", {}, coord ? coord.name : "none")),
    el("span", {}, "this host ", el("strong", {}, st.host)),
    el("span", {}, "wingmand " + st.version));
  const w = st.warnings || [];
  $("#warnings-section").hidden = w.length === 0;
  $("#warnings").replaceChildren(...w.map((x) => el("li", {}, x)));
  $("#hosts tbody").replaceChildren(...st.hosts.map((h) => {
    const gone = h.state === "dead" || h.state === "left";
    const action = h.maintenance
      ? el("button", { type: "button", "data-action": "maintenance-exit", disabled: gone, on: { click: () => confirmMaintenance(h, false) } }, "Exit maintenance")
      : el("button", { type: "button", "data-action": "maintenance-enter", disabled: gone, on: { click: () => confirmMaintenance(h, true) } }, "Enter maintenance");
    return el("tr", { "data-host": h.name },
      el("td", { class: "name" }, h.name, h.coordinator ? el("span", { class: "badge coord", title: "coordinator" }, "coordinator") : null),
      el("td", { class: "state", title: h.reason || "" }, stateBadge(h.state)),
      el("td", { class: "serf" }, h.serf),
      el("td", { class: "vms" }, String(h.vms)),
      el("td", {}, h.memory_mib ? mib(h.free_mib) + " of " + mib(h.memory_mib) : "–"),
      el("td", {}, h.cpus ? String(h.cpus) : "–"),
      el("td", { class: "actions" }, action));
  }));
}

function renderVMs(vms) {
  const rows = vms.slice().sort((a, b) => (b.priority || 0) - (a.priority || 0) || a.name.localeCompare(b.name));
  $("#vms tbody").replaceChildren(...rows.map((v) => {
    const running = v.state === "running" || v.state.startsWith("running on");
    const buttons = [
      el("button", { type: "button", "data-action": "migrate", disabled: !running, on: { click: () => confirmMigrate(v) } }, "Migrate…"),
      v.protected
        ? el("button", { type: "button", "data-action": "unprotect", on: { click: () => confirmProtect(v, false) } }, "Unprotect")
        : el("button", { type: "button", "data-action": "protect", on: { click: () => confirmProtect(v, true) } }, "Protect"),
    ];
    return el("tr", { "data-vm": v.name },
      el("td", { class: "name", title: v.uuid }, v.name),
      el("td", { class: "host" }, v.owner_name || "–"),
      el("td", { class: "state", title: v.reason || "" }, stateBadge(v.state)),
      el("td", { class: "priority" }, v.protected ? `${v.policy.priority || ""} (${v.priority})` : "–"),
      el("td", {}, v.protected ? "yes" : "no"),
      el("td", { class: "actions" }, buttons));
  }));
}

// renderIncidents draws each failover as a timeline: the loss (or the last
// heartbeat seen), the declaration, then per VM when it was planned and
// when it started, on one time scale.
function renderIncidents(incs) {
  const box = $("#incidents");
  if (!incs.length) {
    box.replaceChildren(el("p", { class: "empty" }, "No host has been lost."));
    return;
  }
  box.replaceChildren(...incs.slice().reverse().map(renderIncident), legend());
}

function renderIncident(inc) {
  const t = (x) => (isZero(x) ? null : Date.parse(x));
  const lost = t(inc.lost), declared = t(inc.declared), hb = t(inc.last_heartbeat);
  const start = Math.min(lost, hb ?? lost);
  let end = declared;
  for (const v of inc.vms) end = Math.max(end, t(v.planned) ?? 0, t(v.at) ?? 0);
  if (!inc.settled) end = Math.max(end, Date.now());
  const span = Math.max(end - start, 1000);
  const pos = (x) => ((x - start) / span) * 100 + "%";
  const rel = (x) => "+" + secs(x - start);
  const mark = (cls, x, title) => {
    const m = el("span", { class: "mark " + cls, title: `${title} ${clock(x)} (${rel(x)})` });
    m.style.left = pos(x);
    return m;
  };
  const bar = (cls, from, to) => {
    const b = el("span", { class: "bar " + cls });
    b.style.left = pos(from);
    b.style.width = ((to - from) / span) * 100 + "%";
    return b;
  };
  const started = inc.vms.filter((v) => v.state === "started");
  const last = started.reduce((m, v) => Math.max(m, t(v.at)), 0);
  const title = `${inc.host} lost: ${hb !== null && hb < lost ? "last heartbeat seen" : "first sign"} ${clock(start)}, ` +
    `declared dead (${inc.how}) ${rel(declared)}` +
    (inc.vms.length ? `, ${started.length} of ${inc.vms.length} VMs running again` + (last ? ` ${rel(last)}` : "") : "") +
    (inc.resolved ? `; ${inc.host} came back at ${clock(t(inc.resolved_at))}` : "");
  const hostTrack = el("div", { class: "track" }, bar("", start, declared),
    hb !== null && hb < lost ? mark("heartbeat", hb, "last heartbeat seen") : null,
    lost < declared ? mark("lost", lost, "first sign") : null,
    mark("declared", declared, "declared dead"));
  const rows = [el("div", { class: "label" }, inc.host),
    hostTrack,
    el("div", { class: "note step-declared" }, `declared dead ${rel(declared)}`)];
  for (const v of inc.vms) {
    const planned = t(v.planned), at = t(v.at);
    const track = el("div", { class: "track" });
    if (at !== null) track.append(bar(v.state, declared, at));
    else track.append(bar("", declared, end));
    if (planned !== null) track.append(mark("planned", planned, "planned"));
    if (at !== null) track.append(mark(v.state, at, v.state));
    let note = "waiting";
    if (v.state === "started") note = `started on ${v.host} ${rel(at)}`;
    else if (v.state === "failed") note = `failed on ${v.host}: ${v.message}`;
    else if (planned !== null) note = `planned ${rel(planned)}`;
    rows.push(el("div", { class: "label", "data-vm": v.name, title: v.uuid }, v.name), track,
      el("div", { class: "note vm-" + v.state, "data-vm": v.name }, note));
  }
  return el("article", { class: `incident sev-${inc.severity}` + (inc.resolved ? " resolved" : ""), "data-host": inc.host, "data-id": inc.id },
    el("h3", {}, title),
    el("p", { class: "reason" }, inc.reason),
    el("div", { class: "timeline" }, rows));
}

function legend() {
  const item = (cls, text) => el("span", {}, el("span", { class: "mark " + cls }), text);
  return el("div", { class: "legend" }, item("heartbeat", "last heartbeat seen"), item("lost", "first sign of loss"),
    item("declared", "declared dead"), item("planned", "planned"), item("started", "started"), item("failed", "failed"));
}

function addEvents(evs) {
  let added = false;
  for (const e of evs) {
    const key = e.host + "/" + e.seq;
    if (state.seen.has(key)) continue;
    state.seen.add(key);
    state.events.push(e);
    added = true;
    if (!state.newest || e.time > state.newest) state.newest = e.time;
  }
  if (!added) return;
  state.events.sort((a, b) => a.time.localeCompare(b.time) || a.host - b.host || a.seq - b.seq);
  state.events = state.events.slice(-eventsKept);
  const names = {};
  for (const h of (state.status && state.status.hosts) || []) names[h.id] = h.name;
  $("#events").replaceChildren(...state.events.slice().reverse().map((e) =>
    el("li", { class: "sev-" + e.severity, "data-kind": e.kind },
      el("span", {}, clock(e.time)), el("span", {}, e.host_name || names[e.host] || "host " + e.host),
      el("span", {}, e.severity), el("span", {}, e.kind), el("span", {}, e.vm || ""),
      el("span", {}, e.message + (e.subject ? ` [${names[e.subject] || "host " + e.subject}]` : "")))));
}

function eventsPath() {
  if (!state.newest) return "/v1/events?limit=" + eventsKept;
  const since = new Date(Date.parse(state.newest) - eventsOverlap).toISOString();
  return "/v1/events?since=" + encodeURIComponent(since);
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [st, vms, incs, evs] = await Promise.all([api("GET", "/v1/status"), api("GET", "/v1/vms"),
      api("GET", "/v1/incidents"), api("GET", eventsPath())]);
    state.status = st;
    renderIf("status", st.hosts.concat([st.quorate, st.coordinator, st.warnings, st.cluster]), () => renderStatus(st));
    renderIf("vms", vms, renderVMs);
    renderIf("incidents", incs, renderIncidents);
    addEvents(evs || []);
    if ($("#banner").classList.contains("error")) banner("");
    document.body.dataset.loaded = "true";
  } catch (err) {
    banner(err.status === 401 || err.status === 403
      ? "Not signed in: run 'wingman ui' again and open the link it prints (" + err.message + ")"
      : "wingmand: " + err.message, "error");
  } finally {
    polling = false;
  }
}

// confirm opens the confirmation dialog; ok runs only after "Confirm".
function confirmAction(title, text, extra, ok) {
  const d = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-extra").replaceChildren(...(extra || []));
  const okBtn = $("#confirm-ok");
  okBtn.onclick = async () => {
    d.close();
    try {
      banner(title + " …");
      const msg = await ok();
      banner(msg || title + ": done");
    } catch (err) {
      banner(title + ": " + err.message, "error");
    }
    poll();
  };
  $("#confirm-cancel").onclick = () => d.close();
  d.showModal();
}

function confirmMaintenance(h, enter) {
  const path = "/v1/hosts/" + encodeURIComponent(h.name) + "/maintenance";
  if (!enter) {
    confirmAction(`Exit maintenance on ${h.name}?`, `${h.name} takes VMs again (failovers and placements).`, [],
      () => api("POST", path, { enter: false }).then(() => `${h.name} left maintenance`));
    return;
  }
  const plan = el("div", { class: "plan" }, "Reading the evacuation plan…");
  api("GET", "/v1/hosts/" + encodeURIComponent(h.name) + "/evacuation-plan").then((p) => {
    const items = (p.moves || []).map((m) => el("li", {}, `${m.vm} → ${m.to}`))
      .concat((p.unplaced || []).map((u) => el("li", { class: "unplaced" }, "stays: " + u)));
    plan.replaceChildren(items.length ? el("ul", {}, items) : "No protected VM to move.");
  }, (err) => plan.replaceChildren("No plan: " + err.message));
  confirmAction(`Enter maintenance on ${h.name}?`,
    `Its protected VMs are live-migrated to other hosts, and it takes no new ones until it leaves maintenance.`, [plan],
    () => api("POST", path, { enter: true, no_wait: true }).then(() => `${h.name} is entering maintenance; its VMs are moving`));
}

function confirmMigrate(v) {
  const hosts = ((state.status && state.status.hosts) || []).filter((h) => h.state === "alive" && !h.maintenance && h.name !== v.owner_name);
  const select = el("select", { id: "migrate-target" }, el("option", { value: "" }, "the planner chooses"),
    hosts.map((h) => el("option", { value: h.name }, h.name)));
  confirmAction(`Migrate ${v.name}?`, `Live-migrate ${v.name} from ${v.owner_name || "its host"} to:`, [select], async () => {
    const r = await api("POST", "/v1/vms/" + encodeURIComponent(v.name) + "/migrate", { target: select.value });
    return `${r.vm} moved ${r.from} → ${r.to} in ${secs(r.duration_ns / 1e6)}, paused ${(r.downtime_ns / 1e6).toFixed(0)} ms`;
  });
}

function confirmProtect(v, protect) {
  const path = "/v1/vms/" + encodeURIComponent(v.name) + (protect ? "/protect" : "/unprotect");
  if (protect) {
    confirmAction(`Protect ${v.name}?`, `Wingman restarts ${v.name} on another host when its host is lost (default policy; change it with 'wingman set-policy').`, [],
      () => api("POST", path, {}).then(() => `${v.name} is protected`));
  } else {
    confirmAction(`Unprotect ${v.name}?`, `${v.name} keeps running, but no host restarts it when its host is lost.`, [],
      () => api("POST", path).then(() => `${v.name} is no longer protected`));
  }
}

async function start() {
  try {
    const s = await api("GET", "/ui/session");
    state.csrf = (s && s.csrf) || "";
  } catch (_) {
    state.csrf = ""; // the daemon's mutual-TLS listener: the certificate is the authority
  }
  await poll();
  setInterval(poll, pollEvery);
}

start();
