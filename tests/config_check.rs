//! `gms-gateway -t -c FILE`: config checking.

mod common;

use std::fs;
use std::path::Path;

use common::gms_clients::*;
use common::*;

/// Write a config (with `{PORT}` / `{DIR}` filled in) and check it.
fn check_yaml(template: &str) -> (Checked, String, TempDir) {
    let dir = TempDir::new("check");
    let path = dir.file("gateway.yaml");
    fs::write(&path, fill(template, free_port(), dir.path())).expect("write config");
    let c = run_check(&path, &dir);
    (c, path.display().to_string(), dir)
}

fn assert_ok(c: &Checked, what: &str) {
    assert_eq!(
        c.code,
        Some(0),
        "{what} should pass -t\n--- stderr ---\n{}\n--- stdout ---\n{}",
        c.stderr,
        c.stdout
    );
}

/// Non-zero exit; stderr names the file and every marker.
/// `-t` on a configuration with this gms block refuses it, naming each of `markers`.
fn assert_gms_rejected(gms: &str, markers: &[&str]) {
    let (c, path, _dir) = check_yaml(&gateway_yaml(gms));
    assert_rejected(&c, &path, markers);
}

fn assert_rejected(c: &Checked, path: &str, markers: &[&str]) {
    assert!(
        c.code.is_some_and(|code| code != 0),
        "bad config passed -t (exit {:?})\n--- stderr ---\n{}",
        c.code,
        c.stderr
    );
    assert!(
        c.stderr.contains(path),
        "stderr does not name the file {path}:\n{}",
        c.stderr
    );
    for m in markers {
        assert!(
            c.stderr.contains(m),
            "stderr does not mention {m:?}:\n{}",
            c.stderr
        );
    }
}

#[test]
fn check_accepts_the_test_harness_config() {
    let (c, _, _dir) = check_yaml(&gateway_yaml(STD_GMS));
    assert_ok(&c, "the harness config");
}

#[test]
fn check_prints_the_settings_conf_reload_reads() {
    let dir = TempDir::new("check");
    let path = dir.file("gateway.yaml");
    let yaml = gateway_yaml(STD_GMS).replace("127.0.0.1:{PORT}", "0.0.0.0:18080");
    fs::write(&path, fill(&yaml, 0, dir.path())).expect("write config");
    let c = run_check(&path, &dir);
    assert_ok(&c, "the harness config");
    let d = dir.path().display();
    for line in [
        format!("pid_file: {d}/gw.pid"),
        format!("upgrade_sock: {d}/gw.sock"),
        "grace_period_seconds: 1".to_string(),
        "graceful_shutdown_timeout_seconds: 1".to_string(),
        "health_url: http://127.0.0.1:18080/genesys/1/admin/node/health".to_string(),
    ] {
        assert!(
            c.stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{}",
            c.stdout
        );
    }
}

#[test]
fn check_refuses_daemon_wait_for_ready() {
    let yaml = format!("daemon_wait_for_ready: true\n{}", gateway_yaml(STD_GMS));
    let (c, path, _dir) = check_yaml(&yaml);
    assert_rejected(&c, &path, &["daemon_wait_for_ready"]);
}

#[test]
fn check_accepts_the_contract_example_config() {
    let gms = r#"prefixes: ["/genesys/1", "/GMS-web/gms/1"]
external_url_base: "http://gms.example.com:8080"
limits: {max_body_bytes: 10485760, max_fields: 256, max_field_bytes: 65536, max_ttl: 86400}
metrics_listen: "127.0.0.1:9091"
storage: {backend: memory}
admin: {user: admin, password: "change-me"}
backend: {upstreams: ["127.0.0.1:8090"]}
fallback_to_backend: false
ors: {max_ors_request_attempts: 3, connect_timeout_ms: 2000, socket_timeout_ms: 2000}
server:
  _ors: "http://127.0.0.1:7210,http://127.0.0.1:7211"
  _ors_lb_strategy: circular
resources:
  DNIS: ["8003449999", "8003449998", "8003449997"]
services:
  request-interaction: {_type: builtin, _service: request-interaction, _ttl: 30}
  request-access:      {_type: builtin, _service: request-access}
  match-interaction:   {_type: builtin, _service: match-interaction}
  request-inbound-poll:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
    _status_ttl_ms: 1000
"#;
    let (c, _, _dir) = check_yaml(&gateway_yaml(gms));
    assert_ok(&c, "the contract's example config");
}

#[test]
fn check_accepts_the_repository_conf_gateway_yaml() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/gateway.yaml"));
    assert!(path.exists(), "{} is missing", path.display());
    let dir = TempDir::new("check");
    let c = run_check(path, &dir);
    assert_ok(&c, "conf/gateway.yaml");
}

