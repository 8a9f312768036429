// The vesanor-mock dashboard: reads the control API of the server that serves it, follows
// GET /_mock/stream (Server-Sent Events read through fetch, so a control token can be sent),
// and redraws only the view on screen. No framework, no build step, no request elsewhere.

const TOKEN_KEY = "vesanor-mock-control-token";
const ROW = 26; // px, the height of one journal row (keep in step with --row in style.css)
const SESSIONS_PER_PAGE = 100;
const MIN_REFRESH_MS = 500;
const SLOW_REFRESH_MS = 2000;

const $ = (id) => document.getElementById(id);
const state = {
  tab: "sessions",
  generation: null,
  total: 0,
  world: null, // GET /_mock/state
  routes: null, // Set of "METHOD /path" this server answers (from GET /), so nothing 404s
  sessionPage: 0,
  selected: null, // {tenant, id}
  journal: { rows: [], lastSeq: 0, selectedSeq: null, key: "" },
  dirty: true,
  busy: false,
  lastRefresh: 0,
  lastSlow: 0,
};

// -- talking to the control API -----------------------------------------------------------

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let asking = null;
function askToken() {
  if (asking) return asking;
  const dialog = $("token-dialog");
  asking = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const value = $("token-input").value.trim();
        if (value) sessionStorage.setItem(TOKEN_KEY, value);
        asking = null;
        resolve(Boolean(value));
      },
      { once: true },
    );
    dialog.showModal();
  });
  return asking;
}

