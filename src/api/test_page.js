// The service test page's script: builds requests to the gateway's public Service API (and the
// Callback Services API) and shows the replies. Served as a file of its own so the Content-Security-Policy can forbid inline
// script. Every text from the server (service names, replies) is written with textContent, never
// parsed as HTML.
"use strict";

// The API root this page was served under: {root}/admin/servicetest.html -> {root}.
const API_ROOT = location.pathname.replace(/\/admin\/servicetest\.html$/, "");
const POLL_EVERY_MS = 2000;
// A poll left on stops by itself after this many requests (about five minutes).
const POLL_MAX = 150;
const TIMEOUT_MS = 30000;

// Parameters offered when a service is picked, by built-in name.
const PRESETS = {
  "request-interaction": [["_phone_number", ""], ["_provide_code", "true"]],
  "request-access": [["_id", ""], ["_phone_number", ""], ["_provide_code", "true"]],
  "match-interaction": [["_access_number", ""], ["_access_code", ""]],
};

const $ = (id) => document.getElementById(id);
const services = JSON.parse($("services").textContent);
let seq = 0;
let pollTimer = null;
let polls = 0;

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.appendChild(o);
}

function describe(s) {
  return s.type === "builtin" ? `built-in ${s.builtin}` : "ORS service";
}

function callbackUrl(...segments) {
  return `${API_ROOT}/service/callback/${segments.map(encodeURIComponent).join("/")}`;
}

function callbackId() {
  return idIn("cb-id", "callback");
}

// Immediate without a desired time (the reply is ORS's dialog), else scheduled.
async function createCallback() {
  const name = $("cb-service").value;
  if (!name) return;
  const p = [["_customer_number", $("cb-number").value.trim()]];
  const at = $("cb-time").value.trim();
  if (at) p.push(["_desired_time", at]);
  const r = await send("POST", callbackUrl(name), new URLSearchParams(p), userHeader(), at ? "scheduled" : "immediate");
  if (r.status === 200 && r.json && typeof r.json._id === "string") $("cb-id").value = r.json._id;
}

async function queryCallback() {
  const id = callbackId();
  if (id) await send("GET", `${callbackUrl($("cb-service").value)}?_id=${encodeURIComponent(id)}`, null, userHeader(), "");
}

async function cancelCallback() {
  const id = callbackId();
  if (id) await send("DELETE", callbackUrl($("cb-service").value, id), null, userHeader(), "");
}

