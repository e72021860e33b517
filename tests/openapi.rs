//! docs/openapi.yaml against the real gateway: schemathesis (from PyPI, installed by
//! scripts/deps) generates requests from the description, sends them to a live gateway with
//! built-in services, storage, admin credentials and an ORS service on ors-sim, and checks
//! every reply: no 5xx, a documented status, content type, headers and body schema.
//!
//! Data the generator cannot guess (a live ORS service, a stored text and file, a reservation
//! to match, configured service names) is made before the run and handed to schemathesis
//! through its config file; everything else comes from the description and its links.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Where scripts/deps installs schemathesis; `GMS_SCHEMATHESIS` names another executable.
const VENV_BIN: &str = ".cache/gms-gateway/venv/bin/schemathesis";
/// Test cases per operation and phase: about 800 requests in all, 10-30 s on one store.
const MAX_EXAMPLES: u32 = 15;
/// A hang guard only: a normal run takes a fraction of it.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
const ADMIN_USER: &str = "admin";
const ADMIN_PASSWORD: &str = "secret";
/// Numbers in the test's DNIS pool: more than the run can hold at once, so a create never
/// meets an exhausted pool (a 503 the description allows but the test must not provoke).
const POOL_SIZE: usize = 1000;
const PHONE: &str = "5551234";
/// The callback service of the run (on the same ors-sim).
const CALLBACK: &str = "callback-for-mobile";

fn schemathesis() -> PathBuf {
    let path = match std::env::var_os("GMS_SCHEMATHESIS") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            Path::new(&home).join(VENV_BIN)
        }
    };
    assert!(
        path.is_file(),
        "schemathesis is not installed at {}: run scripts/deps (it installs the pinned \
         version into ~/.cache/gms-gateway/venv), or set GMS_SCHEMATHESIS to its executable",
        path.display()
    );
    path
}

/// The gateway under test; schemathesis plays the IVR too (loopback is an internal network),
/// so match-interaction is reached, not only refused.
fn gms_yaml(sim: &OrsSim) -> String {
    let pool: Vec<String> = (0..POOL_SIZE).map(|i| format!("\"8{i:09}\"")).collect();
    format!(
        "admin: {{user: {ADMIN_USER}, password: {ADMIN_PASSWORD}}}\n\
         internal_networks: ['127.0.0.0/8']\n\
         ors: {{connect_timeout_ms: 1000, socket_timeout_ms: 2000}}\n\
         resources:\n  DNIS: [{}]\n\
         services:\n\
         \x20 request-interaction: {{_type: builtin, _service: request-interaction}}\n\
         \x20 request-access: {{_type: builtin, _service: request-access}}\n\
         \x20 match-interaction: {{_type: builtin, _service: match-interaction}}\n\
         \x20 request-inbound-poll: {{_type: ors, _service: \"http://scxml.invalid/poll.scxml\", _ors: \"{}\"}}\n\
         \x20 {CALLBACK}: {{_type: ors, _service_type: callback, _service: \"http://scxml.invalid/cb.scxml\", _ors: \"{}\", _business_hours_service: business-hours, _capacity_service: capacity-main, _throttle_request_parameters_limit: 1000000, _enable_in_queue_checking: \"false\", _max_queued_callbacks_per_service: 100000}}\n\
         \x20 business-hours: {{_type: builtin, _service: office-hours, _timezone: Europe/Paris, _bh_regular1: \"Mon-Sun 00:00-24:00\"}}\n\
         \x20 capacity-main: {{_type: builtin, _service: capacity, _timezone: Europe/Paris, _capacity_1: '{{\"1\":{{\"0900\":5}}}}'}}\n",
        pool.join(", "),
        sim.url(0),
        sim.url(0)
    )
}

/// What the run starts from: ids only the gateway can mint.
struct Seed {
    ors_service: String,
    callback: String,
    data_id: String,
    access_number: String,
    access_code: String,
}

fn seed(gw: &Gateway) -> Seed {
    let ors = gw.create_ok("request-inbound-poll", &[("first_name", "John")]);
    let mp = Multipart::new().text("first_name", "John").file(
        "picture",
        "face.jpg",
        "image/jpeg",
        &fake_jpeg(2000),
    );
    let data = ok_json(&post_multipart(&gw.storage_url("3600"), &mp, &[]));
    let reservation = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", PHONE),
            ("_provide_code", "true"),
            ("_ttl", "3600"),
            ("first_name", "John"),
        ],
    );
    let callback = ok_json(&post_form(
        &gw.url(&format!("/genesys/1/service/callback/{CALLBACK}")),
        &[("_customer_number", PHONE)],
        &[],
    ));
    Seed {
        ors_service: str_field(&ors, "_id").to_string(),
        callback: str_field(&callback, "_id").to_string(),
        data_id: str_field(&data, "id").to_string(),
        access_number: str_field(&reservation, "_access_number").to_string(),
        access_code: str_field(&reservation, "_access_code").to_string(),
    }
}