class ControlError extends Error {
  constructor(status, body) {
    const error = body && body.error;
    super(error ? `${status} ${error.code}: ${error.message}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function call(method, path, body, { optional = false, retry = true } = {}) {
  if (optional && state.routes && !state.routes.has(`${method} ${path.split("?")[0]}`)) return null;
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && retry && (await askToken())) {
    return call(method, path, body, { optional, retry: false });
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ControlError(response.status, parsed);
  return parsed;
}

function query(params) {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== "" && value !== null && value !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

// -- the live stream ----------------------------------------------------------------------

async function follow() {
  for (;;) {
    try {
      const response = await fetch("/_mock/stream", {
        headers: { Accept: "text/event-stream", ...authHeaders() },
      });
      if (response.status === 401) {
        setLive("needs token");
        await askToken();
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      setLive("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          onEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch {
      // the server went away or restarted: say so and try again
    }
    setLive("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function setLive(text) {
  const live = $("live");
  live.textContent = text === "live" ? "● live" : `○ ${text}`;
}

function onEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (name !== "change" || !data.length) return;
  const change = JSON.parse(data.join("\n"));
  if (change.generation !== state.generation) {
    state.generation = change.generation;
    state.journal.lastSeq = 0;
    state.journal.rows = [];
    state.journal.key = "";
  }
  state.total = change.total;
  schedule();
}

function schedule() {
  state.dirty = true;
  if (state.busy) return;
  const wait = Math.max(0, state.lastRefresh + MIN_REFRESH_MS - Date.now());
  setTimeout(refresh, wait);
}

async function refresh() {
  if (state.busy || !state.dirty) return;
  state.busy = true;
  state.dirty = false;
  state.lastRefresh = Date.now();
  try {
    await refreshHeader();
    await refreshTab();
  } catch (error) {
    actionStatus(String(error.message || error));
  } finally {
    state.busy = false;
    if (state.dirty) schedule();
  }
}

// -- header -------------------------------------------------------------------------------

async function refreshHeader() {
  const [world, health] = await Promise.all([call("GET", "/_mock/state"), call("GET", "/_mock/health")]);
  state.world = world;
  const scenario = world.scenario;
  $("scenario-name").textContent = scenario.name || "(no scenario)";
  $("scenario-description").textContent = scenario.description || "";
  $("seed").textContent = String(scenario.seed ?? "–");
  $("clock").textContent = `${world.clock.now} (${world.clock.mode})`;
  $("requests").textContent = String(world.journal.total);
  const healthy = health.status === "ok";
  $("health").textContent = healthy ? "✔ ok" : `⚠ ${health.status}`;
  const banner = $("banner");
  const problem = healthy ? null : health.error || health.reload_error || health.message || health;
  banner.hidden = healthy;
  banner.textContent = healthy
    ? ""
    : `Health ${health.status}: ${typeof problem === "string" ? problem : JSON.stringify(problem)}`;
  const now = Date.now();
  if (now - state.lastSlow >= SLOW_REFRESH_MS || state.tab === "findings") {
    state.lastSlow = now;
    const findings = await call("GET", "/_mock/findings", undefined, { optional: true });
    $("findings-count").textContent = findings ? String(findings.findings.length) : "n/a";
    state.findings = findings;
  }
}

async function refreshTab() {
  switch (state.tab) {
    case "sessions":
      renderSessions();
      await renderTimeline();
      break;
    case "journal":
      await loadJournal();
      break;
    case "rules":
      await renderRules();
      break;
    case "expect":
      await renderExpectations();
      break;
    case "findings":
      renderFindings();
      break;
    case "coverage":
      await renderCoverage();
      break;
  }
}

// -- small DOM helpers --------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(text, kind, title) {
  return el("span", { class: `badge b-${kind}`, title }, text);
}

const DECISION_MARK = { allow: "✔ allow", block: "⊘ block", partial: "◐ partial" };

function decisionBadge(decision) {
  if (!decision) return null;
  return badge(DECISION_MARK[decision] || decision, decision);
}

function statusBadge(entry) {
  const d = entry.digest || {};
  if (entry.status === null) return badge("✕ no answer", "fault");
  const text = d.error ? `${entry.status} ${d.error}` : String(entry.status);
  return badge(entry.status >= 400 ? `✘ ${text}` : text, entry.status >= 400 ? "error" : "allow");
}

const FAULT_TEXT = {
  dropped: "⚡ dropped",
  raw: "⚡ raw answer",
  malformed: "⚡ malformed",
  delayed: "◷ delayed",
  "after-commit": "⚡ after-commit",
  "forced-block": "⚡ forced block",
  "forced-stale": "⚡ forced stale",
  kill: "☠ kill",
  compromise: "⚠ compromise",
  "lease-expired": "⚠ lease expired",
  clock: "» clock moved",
};

function faultBadges(digest) {
  return (digest.faults || []).map((fault) => badge(FAULT_TEXT[fault] || fault, "fault", `fault injected: ${fault}`));
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

// -- sessions and timelines ---------------------------------------------------------------

function sessionGroups() {
  const world = state.world;
  if (!world) return [];
  const filter = $("session-filter").value.trim().toLowerCase();
  const workflows = new Map(world.workflows.map((item) => [`${item.tenant}\u0000${item.workflow.workflow_id}`, item.workflow]));
  const tenants = new Map();
  for (const { tenant, session } of world.sessions) {
    const wf = session.workflow;
    const text = `${tenant} ${session.session_id} ${session.agent} ${wf ? `${wf.workflow_id} ${wf.role}` : ""}`.toLowerCase();
    if (filter && !text.includes(filter)) continue;
    if (!tenants.has(tenant)) tenants.set(tenant, { tenant, workflows: new Map(), alone: [] });
    const group = tenants.get(tenant);
    if (wf) {
      const key = wf.workflow_id;
      if (!group.workflows.has(key)) {
        group.workflows.set(key, { workflow: workflows.get(`${tenant}\u0000${key}`), id: key, sessions: [] });
      }
      group.workflows.get(key).sessions.push(session);
    } else {
      group.alone.push(session);
    }
  }
  return [...tenants.values()];
}

function renderSessions() {
  const groups = sessionGroups();
  const flat = [];
  for (const group of groups) {
    for (const wf of group.workflows.values()) for (const s of wf.sessions) flat.push({ group, wf, s });
    for (const s of group.alone) flat.push({ group, wf: null, s });
  }
  const pages = Math.max(1, Math.ceil(flat.length / SESSIONS_PER_PAGE));
  state.sessionPage = Math.min(state.sessionPage, pages - 1);
  const shown = flat.slice(state.sessionPage * SESSIONS_PER_PAGE, (state.sessionPage + 1) * SESSIONS_PER_PAGE);
  $("sessions-page").textContent = `${flat.length} session(s), page ${state.sessionPage + 1} of ${pages}`;
  $("sessions-prev").disabled = state.sessionPage === 0;
  $("sessions-next").disabled = state.sessionPage >= pages - 1;
  const out = [];
  let tenantNode = null;
  let wfNode = null;
  let lastTenant = null;
  let lastWf = null;
  for (const { group, wf, s } of shown) {
    if (group.tenant !== lastTenant) {
      tenantNode = el("div", { class: "group" }, el("h2", {}, `Tenant ${group.tenant}`));
      out.push(tenantNode);
      lastTenant = group.tenant;
      lastWf = null;
    }
    if (wf && wf.id !== lastWf) {
      wfNode = el("div", { class: "workflow" }, el("h3", {}, `Workflow ${wf.id}`, wf.workflow ? ` · ${wf.workflow.name} · ${wf.workflow.status}` : ""));
      for (const h of (wf.workflow && wf.workflow.handoffs) || []) {
        wfNode.append(
          el(
            "div",
            { class: "handoff" },
            `${h.from_role} → ${h.to_role} (${h.status}) ${h.handoff_id}`,
            h.child_session_id ? ` → ${h.child_session_id}` : "",
          ),
        );
      }
      tenantNode.append(wfNode);
      lastWf = wf.id;
    } else if (!wf) {
      lastWf = null;
    }
    (wf ? wfNode : tenantNode).append(sessionButton(group.tenant, s));
  }
  if (!flat.length) out.push(el("p", { class: "muted" }, "No sessions yet."));
  replace($("session-list"), out);
}

function sessionButton(tenant, s) {
  const selected = state.selected && state.selected.tenant === tenant && state.selected.id === s.session_id;
  const status = s.status === "killed" ? badge("☠ killed", "killed") : s.authority_state === "compromised" ? badge("⚠ compromised", "block") : null;
  return el(
    "button",
    {
      type: "button",
      class: "session",
      "aria-current": selected ? "true" : "false",
      "data-session": s.session_id,
      onclick: () => {
        state.selected = { tenant, id: s.session_id };
        renderSessions();
        renderTimeline();
      },
    },
    s.workflow ? badge(s.workflow.role, "rule") : null,
    el("span", { class: "mono" }, s.session_id),
    " ",
    el("span", { class: "muted" }, `${s.agent} · v${s.state_version} · ${s.phase.current}`),
    " ",
    status,
  );
}

async function renderTimeline() {
  const selected = state.selected;
  const head = $("timeline-head");
  const list = $("timeline");
  if (!selected) {
    replace(list);
    return;
  }
  const answer = await call("GET", `/_mock/journal${query({ session_id: selected.id, digest: "true", bodies: "false" })}`);
  const entries = answer.entries.filter((e) => !e.digest.tenant || e.digest.tenant === selected.tenant);
  const findings = (state.findings && state.findings.findings) || [];
  const pinned = new Map();
  for (const f of findings) {
    const last = f.request_ids[f.request_ids.length - 1];
    if (!pinned.has(last)) pinned.set(last, []);
    pinned.get(last).push(f);
  }
  replace(head, el("strong", {}, `Session ${selected.id}`), el("span", { class: "muted" }, ` · tenant ${selected.tenant} · ${entries.length} request(s)`));
  let version = null;
  let fence = null;
  const items = entries.map((entry) => {
    const d = entry.digest;
    const before = d.expected_state_version ?? version;
    const after = d.state_version ?? before;
    if (after !== null && after !== undefined) version = after;
    const newFence = d.lease ? d.lease.fence_token : null;
    const sent = d.fence_token;
    let fenceText = null;
    if (newFence !== null && fence !== null && newFence !== fence) fenceText = `fence ${fence} → ${newFence}`;
    else if (newFence !== null && fence === null) fenceText = `fence ${newFence}`;
    else if (sent !== null && fence !== null && sent !== fence) fenceText = `sent fence ${sent} ≠ ${fence}`;
    if (newFence !== null) fence = newFence;
    const blocked = d.decision === "block" || d.calls.some((c) => c.decision === "block");
    const cls = [blocked ? "is-block" : "", entry.status === null || entry.status >= 400 ? "is-error" : "", d.faults.length ? "is-fault" : ""].join(" ");
    const calls = d.calls.map((c) =>
      el(
        "li",
        {},
        el("span", { class: "mono" }, c.tool),
        " ",
        decisionBadge(c.decision),
        c.decision === "block" && !c.enforced ? badge("not enforced", "partial") : null,
        c.reasons.map((r) => badge(r, "block", "reason code")),
      ),
    );
    const narrowed = d.narrowed.map((n) => el("li", {}, el("span", { class: "mono" }, n.tool), " ", badge(`narrowed: ${n.reason}`, "partial")));
    const pins = (pinned.get(entry.request_id) || []).map((f) =>
      el("div", { class: `finding ${f.severity}`, role: "note" }, `${f.severity === "error" ? "✘" : "⚠"} finding ${f.rule} (${f.protocol}): ${f.message}`),
    );
    const handoff = d.handoff ? el("div", { class: "meta" }, `handoff ${d.handoff.handoff_id}: ${d.handoff.from_role} → ${d.handoff.to_role} (${d.handoff.status})`) : null;
    const wf = entry.endpoint === "create_session" && d.workflow && d.workflow.workflow_id
      ? el("div", { class: "meta" }, `workflow ${d.workflow.workflow_id} · ${d.workflow.type} · role ${d.workflow.role}${d.workflow.handoff_id ? ` · via ${d.workflow.handoff_id}` : ""}`)
      : null;
    return el(
      "li",
      { class: cls, "data-request-id": entry.request_id },
      el(
        "div",
        { class: "line1" },
        el("span", { class: "mono muted" }, `#${entry.seq}`),
        el("span", { class: "mono muted" }, entry.at.slice(11, 23)),
        el("strong", {}, entry.endpoint || entry.path),
        statusBadge(entry),
        decisionBadge(d.decision),
        d.reasons.map((r) => badge(r, "block", "reason code")),
        versionText(before, after) ? el("span", { class: "mono", title: "state version before → after" }, versionText(before, after)) : null,
        d.phase ? el("span", { class: "muted" }, `phase ${d.phase}`) : null,
        fenceText ? el("span", { class: "mono" }, fenceText) : null,
        d.commit_reason ? badge(d.commit_reason, d.committed ? "allow" : "partial") : null,
        entry.rules_fired.map((r) => badge(`rule ${r}`, "rule", "scenario rule fired")),
        faultBadges(d),
        el("span", { class: "mono muted" }, entry.request_id),
      ),
      calls.length || narrowed.length ? el("ul", { class: "calls" }, calls, narrowed) : null,
      handoff,
      wf,
      d.error_message ? el("div", { class: "meta" }, d.error_message) : null,
      pins,
    );
  });
  replace(list, items.length ? items : [el("li", { class: "muted" }, "No requests for this session in the journal.")]);
}