#[test]
fn check_accepts_the_repository_conf_gateway_redis_yaml() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/gateway-redis.yaml"
    ));
    assert!(path.exists(), "{} is missing", path.display());
    let dir = TempDir::new("check");
    let c = run_check(path, &dir);
    assert_ok(&c, "conf/gateway-redis.yaml");
}

#[test]
fn check_rejects_an_unknown_key_and_names_it() {
    assert_gms_rejected(
        &format!("limits: {{max_bodyy_bytes: 100}}\n{STD_GMS}"),
        &["max_bodyy_bytes", "gms.limits"],
    );
}

#[test]
fn check_rejects_zero_timeouts_naming_the_key_path() {
    assert_gms_rejected(
        &format!("connections: {{body_timeout_ms: 0}}\n{STD_GMS}"),
        &["gms.connections.body_timeout_ms"],
    );
    assert_gms_rejected(
        &format!("backend: {{upstreams: [\"127.0.0.1:8090\"], timeout_ms: 0}}\n{STD_GMS}"),
        &["gms.backend.timeout_ms"],
    );
}

#[test]
fn check_rejects_a_per_phone_limit_beyond_u32() {
    assert_gms_rejected(
        &format!("limits: {{reservations_per_phone: 5000000000}}\n{STD_GMS}"),
        &["gms.limits.reservations_per_phone"],
    );
}

#[test]
fn check_rejects_an_unknown_top_level_gms_key() {
    assert_gms_rejected(
        &format!("fallback_to_backendd: true\n{STD_GMS}"),
        &["fallback_to_backendd"],
    );
}

#[test]
fn check_rejects_a_bad_ors_url_naming_the_key_path() {
    assert_gms_rejected(
        &format!("{STD_GMS}  request-inbound-poll:\n    _type: ors\n    _service: \"http://scxml.example.com/poll.scxml\"\n    _ors: \"htp:/x\"\n"),
        &["gms.services.request-inbound-poll._ors"],
    );
}

#[test]
fn check_rejects_an_unknown_service_type() {
    assert_gms_rejected(
        &format!("{STD_GMS}  weird: {{_type: bogus, _service: request-interaction}}\n"),
        &["gms.services.weird"],
    );
}

#[test]
fn check_rejects_an_unknown_builtin() {
    assert_gms_rejected(
        &format!("{STD_GMS}  odd-builtin: {{_type: builtin, _service: no-such-builtin}}\n"),
        &["gms.services.odd-builtin"],
    );
}

#[test]
fn check_rejects_an_empty_resource_pool() {
    let gms = r#"resources:
  DNIS: ["8003449999"]
  EMPTY: []
services:
  request-interaction: {_type: builtin, _service: request-interaction}
"#;
    let (c, path, _dir) = check_yaml(&gateway_yaml(gms));
    assert_rejected(&c, &path, &["gms.resources.EMPTY"]);
}

#[test]
fn check_rejects_a_service_resource_group_without_numbers() {
    let gms = r#"resources:
  DNIS: ["8003449999"]
services:
  request-interaction: {_type: builtin, _service: request-interaction}
  ri-nowhere: {_type: builtin, _service: request-interaction, _resource_group: NOWHERE}
"#;
    let (c, path, _dir) = check_yaml(&gateway_yaml(gms));
    assert_rejected(&c, &path, &["gms.services.ri-nowhere"]);
}

#[test]
fn check_reports_every_error_in_one_file() {
    let gms = format!(
        "limits: {{max_bodyy_bytes: 100}}\n{STD_GMS}  request-inbound-poll:\n    _type: ors\n    _service: \"http://scxml.example.com/poll.scxml\"\n    _ors: \"htp:/x\"\n  weird: {{_type: bogus}}\n"
    );
    let (c, path, _dir) = check_yaml(&gateway_yaml(&gms));
    assert_rejected(
        &c,
        &path,
        &[
            "max_bodyy_bytes",
            "gms.services.request-inbound-poll._ors",
            "gms.services.weird",
        ],
    );
}

#[test]
fn check_rejects_yaml_syntax_errors_naming_the_file() {
    assert_gms_rejected(
        &format!("{STD_GMS}  broken: {{_type: builtin, _service: [unclosed\n"),
        &[],
    );
}

#[test]
fn check_rejects_a_missing_file() {
    let dir = TempDir::new("check");
    let path = dir.file("does-not-exist.yaml");
    let c = run_check(&path, &dir);
    assert_rejected(&c, &path.display().to_string(), &[]);
}

/// `tls_listen: [...]` with one entry per `(addr, cert, key)`.
fn tls_listen(entries: &[(&str, &Path, &Path)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(addr, cert, key)| {
            format!(
                "{{addr: \"{addr}\", cert: \"{}\", key: \"{}\"}}",
                cert.display(),
                key.display()
            )
        })
        .collect();
    format!("tls_listen: [{}]\n", items.join(", "))
}

