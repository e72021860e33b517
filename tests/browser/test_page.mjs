// Clicks through the service test page in Debian's headless Chromium (driven by playwright-core,
// which downloads no browser of its own). Run by tests/test_page.rs against a gateway started
// with `test_page: true`, DNIS numbers, request-interaction, match-interaction, an ORS
// service `request-inbound-poll` and a callback service `callback-for-mobile` on ors-sim (in
// its callback strategy mode).
//
//   node tests/browser/test_page.mjs http://127.0.0.1:PORT [screenshot.png]
//
// Exit 0 when every step saw what it expected; else 1 with "FAIL: ..." on stderr.
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 10_000;
// The whole run stops by itself even if Chromium hangs (the Rust test also kills it by PID).
const RUN_TIMEOUT_MS = 60_000;

const [base, screenshot] = process.argv.slice(2);
if (!base) fail("usage: node test_page.mjs <base url> [screenshot.png]");
if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing: run scripts/deps (Debian's chromium)`);
const PAGE = `${base}/genesys/1/admin/servicetest.html`;

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

const watchdog = setTimeout(() => fail(`no result within ${RUN_TIMEOUT_MS} ms`), RUN_TIMEOUT_MS);
const profile = mkdtempSync(join(tmpdir(), "gmsgw-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1100, height: 1400 },
    // No background traffic: the machine has no network, and refused connections are noise.
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  await run(context.pages()[0] || (await context.newPage()));
  console.log("test page: every step passed");
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

async function run(page) {
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // HTTP errors of the API calls are the page's subject, not a problem (Chromium logs each
  // as "Failed to load resource"); a CSP violation or a script error is.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  const assets = [];
  page.on("response", (r) => {
    if (/\/admin\/servicetest\.(js|css)$/.test(r.url())) assets.push([r.url(), r.status()]);
  });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  // The page and its headers.
  const resp = await page.goto(PAGE);
  check(resp && resp.status() === 200, `GET ${PAGE}: status ${resp && resp.status()}`);
  const headers = resp.headers();
  check((headers["content-type"] || "").startsWith("text/html"), `content-type ${headers["content-type"]}`);
  check(/script-src 'self'/.test(headers["content-security-policy"] || ""), "no CSP with script-src 'self'");
  await page.waitForSelector("body[data-ready=true]");
  check(assets.length === 2 && assets.every(([, st]) => st === 200), `assets: ${JSON.stringify(assets)}`);
  const background = await page.$eval("#reply-body", (e) => getComputedStyle(e).backgroundColor);
  check(background === "rgb(246, 248, 250)", `the style sheet was not applied (${background})`);
  check((await page.textContent("#api-root")) === "/genesys/1", "the page did not find its API root");

  // The configured services, with their types.
  const options = await page.$$eval("#service option", (os) => os.map((o) => [o.value, o.textContent]));
  const names = options.map(([v]) => v);
  for (const n of ["match-interaction", "request-inbound-poll", "request-interaction"]) {
    check(names.includes(n), `service ${n} not listed: ${JSON.stringify(options)}`);
  }
  const label = (n) => options.find(([v]) => v === n)[1];
  check(/built-in request-interaction/.test(label("request-interaction")), `label ${label("request-interaction")}`);
  check(/ORS/.test(label("request-inbound-poll")), `label ${label("request-inbound-poll")}`);

  // 1. Create request-interaction with a phone number, a code, a user field and a file.
  await page.selectOption("#service", "request-interaction");
  await setParam(page, "_phone_number", "5551234567");
  await setParam(page, "_provide_code", "true");
  await setParam(page, "firstname", "Ada");
  await page.fill("#file-field", "note");
  await page.setInputFiles("#file", {
    name: "note.txt", mimeType: "text/plain", buffer: Buffer.from("hello from the test page"),
  });
  const created = await act(page, "create", () => page.click("#create"));
  expectStatus(created, 200, "create request-interaction");
  check(/\(multipart\)/.test(created.request), `create was not multipart: ${created.request}`);
  const id = created.json._id;
  check(/^[0-9a-f-]{36}$/.test(id || ""), `create reply has no _id: ${created.text}`);
  check(/^800\d{7}$/.test(created.json._access_number || ""), `no DNIS _access_number: ${created.text}`);
  check(/^\d{4}$/.test(created.json._access_code || ""), `no 4-digit _access_code: ${created.text}`);
  check((await page.inputValue("#service-id")) === id, "the service id field was not filled in");
  check((await page.inputValue("#access-number")) === created.json._access_number, "access number not carried over");
  check((await page.inputValue("#access-code")) === created.json._access_code, "access code not carried over");

  // 2. Status of a request-interaction: GMS rejects requests on it, and the page says so.
  const status = await act(page, "status", () => page.click("#send-request"));
  expectStatus(status, 400, "status of request-interaction");
  check(/does not accept requests/.test(status.json.message || ""), `status message: ${status.text}`);
  check((await page.getAttribute("#reply-status", "class")) === "error", "a 400 is not shown as an error");

  // 3. Match the call with the number and code from the reply, with its user data.
  await page.check("#return-user-data");
  const matched = await act(page, "match", () => page.click("#match"));
  expectStatus(matched, 200, "match-interaction");
  check(matched.json._id === id, `matched ${matched.json._id}, created ${id}`);
  check(matched.json.firstname === "Ada", `user data not returned: ${matched.text}`);
  check(/\/storage\/binary\/[^/]+\/note$/.test(matched.json.note || ""), `file not stored: ${matched.text}`);
  const again = await act(page, "second match", () => page.click("#match"));
  expectStatus(again, 404, "a second match of the same reservation");

  // 4. An ORS service: create (no file this time), then poll its status from the page.
  await page.selectOption("#service", "request-inbound-poll");
  await page.setInputFiles("#file", []);
  await setParam(page, "_question", "hi");
  const ors = await act(page, "create ORS service", () => page.click("#create"));
  expectStatus(ors, 200, "create request-inbound-poll");
  check(/form-urlencoded/.test(ors.request), `create was not urlencoded: ${ors.request}`);
  check((await page.inputValue("#service-id")) === ors.json._id, "ORS service id not carried over");
  await page.check("#poll");
  // At least two polls, the last one answered 200 (the poll goes on every 2 s by itself).
  await page.waitForFunction(() => {
    const m = /polled (\d+) times?, last (\d+)/.exec(document.getElementById("poll-state").textContent);
    return m && Number(m[1]) >= 2 && m[2] === "200";
  });
  await page.uncheck("#poll");
  const polled = reply(await page.evaluate(snapshot));
  expectStatus(polled, 200, "status poll");
  check(/^(waiting-for-agent|connected)$/.test(polled.json.status || ""), `status: ${polled.text}`);
  check(polled.request.endsWith(`/service/${ors.json._id}/status`), `polled ${polled.request}`);

  // 5. Delete it.
  const deleted = await act(page, "delete", () => page.click("#delete"));
  expectStatus(deleted, 200, "delete");
  check(deleted.json._id === ors.json._id, `delete reply: ${deleted.text}`);

  // 6. Callbacks: listed in their own section, not among the services to create.
  check(!names.includes("callback-for-mobile"), `a callback service among the services: ${JSON.stringify(options)}`);
  const cbOptions = await page.$$eval("#cb-service option", (os) => os.map((o) => o.value));
  check(JSON.stringify(cbOptions) === '["callback-for-mobile"]', `callback services: ${JSON.stringify(cbOptions)}`);
  await page.fill("#gms-user", "");
  // An immediate one: ORS's dialog, then QUEUED with its session, then cancelled on ORS.
  await page.fill("#cb-number", "5557001");
  await page.fill("#cb-time", "");
  const now = await act(page, "immediate callback", () => page.click("#cb-create"));
  expectStatus(now, 200, "immediate callback");
  check(/\(immediate\)/.test(now.request), `not immediate: ${now.request}`);
  check(now.json._action === "ConfirmationDialog", `no ORS dialog: ${now.text}`);
  const cbId = now.json._id;
  check((await page.inputValue("#cb-id")) === cbId, "the callback id field was not filled in");
  const queued = await act(page, "callback query", () => page.click("#cb-query"));
  expectStatus(queued, 200, "callback query");
  check(queued.request.includes(`/service/callback/callback-for-mobile?_id=${cbId}`), `queried ${queued.request}`);
  check(queued.json.length === 1 && queued.json[0]._callback_state === "QUEUED", `query: ${queued.text}`);
  check(queued.json[0]._ors_session_id !== "", `no ORS session: ${queued.text}`);
  const cancelled = await act(page, "callback cancel", () => page.click("#cb-cancel"));
  expectStatus(cancelled, 200, "callback cancel");
  check(cancelled.json._callback_state === "COMPLETED" && cancelled.json._callback_reason === "CANCELLED",
    `cancel: ${cancelled.text}`);
  const twice = await act(page, "second cancel", () => page.click("#cb-cancel"));
  expectStatus(twice, 400, "a second cancel");
  check(twice.json.exception === "CallbackExceptionInvalidState", `second cancel: ${twice.text}`);
  // A scheduled one, an hour ahead.
  const at = new Date(Date.now() + 3_600_000).toISOString();
  await page.fill("#cb-number", "5557002");
  await page.fill("#cb-time", at);
  const later = await act(page, "scheduled callback", () => page.click("#cb-create"));
  expectStatus(later, 200, "scheduled callback");
  check(later.json._callback_state === "SCHEDULED" && later.json._desired_time === at, `scheduled: ${later.text}`);
  check((await page.inputValue("#cb-id")) === later.json._id, "the scheduled callback's id was not filled in");
  const found = await act(page, "scheduled query", () => page.click("#cb-query"));
  expectStatus(found, 200, "scheduled query");
  check(found.json.length === 1 && found.json[0]._callback_state === "SCHEDULED", `query: ${found.text}`);
  const dropped = await act(page, "scheduled cancel", () => page.click("#cb-cancel"));
  expectStatus(dropped, 200, "scheduled cancel");
  check(dropped.json._callback_state === "COMPLETED", `cancel: ${dropped.text}`);

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  check(problems.length === 0, problems.join("; "));
}

// Sets a parameter row's value, adding a row (with the "Add parameter" button) when none has
// that name.
async function setParam(page, name, value) {
  const rows = page.locator("#params tbody tr");
  const n = await rows.count();
  for (let i = 0; i < n; i++) {
    if ((await rows.nth(i).locator(".pname").inputValue()) === name) {
      await rows.nth(i).locator(".pvalue").fill(value);
      return;
    }
  }
  // A preset empty row is reused before a new one is added.
  for (let i = 0; i < n; i++) {
    if ((await rows.nth(i).locator(".pname").inputValue()) === "") {
      await rows.nth(i).locator(".pname").fill(name);
      await rows.nth(i).locator(".pvalue").fill(value);
      return;
    }
  }
  await page.click("#add-param");
  await rows.last().locator(".pname").fill(name);
  await rows.last().locator(".pvalue").fill(value);
}

function snapshot() {
  const s = document.getElementById("reply-section");
  return {
    seq: Number(s.dataset.seq),
    status: Number(s.dataset.status),
    shown: document.getElementById("reply-status").textContent,
    request: document.getElementById("reply-request").textContent,
    text: document.getElementById("reply-body").textContent,
  };
}

function reply(s) {
  let json = null;
  try {
    json = JSON.parse(s.text);
  } catch (_) {
    // Left null: expectStatus names the step.
  }
  return { ...s, json };
}

// Does one action and waits for the page to show the reply it caused.
async function act(page, what, action) {
  const before = (await page.evaluate(snapshot)).seq;
  await action();
  try {
    await page.waitForFunction(
      (n) => Number(document.getElementById("reply-section").dataset.seq) > n, before,
    );
  } catch (_) {
    throw new Error(`${what}: the page showed no reply within ${STEP_TIMEOUT_MS} ms`);
  }
  return reply(await page.evaluate(snapshot));
}

function expectStatus(r, status, what) {
  check(r.status === status, `${what}: page shows status ${r.status} (${r.shown}), want ${status}: ${r.text}`);
  check(r.shown.startsWith(`HTTP ${status}`), `${what}: status line reads "${r.shown}"`);
  check(r.json !== null, `${what}: reply is not shown as JSON: ${r.text}`);
}