function versionText(before, after) {
  const known = (v) => v !== null && v !== undefined;
  if (known(before) && known(after)) return `v${before} → v${after}`;
  if (known(after)) return `v${after}`;
  return null;
}

// -- journal (virtualised) ----------------------------------------------------------------

function journalFilters() {
  return {
    endpoint: $("f-endpoint").value,
    session_id: $("f-session").value.trim(),
    status: $("f-status").value.trim(),
    outcome: $("f-outcome").value,
    rule: $("f-rule").value.trim(),
  };
}

async function loadJournal() {
  const j = state.journal;
  const filters = journalFilters();
  const tail = Number($("f-tail").value);
  if (!/^\d*$/.test(filters.status)) {
    $("journal-count").textContent = "✘ status: expected a number such as 409";
    return;
  }
  const key = JSON.stringify([filters, tail, state.generation]);
  const fresh = key !== j.key;
  const params = { ...filters, digest: "true", bodies: "false" };
  if (fresh) params.tail = tail;
  else params.since = j.lastSeq;
  let answer;
  try {
    answer = await call("GET", `/_mock/journal${query(params)}`);
  } catch (error) {
    if (error.status === 422) {
      $("journal-count").textContent = `✘ ${error.body.error.details.errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`;
      return;
    }
    throw error;
  }
  if (fresh) {
    j.rows = answer.entries;
    j.key = key;
  } else {
    j.rows.push(...answer.entries);
    if (j.rows.length > tail) j.rows.splice(0, j.rows.length - tail);
  }
  if (answer.entries.length) j.lastSeq = answer.entries[answer.entries.length - 1].seq;
  else if (fresh) j.lastSeq = state.total;
  $("journal-count").textContent = `showing ${j.rows.length} (last ${tail} that match) of ${state.world ? state.world.journal.total : "?"} request(s)`;
  drawJournal(fresh || $("f-follow").checked);
}