#[test]
fn check_accepts_tls_listeners_a_ca_file_and_https_upstreams() {
    let pki = TempDir::new("pki");
    let certs = TestCerts::make(pki.path());
    let gms = format!(
        "{}backend: {{upstreams: [\"https://127.0.0.1:9443\", \"http://127.0.0.1\", \"127.0.0.1:8090\"]}}\n{STD_GMS}",
        tls_listen(&[("127.0.0.1:8443", &certs.cert, &certs.key)])
    );
    let top = format!("ca_file: \"{}\"\n", certs.ca.display());
    let (c, _, _dir) = check_yaml(&format!("{top}{}", gateway_yaml(&gms)));
    assert_ok(&c, "a config with TLS");
}

#[test]
fn check_prints_an_https_health_url_when_every_listener_is_tls() {
    let pki = TempDir::new("pki");
    let certs = TestCerts::make(pki.path());
    let yaml = gateway_yaml(STD_GMS).replace(
        "  listen: [\"127.0.0.1:{PORT}\"]\n",
        &format!(
            "  {}",
            tls_listen(&[("0.0.0.0:18443", &certs.cert, &certs.key)])
        ),
    );
    let (c, _, _dir) = check_yaml(&yaml);
    assert_ok(&c, "a TLS-only config");
    let line = "health_url: https://127.0.0.1:18443/genesys/1/admin/node/health";
    assert!(
        c.stdout.lines().any(|l| l == line),
        "no line {line:?} in:\n{}",
        c.stdout
    );
}

#[test]
fn check_rejects_unusable_tls_files_naming_each_key() {
    let pki = TempDir::new("pki");
    let certs = TestCerts::make(&pki.file("a"));
    let other = TestCerts::make(&pki.file("b"));
    let missing = pki.file("missing.pem");
    let gms = format!(
        "{}backend: {{upstreams: [\"https://\", \"https://u@127.0.0.1:1\"]}}\n{STD_GMS}",
        tls_listen(&[
            ("127.0.0.1:8443", &missing, &certs.key),
            ("127.0.0.1:8444", &certs.cert, &other.key),
            ("nope", &certs.key, &certs.key),
        ])
    );
    // A private key is not a CA bundle.
    let top = format!("ca_file: \"{}\"\n", certs.key.display());
    let (c, path, _dir) = check_yaml(&format!("{top}{}", gateway_yaml(&gms)));
    assert_rejected(
        &c,
        &path,
        &[
            "gms.tls_listen[0].cert: cannot read",
            "gms.tls_listen[1].key:",
            "does not fit the certificate",
            "gms.tls_listen[2].addr",
            "gms.tls_listen[2].cert: no PEM certificate",
            "ca_file:",
            "gms.backend.upstreams[0]",
            "gms.backend.upstreams[1]",
        ],
    );
}

#[test]
fn check_reports_bad_connection_limits_and_api_auth() {
    let gms = format!(
        "connections: {{header_timeout_ms: 0, max_header_bytes: 100}}\n\
         api_auth: {{header: 'bad header', keys: ['short']}}\n{STD_GMS}"
    );
    let (c, path, _dir) = check_yaml(&gateway_yaml(&gms));
    assert_rejected(
        &c,
        &path,
        &[
            "gms.connections.header_timeout_ms",
            "gms.connections.max_header_bytes",
            "gms.api_auth.header",
            "gms.api_auth.keys[0]",
        ],
    );
    let (c, path, _dir) = check_yaml(&gateway_yaml(&format!("api_auth: {{}}\n{STD_GMS}")));
    assert_rejected(
        &c,
        &path,
        &["gms.api_auth: needs at least one of keys or users"],
    );
}

#[test]
fn check_rejects_a_test_page_that_is_not_a_boolean() {
    let (c, path, _dir) = check_yaml(&gateway_yaml(&format!("test_page: sometimes\n{STD_GMS}")));
    assert_rejected(&c, &path, &["gms.test_page"]);
    let (c, _, _dir) = check_yaml(&gateway_yaml(&format!("test_page: true\n{STD_GMS}")));
    assert_ok(&c, "test_page: true");
}

#[test]
fn check_validates_the_internal_access_keys_naming_each() {
    assert_gms_rejected(
        "internal_auth: {keys: ['short'], users: {'a:b': x}, user: {ivr: pw}, header: 'bad header'}\n\
         internal_networks: ['10.0.0.0/33', 'nowhere', '192.0.2.1']",
        &[
            "gms.internal_auth.keys[0]",
            "gms.internal_auth.users.a:b",
            "gms.internal_auth.user",
            "gms.internal_auth.header",
            "gms.internal_networks[0]",
            "gms.internal_networks[1]",
        ],
    );
    assert_gms_rejected("internal_auth: open", &["gms.internal_auth", "'open'"]);
    assert_gms_rejected(
        "internal_auth: none\ninternal_networks: ['10.0.0.0/8']",
        &["gms.internal_networks"],
    );
}