/// schemathesis.toml: credentials for the `basicAuth` scheme, dictionaries of values worth
/// trying (bound with a probability, so generated values are tried too), and the one
/// documented 5xx the run itself provokes: health is 503 after a generated
/// `changestatus/OFFLINE`.
fn config(s: &Seed) -> String {
    format!(
        r#"[auth.openapi.basicAuth]
username = "{ADMIN_USER}"
password = "{ADMIN_PASSWORD}"

[phases.stateful]
max-steps = 10

[dictionaries.services]
values = ["request-interaction", "request-access", "match-interaction", "request-inbound-poll"]
[dictionaries.requests]
values = ["status", "update", "callback", "check-queue-position"]
[dictionaries.flags]
values = ["true", "false"]
[dictionaries.ttls]
values = ["1", "30", "3600"]
[dictionaries.phones]
values = ["{PHONE}"]
[dictionaries.numbers]
values = ["{number}", "8000000000"]
[dictionaries.codes]
values = ["{code}"]
[dictionaries.ors_ids]
values = ["{ors}"]
[dictionaries.data_ids]
values = ["{data}"]
[dictionaries.keys]
values = ["first_name", "picture"]
[dictionaries.callback_services]
values = ["{CALLBACK}"]
[dictionaries.callback_ids]
values = ["{callback}"]
[dictionaries.hours_services]
values = ["business-hours", "capacity-main"]

[parameters]
"body._phone_number" = {{ dictionary = "phones", probability = 0.8 }}
"body._provide_code" = {{ dictionary = "flags", probability = 0.8 }}
"body._return_user_data" = {{ dictionary = "flags", probability = 0.8 }}
"body._ttl" = {{ dictionary = "ttls", probability = 0.8 }}
"body._service_ttl" = {{ dictionary = "ttls", probability = 0.8 }}
"body._access_number" = {{ dictionary = "numbers", probability = 0.8 }}
"body._access_code" = {{ dictionary = "codes", probability = 0.5 }}

[[operations]]
include-operation-id = "createService"
parameters = {{ "path.service" = {{ dictionary = "services", probability = 0.8 }} }}

[[operations]]
include-operation-id = ["serviceRequest", "pushStatus"]
parameters = {{ "path.id" = {{ dictionary = "ors_ids", probability = 0.5 }}, "path.request" = {{ dictionary = "requests", probability = 0.8 }} }}

[[operations]]
include-operation-id = "storageGetAll"
parameters = {{ "path.id_or_ttl" = {{ dictionary = "data_ids", probability = 0.5 }} }}

[[operations]]
include-operation-id = "storageGetKey"
parameters = {{ "path.id" = {{ dictionary = "data_ids", probability = 0.5 }}, "path.key_or_ttl" = {{ dictionary = "keys", probability = 0.7 }} }}

[[operations]]
include-operation-id = "storageBinary"
parameters = {{ "path.id" = {{ dictionary = "data_ids", probability = 0.5 }}, "path.key" = {{ dictionary = "keys", probability = 0.7 }} }}

[[operations]]
include-operation-id = ["createCallback", "queryCallbacks", "callbackAvailability"]
parameters = {{ "path.name" = {{ dictionary = "callback_services", probability = 0.8 }} }}

[[operations]]
include-operation-id = ["updateCallback", "cancelCallback"]
parameters = {{ "path.name" = {{ dictionary = "callback_services", probability = 0.8 }}, "path.id" = {{ dictionary = "callback_ids", probability = 0.5 }} }}

[[operations]]
include-operation-id = "serviceRequestGet"
parameters = {{ "path.id" = {{ dictionary = "callback_ids", probability = 0.5 }}, "path.request" = {{ dictionary = "requests", probability = 0.8 }} }}

[[operations]]
include-operation-id = "officeHoursOrCapacity"
parameters = {{ "path.service" = {{ dictionary = "hours_services", probability = 0.8 }} }}

[[operations]]
include-operation-id = "adminCallbackQueues"
parameters = {{ "query.target" = {{ dictionary = "callback_services", probability = 0.8 }} }}

[[operations]]
include-operation-id = "adminCallbackWatermarks"
parameters = {{ "query.service_name" = {{ dictionary = "callback_services", probability = 0.8 }} }}

[[operations]]
include-operation-id = "nodeHealth"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"#,
        number = s.access_number,
        code = s.access_code,
        ors = s.ors_service,
        callback = s.callback,
        data = s.data_id,
    )
}

/// Runs schemathesis to its end or kills it (by PID) at the deadline; its output goes to a
/// file. Returns whether it passed and what it printed.
fn run(exe: &Path, dir: &Path, gw: &Gateway) -> (bool, String) {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    let out_path = dir.join("schemathesis.out");
    let out = fs::File::create(&out_path).expect("create schemathesis.out");
    let err = out.try_clone().expect("clone output file");
    let mut child = Command::new(exe)
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(&spec)
        .args(["--url", &gw.url("/genesys/1")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance,unsupported_method,\
             allow_header_conformance",
        ])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", "20251107"])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        // Its caches (.hypothesis, .schemathesis) land in the temp dir, not in the repo.
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let status = wait_or_kill(&mut child, RUN_TIMEOUT, None);
    let text = fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) => (s.success(), text),
        None => (
            false,
            format!("{text}\n--- killed after {RUN_TIMEOUT:?} ---"),
        ),
    }
}

#[test]
fn the_gateway_keeps_to_its_openapi_description() {
    let exe = schemathesis();
    let sim = OrsSim::start(1);
    let mut gw = Gateway::start(&gms_yaml(&sim));
    let seeded = seed(&gw);
    let dir = TempDir::new("openapi");
    fs::write(dir.file("schemathesis.toml"), config(&seeded)).expect("write schemathesis.toml");

    let started = Instant::now();
    let (passed, output) = run(&exe, dir.path(), &gw);
    gw.assert_alive();
    assert!(
        passed,
        "schemathesis found replies that break docs/openapi.yaml:\n{output}\n\
         --- gateway stderr ---\n{}",
        gw.stderr()
    );
    // Shown with `--nocapture`: what was generated and how long it took.
    println!(
        "{output}\nschemathesis passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