function drawJournal(stick) {
  const viewport = $("journal-viewport");
  const spacer = $("journal-spacer");
  const rows = state.journal.rows;
  spacer.style.height = `${rows.length * ROW}px`;
  if (stick && $("f-follow").checked) viewport.scrollTop = viewport.scrollHeight;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 10);
  const count = Math.ceil(viewport.clientHeight / ROW) + 20;
  const nodes = rows.slice(first, first + count).map((entry, i) => journalRow(entry, first + i));
  replace(spacer, nodes);
}

function journalRow(entry, index) {
  const d = entry.digest;
  const calls = d.calls.map((c) => `${c.tool}:${c.decision}${c.reasons.length ? `(${c.reasons.join(",")})` : ""}`);
  const summary = [d.decision ? (DECISION_MARK[d.decision] || d.decision) : "", d.reasons.join(","), calls.join(" ")].filter(Boolean).join(" ");
  const row = el(
    "div",
    {
      class: "jrow",
      role: "button",
      tabindex: "0",
      "data-seq": String(entry.seq),
      "aria-selected": state.journal.selectedSeq === entry.seq ? "true" : "false",
      onclick: () => showBodies(entry),
      onkeydown: (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          showBodies(entry);
        }
      },
    },
    el("span", { class: "mono" }, entry.seq),
    el("span", { class: "mono" }, entry.at.slice(11, 23)),
    el("span", { class: "mono" }, entry.request_id),
    el("span", {}, entry.endpoint || entry.path),
    el("span", { class: "mono" }, entry.session_id || ""),
    el("span", {}, statusBadge(entry)),
    el("span", { title: summary }, summary, faultBadges(d)),
    el("span", {}, entry.rules_fired.join(",")),
    el("span", {}, entry.outcome),
  );
  row.style.top = `${index * ROW}px`;
  return row;
}