function addParam(name, value) {
  const tr = document.createElement("tr");
  const cells = [name, value].map((v, i) => {
    const input = document.createElement("input");
    input.className = i === 0 ? "pname" : "pvalue";
    input.value = v;
    input.spellcheck = false;
    const td = document.createElement("td");
    td.appendChild(input);
    tr.appendChild(td);
    return input;
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = "remove";
  remove.addEventListener("click", () => tr.remove());
  const td = document.createElement("td");
  td.appendChild(remove);
  tr.appendChild(td);
  $("params").tBodies[0].appendChild(tr);
  return cells;
}

function selectedService() {
  return services.find((s) => s.name === $("service").value);
}

function servicePicked() {
  const s = selectedService();
  $("service-info").textContent = !s
    ? "no services configured"
    : s.requests
      ? "takes requests (status, update, ...) on its id"
      : "takes no requests on its id";
  $("params").tBodies[0].replaceChildren();
  const preset = (s && PRESETS[s.builtin]) || [["", ""]];
  for (const [n, v] of preset) {
    addParam(n, n === "_id" ? $("service-id").value : v);
  }
}

function params() {
  const out = [];
  for (const tr of $("params").tBodies[0].rows) {
    const name = tr.querySelector(".pname").value.trim();
    if (name) out.push([name, tr.querySelector(".pvalue").value]);
  }
  return out;
}

function userHeader() {
  const u = $("gms-user").value.trim();
  return u ? { gms_user: u } : {};
}

function serviceUrl(...segments) {
  return `${API_ROOT}/service/${segments.map(encodeURIComponent).join("/")}`;
}

// Sends one request and shows its reply; resolves to {status, json} (json null if none).
async function send(method, url, body, headers, what) {
  const section = $("reply-section");
  $("reply-request").textContent = `${method} ${url}${what ? ` (${what})` : ""}`;
  $("reply-status").textContent = "…";
  $("reply-status").className = "";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  let status = 0;
  let text;
  let json = null;
  let age = null;
  try {
    const r = await fetch(url, {
      method, body, headers, cache: "no-store", credentials: "same-origin", signal: abort.signal,
    });
    status = r.status;
    age = r.headers.get("Age");
    text = await r.text();
    try {
      json = JSON.parse(text);
      text = JSON.stringify(json, null, 2);
    } catch (_) {
      // Not JSON (a text/plain value, say): shown as it came.
    }
  } catch (e) {
    text = `request failed: ${e.message || e}`;
  } finally {
    clearTimeout(timer);
  }
  $("reply-status").textContent = status
    ? `HTTP ${status}${age !== null ? ` (Age ${age} s: stale)` : ""}`
    : "no reply";
  $("reply-status").className = status >= 200 && status < 300 ? "ok" : "error";
  $("reply-body").textContent = text;
  section.dataset.status = String(status);
  section.dataset.seq = String(++seq);
  return { status, json };
}

// Copies what a create or match answered into the fields the next steps use.
function remember(json) {
  if (!json || typeof json !== "object") return;
  if (typeof json._id === "string") $("service-id").value = json._id;
  if (typeof json._access_number === "string") $("access-number").value = json._access_number;
  if (typeof json._access_code === "string") $("access-code").value = json._access_code;
}

async function create() {
  const s = selectedService();
  if (!s) return;
  const file = $("file").files[0];
  let body;
  let what;
  if (file) {
    body = new FormData();
    for (const [n, v] of params()) body.append(n, v);
    body.append($("file-field").value.trim() || "file", file, file.name);
    what = "multipart";
  } else {
    body = new URLSearchParams(params());
    what = "form-urlencoded";
  }
  const r = await send("POST", serviceUrl(s.name), body, userHeader(), what);
  if (r.status === 200 && s.builtin !== "match-interaction") remember(r.json);
}

// The id in field `field`, or "" with a word on the page that a `what` must be created first.
function idIn(field, what) {
  const id = $(field).value.trim();
  if (!id) {
    $("reply-request").textContent = `no ${what} id: create a ${what} first`;
    $("reply-status").textContent = "";
  }
  return id;
}

function serviceId() {
  return idIn("service-id", "service");
}

async function request(name) {
  const id = serviceId();
  if (!id) return null;
  return send("POST", serviceUrl(id, name), null, userHeader(), "");
}

async function pollOnce() {
  pollTimer = null;
  if (!$("poll").checked) return;
  polls += 1;
  const r = await request("status");
  const last = r ? r.status : "no id";
  $("poll-state").textContent = `polled ${polls} time${polls === 1 ? "" : "s"}, last ${last}`;
  // A client error will not heal by asking again; neither does a missing id.
  if (!r || (r.status >= 400 && r.status < 500) || polls >= POLL_MAX) {
    $("poll").checked = false;
    $("poll-state").textContent += " (stopped)";
    return;
  }
  if ($("poll").checked) pollTimer = setTimeout(pollOnce, POLL_EVERY_MS);
}

function pollToggled() {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
  if ($("poll").checked) {
    polls = 0;
    pollOnce();
  }
}

async function match() {
  const name = $("match-service").value;
  if (!name) return;
  const p = [["_access_number", $("access-number").value.trim()]];
  const code = $("access-code").value.trim();
  if (code) p.push(["_access_code", code]);
  const phone = $("match-phone").value.trim();
  if (phone) p.push(["_phone_number", phone]);
  if ($("return-user-data").checked) p.push(["_return_user_data", "true"]);
  await send("POST", serviceUrl(name), new URLSearchParams(p), {}, "form-urlencoded");
}

function init() {
  $("api-root").textContent = API_ROOT;
  // Callback services are created in their own section (their API is not the Service API's).
  const plain = services.filter((s) => s.type !== "callback");
  for (const s of plain) option($("service"), s.name, `${s.name} (${describe(s)})`);
  const callbacks = services.filter((s) => s.type === "callback");
  for (const s of callbacks) option($("cb-service"), s.name, s.name);
  if (!callbacks.length) {
    option($("cb-service"), "", "no callback service configured");
    for (const b of ["cb-create", "cb-query", "cb-cancel"]) $(b).disabled = true;
  }
  const matchers = services.filter((s) => s.builtin === "match-interaction");
  for (const s of matchers) option($("match-service"), s.name, s.name);
  if (!matchers.length) {
    option($("match-service"), "", "no match-interaction service configured");
    $("match").disabled = true;
  }
  if (!plain.length) $("create").disabled = true;
  const preferred = plain.find((s) => s.builtin === "request-interaction");
  if (preferred) $("service").value = preferred.name;
  servicePicked();
  $("service").addEventListener("change", servicePicked);
  $("add-param").addEventListener("click", () => addParam("", "")[0].focus());
  $("create").addEventListener("click", create);
  $("send-request").addEventListener("click", () => request($("request-name").value.trim()));
  $("poll").addEventListener("change", pollToggled);
  $("delete").addEventListener("click", async () => {
    const id = serviceId();
    if (id) await send("DELETE", serviceUrl(id), null, userHeader(), "");
  });
  $("match").addEventListener("click", match);
  $("cb-create").addEventListener("click", createCallback);
  $("cb-query").addEventListener("click", queryCallback);
  $("cb-cancel").addEventListener("click", cancelCallback);
  document.body.dataset.ready = "true";
}

init();
