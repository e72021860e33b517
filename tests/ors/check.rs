//! `gms-gateway -t` on ORS options.

use super::*;

/// `gms-gateway -t -c FILE` on a config; `(exit code, stderr)`.
fn check(gms_yaml: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("orscheck");
    let path = dir.file("gateway.yaml");
    fs::write(
        &path,
        fill(&gateway_yaml(gms_yaml), free_port(), dir.path()),
    )
    .expect("write");
    let c = run_check(&path, &dir);
    (c.code, c.stderr)
}

#[test]
fn check_accepts_every_ors_option() {
    let gms = r#"admin: {user: admin, password: secret}
ors: {max_ors_request_attempts: 3, connect_timeout_ms: 2000, socket_timeout_ms: 2000, health_check_interval_ms: 1000}
server:
  _ors: "http://127.0.0.1:7210,http://127.0.0.1:7211"
services:
  request-inbound-poll:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
    _ors: "http://127.0.0.1:7212,http://127.0.0.1:7213"
    _ors_lb_strategy: circular
    _status_ttl_ms: 1000
    _status_push_ttl_ms: 30000
    _ors_forward: params
    _ors_start: sync
    _ors_start_timeout_s: 30
    _start_request: gms.start
    _overwritable_options: "_foo"
    _service_ttl: 3600
    _foo: configured
  request-outbound-push:
    _type: ors
    _service: "http://scxml.example.com/push.scxml"
    _ors_lb_strategy: linear
    _ors_forward: headers
    _ors_start: async
    _start_request: ""
"#;
    let (code, stderr) = check(gms);
    assert_eq!(code, Some(0), "a valid ORS config failed -t:\n{stderr}");
}

#[test]
fn check_rejects_bad_ors_option_values_naming_each_key() {
    let gms = r#"ors: {socket_timeout_ms: 0}
services:
  request-inbound-poll:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
    _ors: "http://127.0.0.1:7210"
    _ors_lb_strategy: roundrobin
    _ors_forward: body
    _ors_start: later
    _status_ttl_ms: soon
  request-inbound-nowhere:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
"#;
    let (code, stderr) = check(gms);
    assert!(
        code.is_some_and(|c| c != 0),
        "bad ORS options passed -t:\n{stderr}"
    );
    for key in [
        "gms.ors.socket_timeout_ms",
        "gms.services.request-inbound-poll._ors_lb_strategy",
        "gms.services.request-inbound-poll._ors_forward",
        "gms.services.request-inbound-poll._ors_start",
        "gms.services.request-inbound-poll._status_ttl_ms",
        "gms.services.request-inbound-nowhere._ors",
    ] {
        assert!(
            stderr.contains(key),
            "stderr does not name {key}:\n{stderr}"
        );
    }
}