async function showBodies(entry) {
  state.journal.selectedSeq = entry.seq;
  drawJournal(false);
  const answer = await call("GET", `/_mock/journal${query({ since: entry.seq - 1, limit: 1 })}`);
  const full = answer.entries[0];
  const head = $("body-head");
  if (!full || full.seq !== entry.seq) {
    replace(head, `#${entry.seq} has left the journal.`);
    replace($("bodies"));
    return;
  }
  replace(head, el("strong", {}, `#${full.seq} ${full.method} ${full.path}`), el("div", { class: "muted" }, `${full.request_id} · ${full.status ?? "no answer"} · ${full.outcome} · ${full.duration_ms} ms`));
  replace($("bodies"), bodyBlock("Request body", full.request_body), bodyBlock("Response body", full.response_body));
}

function bodyBlock(title, body) {
  const text = typeof body === "string" ? body : JSON.stringify(body, null, 2);
  const pre = el("pre", { class: "json", tabindex: "0" }, text === undefined ? "null" : text);
  const copy = el(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(pre.textContent);
          copy.textContent = "✔ Copied";
        } catch {
          const range = document.createRange();
          range.selectNodeContents(pre);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          copy.textContent = "Selected: press Ctrl+C";
        }
      },
    },
    "Copy",
  );
  return el("div", {}, el("div", { class: "body-title" }, el("strong", {}, title), copy), pre);
}