#[test]
fn check_warns_when_match_interaction_is_open_or_shut() {
    let services = STD_GMS.split_once('\n').map_or("", |(_, rest)| rest);
    // `internal_auth: none` passes, with a warning that names it.
    let (c, _, _dir) = check_yaml(&gateway_yaml(&format!("internal_auth: none\n{services}")));
    assert_ok(&c, "internal_auth: none");
    assert!(
        c.stderr.contains("warning: gms.internal_auth: none"),
        "no warning:\n{}",
        c.stderr
    );
    // Neither credentials nor networks: every match will be refused; said so.
    let (c, _, _dir) = check_yaml(&gateway_yaml(services));
    assert_ok(&c, "no internal access");
    assert!(
        c.stderr.contains("refused (401)"),
        "no warning:\n{}",
        c.stderr
    );
    // Configured: no warning.
    let (c, _, _dir) = check_yaml(&gateway_yaml(STD_GMS));
    assert!(!c.stderr.contains("warning"), "{}", c.stderr);
}

#[test]
fn check_validates_the_new_limits_naming_each() {
    assert_gms_rejected(
        "limits: {max_body_bytes: 1000, max_ttl: 100, max_failed_matches: 0, \
         upload_bytes_per_ip_per_s: 999, max_anonymous_ttl: 101, max_store_bytes: 999}",
        &[
            "gms.limits.max_failed_matches",
            "gms.limits.upload_bytes_per_ip_per_s",
            "gms.limits.max_anonymous_ttl",
            "gms.limits.max_store_bytes",
        ],
    );
    assert_gms_rejected(
        "limits: {max_store_bytes: 100000000}\nstorage: {backend: redis, url: 'redis://127.0.0.1:1'}",
        &["gms.limits.max_store_bytes", "maxmemory"],
    );
    // 0 turns the per-address limits off.
    let (c, _, _dir) = check_yaml(&gateway_yaml(&format!(
        "limits: {{create_rate_per_ip: 0, upload_bytes_per_ip_per_s: 0, failed_matches_per_ip: 0}}\n{STD_GMS}"
    )));
    assert_ok(&c, "limits off");
}

/// GMS 8.5's QA suite's service sections pass `-t` (issue 17): `ClusterTests.java`'s
/// built-ins (408-452) and server sections with `access_code_prefix` (363-404: `9`, `8`,
/// `7-9`, `5-7`), `helper/ServiceOptions.java`'s built-in option sets (557-605: empty
/// `_access_code_length`, `_phone_number: undefined`, `_overwritable_options: _redirect`),
/// and its callback template (14-145, every option, the empty ones included) with `_service`
/// an SCXML URL and an `_ors`: `_service: callback` is the Callback Services API's (issue 18).
#[test]
fn check_accepts_the_gms_qa_suites_option_sets() {
    let callback = QA_CALLBACK_OPTIONS.replace(
        r#"_service: "callback""#,
        r#"_service: "http://scxml.example.com/callback.scxml""#,
    );
    let with_callback =
        format!("{QA_CLUSTER_GMS}  qa-callback:{callback}    _ors: \"http://127.0.0.1:7210\"\n");
    for gms in [
        QA_CLUSTER_GMS.to_string(),
        qa_cluster_with_prefix("9"),
        qa_cluster_with_prefix("8"),
        qa_cluster_with_prefix("7-9"),
        qa_cluster_with_prefix("5-7"),
        QA_SERVICE_OPTIONS_GMS.to_string(),
        with_callback,
    ] {
        let (c, _, _dir) = check_yaml(&gateway_yaml(&gms));
        assert_ok(&c, &gms);
    }
}

/// What GMS answers a 500 for on every create is refused up front (`ClusterTests.java`
/// test_01_07/08: prefixes `999999` and `9999999999` with 4-digit codes), as are a service
/// named `callback` (the Callback API's path) and a booking time outside 5-1800 s.
#[test]
fn check_rejects_prefixes_that_leave_no_digit_and_a_service_named_callback() {
    for prefix in ["999999", "9999999999", "9x", "9-7"] {
        assert_gms_rejected(
            &qa_cluster_with_prefix(prefix),
            &["gms.server.access_code_prefix", prefix],
        );
    }
    assert_gms_rejected(
        &format!("{STD_GMS}  callback: {{_type: builtin, _service: request-interaction}}\n"),
        &["gms.services.callback", "reserved"],
    );
    assert_gms_rejected(
        &format!("{STD_GMS}  slow: {{_type: builtin, _service: request-interaction, _booking_expiration_timeout: 1801}}\n"),
        &["gms.services.slow._booking_expiration_timeout"],
    );
}