// -- rules, expectations, findings, coverage ----------------------------------------------

async function renderRules() {
  const answer = await call("GET", "/_mock/rules", undefined, { optional: true });
  const rules = answer ? answer.rules : state.world.rules.map((r) => ({ ...r, origin: r.source }));
  const rows = rules.map((r) =>
    el(
      "tr",
      {},
      el("td", { class: "mono" }, r.id),
      el("td", {}, r.origin || r.source),
      el("td", { class: "mono" }, r.when ? JSON.stringify(r.when) : ""),
      el("td", { class: "mono" }, r.then ? JSON.stringify(r.then) : ""),
      el("td", { class: "mono" }, String(r.matched)),
      el("td", { class: "mono" }, r.fired ? `✔ ${r.fired}` : "✘ 0"),
      el(
        "td",
        {},
        (r.near_misses || []).map((m) =>
          el("div", {}, el("span", { class: "mono" }, `${m.request_id} ${m.endpoint}`), ": ", m.failed.map((f) => `${f.field} wanted ${JSON.stringify(f.wanted)}, saw ${JSON.stringify(f.seen)}`).join("; ")),
        ),
      ),
    ),
  );
  replace(
    $("rules"),
    answer ? null : el("p", { class: "unavailable" }, "This server does not list near misses (GET /_mock/rules); counts come from /_mock/state."),
    rows.length
      ? el("table", { class: "grid" }, el("thead", {}, el("tr", {}, ["Rule", "Origin", "When", "Then", "Matched", "Fired", "Near misses"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No rules."),
  );
}

async function renderExpectations() {
  const answer = await call("POST", "/_mock/verify");
  const failures = answer.failures.map((f) => el("li", {}, el("span", { class: "bad" }, f.message), el("pre", { class: "json" }, JSON.stringify(f.seen, null, 2))));
  const findings = Array.isArray(answer.findings) ? answer.findings : [];
  const errors = findings.filter((f) => f.severity === "error").length;
  replace(
    $("expect"),
    el(
      "p",
      { class: failures.length ? "bad" : "ok" },
      failures.length ? `${failures.length} of ${answer.checked} expectation(s) not met.` : `All ${answer.checked} expectation(s) met.`,
    ),
    failures.length ? el("ol", {}, failures) : null,
    errors ? el("p", { class: "bad" }, `Verify is not ok: ${errors} error finding(s) (see Findings).`) : null,
  );
}

function renderFindings() {
  const answer = state.findings;
  if (!answer) {
    replace($("findings"), el("p", { class: "unavailable" }, "This server does not report findings (GET /_mock/findings)."));
    return;
  }
  const rows = answer.findings.map((f) =>
    el(
      "tr",
      {},
      el("td", {}, badge(f.severity === "error" ? "✘ error" : "⚠ warning", f.severity)),
      el("td", { class: "mono" }, f.rule),
      el("td", { class: "mono" }, f.session_id || ""),
      el("td", { class: "mono" }, f.request_ids.join(" ")),
      el("td", {}, f.message, el("div", { class: "muted" }, `${f.protocol} · ${f.hint}`)),
    ),
  );
  replace(
    $("findings"),
    el("p", {}, `${answer.findings.length} finding(s) over ${answer.checked_requests} request(s).`),
    rows.length ? el("table", { class: "grid" }, el("thead", {}, el("tr", {}, ["Severity", "Rule", "Session", "Requests", "Message"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)) : null,
  );
}

async function renderCoverage() {
  const answer = await call("GET", "/_mock/coverage", undefined, { optional: true });
  if (!answer) {
    replace($("coverage"), el("p", { class: "unavailable" }, "This server does not report coverage (GET /_mock/coverage)."));
    return;
  }
  const share = answer.total ? Math.round((100 * answer.covered) / answer.total) : 0;
  const bar = el("span");
  bar.style.width = `${share}%`;
  replace(
    $("coverage"),
    el("p", {}, `${answer.covered} of ${answer.total} situation(s) covered (${share}%) `, el("span", { class: "meter", role: "img", "aria-label": `${share}% covered` }, bar)),
    el("h3", {}, `Missing (${answer.missing.length})`),
    el("ul", { class: "missing mono" }, answer.missing.map((id) => el("li", {}, id))),
  );
}

// -- actions ------------------------------------------------------------------------------

function actionStatus(text) {
  $("act-status").textContent = text;
}

async function act(label, work) {
  actionStatus(`${label}…`);
  try {
    actionStatus(await work());
  } catch (error) {
    actionStatus(`✘ ${label}: ${error.message}`);
  }
  schedule();
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function setupActions() {
  $("act-reset").addEventListener("click", () =>
    act("reset", async () => {
      const answer = await call("POST", "/_mock/reset");
      return `✔ reset to ${answer.scenario || "the defaults"}`;
    }),
  );
  $("act-load").addEventListener("click", () =>
    act("load", async () => {
      const name = $("act-scenario-name").value.trim();
      if (!name) return "✘ type a bundled scenario name first";
      const answer = await call("POST", "/_mock/scenario", { name });
      return `✔ loaded ${answer.scenario}`;
    }),
  );
  $("act-advance").addEventListener("click", () =>
    act("advance", async () => {
      const seconds = Number($("act-seconds").value);
      const answer = await call("POST", "/_mock/clock/advance", { seconds });
      return `✔ clock at ${answer.now}`;
    }),
  );
  $("act-export").addEventListener("click", () =>
    act("export", async () => {
      const response = await fetch("/_mock/export?format=yaml", { headers: { Accept: "application/yaml", ...authHeaders() } });
      if (!response.ok) throw new Error(`export answered ${response.status}`);
      download("vesanor-mock-export.yaml", await response.text(), "application/yaml");
      return "✔ export downloaded";
    }),
  );
}

async function setupScenarioNames() {
  const answer = await call("GET", "/_mock/scenarios", undefined, { optional: true });
  if (!answer) {
    // this server cannot list (nor load by name) bundled scenarios: offer no such action
    $("act-scenario-name").closest("label").hidden = true;
    $("act-load").hidden = true;
    return;
  }
  replace($("scenario-names"), answer.scenarios.map((s) => el("option", { value: s.name }, s.description || s.name)));
}

// -- tabs and filters ---------------------------------------------------------------------

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !on;
    }
    state.tab = tab.id.slice(4);
    state.dirty = true;
    refresh();
  };
  tabs.forEach((tab, i) => {
    tab.tabIndex = i === 0 ? 0 : -1;
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      select(next);
    });
  });
}

function setupFilters() {
  const again = () => {
    state.journal.key = "";
    schedule();
  };
  for (const id of ["f-endpoint", "f-outcome", "f-tail"]) $(id).addEventListener("change", again);
  for (const id of ["f-session", "f-status", "f-rule"]) {
    let timer = null;
    $(id).addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(again, 250);
    });
  }
  $("journal-filters").addEventListener("submit", (event) => event.preventDefault());
  $("actions").addEventListener("submit", (event) => event.preventDefault());
  $("journal-viewport").addEventListener("scroll", () => drawJournal(false), { passive: true });
  let timer = null;
  $("session-filter").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.sessionPage = 0;
      renderSessions();
    }, 150);
  });
  $("sessions-prev").addEventListener("click", () => {
    state.sessionPage -= 1;
    renderSessions();
  });
  $("sessions-next").addEventListener("click", () => {
    state.sessionPage += 1;
    renderSessions();
  });
}

async function discover() {
  const response = await fetch("/", { headers: { Accept: "application/json" } });
  const landing = await response.json();
  state.routes = new Set(landing.control_routes || []);
  state.endpoints = landing.endpoints || [];
  if (landing.control_token_required && !sessionStorage.getItem(TOKEN_KEY)) await askToken();
}

async function main() {
  await discover();
  setupTabs();
  setupFilters();
  setupActions();
  replace($("f-endpoint"), el("option", { value: "" }, "any"), state.endpoints.map((n) => el("option", {}, n)));
  await setupScenarioNames().catch(() => {});
  follow();
  schedule();
}

main();
