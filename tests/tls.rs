//! TLS: HTTPS listeners (HTTP/1.1 and HTTP/2 by ALPN), `https://` binary URLs, and
//! `https://` ORS nodes and web-tier upstreams verified against the `ca_file`.
//!
//! Certificates are made per test with `openssl` ([`TestCerts`]). Requests to the HTTPS
//! listener go through `curl --cacert` (a subprocess, bounded by `--max-time`), which verifies
//! the gateway's certificate and reports the HTTP version it spoke. One case curl 7.88 cannot
//! take: an HTTP/2 reply that comes while it is still uploading (it fails with error 92 when
//! the server then ends the stream); that one uses Pingora's own HTTP/2 client.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;

use common::*;
use serde_json::Value;

/// The HTTP versions a TLS listener offers, as curl flags and as curl's `%{http_version}`.
const VERSIONS: [(&str, &str); 2] = [("--http1.1", "1.1"), ("--http2", "2")];

/// A gateway with an HTTPS listener beside its plain one.
struct TlsGateway {
    gw: Gateway,
    tls_port: u16,
}

impl TlsGateway {
    /// `top` goes before the standard top-level keys (e.g. `ca_file: ...`); `gms` under `gms:`.
    fn start(certs: &TestCerts, top: &str, gms: &str) -> TlsGateway {
        let tls_port = free_port();
        let listener = format!(
            "tls_listen: [{{addr: \"127.0.0.1:{tls_port}\", cert: \"{}\", key: \"{}\"}}]\n",
            certs.cert.display(),
            certs.key.display()
        );
        let gw = Gateway::start_full(&format!("{top}{}", gateway_yaml(&(listener + gms))));
        TlsGateway { gw, tls_port }
    }

    /// `https://127.0.0.1:<tls port><path>`
    fn https(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port)
    }
}

/// `ca_file: <ca>` for the top of a config file.
fn ca_file(ca: &Path) -> String {
    format!("ca_file: \"{}\"\n", ca.display())
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// One request with curl trusting `ca`, speaking `version` (a [`VERSIONS`] flag); `body` is
/// `(content_type, bytes)`. Returns the response and the HTTP version curl used.
fn curl(
    ca: &Path,
    version: &str,
    method: &str,
    url: &str,
    body: Option<(&str, &[u8])>,
    dir: &Path,
) -> (Resp, String) {
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    let head_file = dir.join(format!("curl-{n}.head"));
    let body_file = dir.join(format!("curl-{n}.body"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", version, "-X", method])
        .arg("--cacert")
        .arg(ca)
        .arg("-D")
        .arg(&head_file)
        .arg("-o")
        .arg(&body_file)
        .args(["-w", "%{http_version}"]);
    if let Some((content_type, bytes)) = body {
        let req_file = dir.join(format!("curl-{n}.req"));
        fs::write(&req_file, bytes).expect("write request body");
        cmd.args(["-H", &format!("Content-Type: {content_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", req_file.display()));
    }
    let out = cmd
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl (scripts/deps installs it)");
    assert!(
        out.status.success(),
        "curl {method} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = fs::read_to_string(&head_file).expect("curl header file");
    // After a `100 Continue` the final response is the last block.
    let last = head
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or("");
    let mut lines = last.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let resp = Resp {
        status,
        headers,
        body: fs::read(&body_file).unwrap_or_default(),
    };
    (resp, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A POST over HTTP/2 with Pingora's client (hyperium h2), trusting `ca`, that reads the reply
/// even when the server answers before taking the whole body: the body goes out in 16 KiB
/// pieces until one cannot (flow control, or the stream ended), then the reply is read.
fn h2_post(ca: &Path, port: u16, path: &str, content_type: &str, body: &[u8]) -> Resp {
    const STEP: Duration = Duration::from_secs(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut options = ConnectorOptions::new(1);
        options.ca_file = Some(ca.display().to_string());
        let connector = Connector::new(Some(options));
        let mut peer = HttpPeer::new(format!("127.0.0.1:{port}"), true, "127.0.0.1".into());
        peer.options.set_http_version(2, 2);
        peer.options.connection_timeout = Some(STEP);
        peer.options.read_timeout = Some(STEP);
        let (mut session, _) = tokio::time::timeout(STEP, connector.get_http_session(&peer))
            .await
            .expect("connect in time")
            .expect("HTTP/2 connection");
        let mut req = RequestHeader::build("POST", path.as_bytes(), None).expect("request");
        req.insert_header("Host", format!("127.0.0.1:{port}"))
            .expect("host");
        req.insert_header("Content-Type", content_type)
            .expect("content type");
        req.insert_header("Content-Length", body.len().to_string())
            .expect("content length");
        session
            .write_request_header(Box::new(req))
            .await
            .expect("request header");
        let pieces: Vec<&[u8]> = body.chunks(16 * 1024).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            let sent = tokio::time::timeout(
                Duration::from_millis(500),
                session.write_request_body(Bytes::copy_from_slice(piece), last),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
        session
            .read_response_header()
            .await
            .expect("response header");
        let h = session.response_header().expect("response header").clone();
        let mut data = Vec::new();
        while let Some(chunk) = session.read_response_body().await.expect("response body") {
            data.extend_from_slice(&chunk);
        }
        Resp {
            status: h.status.as_u16(),
            headers: h
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: data,
        }
    })
}

fn form(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    (
        "application/x-www-form-urlencoded".into(),
        form_encode(fields).into_bytes(),
    )
}

#[test]
fn the_api_answers_over_https_with_http1_and_http2() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let gw = TlsGateway::start(&certs, "", STD_GMS);
    let url = gw.https("/genesys/1/service/request-interaction");
    for (flag, expected) in VERSIONS {
        let (ct, body) = form(&[("_phone_number", "5551234567"), ("first_name", "Ann")]);
        let (r, version) = curl(
            &certs.ca,
            flag,
            "POST",
            &url,
            Some((&ct, &body)),
            dir.path(),
        );
        assert_eq!(version, expected, "{flag}: curl spoke HTTP/{version}");
        let v = ok_json(&r);
        assert!(DNIS.contains(&str_field(&v, "_access_number")), "{v}");
        assert!(is_uuid_v4(str_field(&v, "_id")), "{v}");
        // HTTP/2 forbids connection-specific headers (RFC 9113 8.2.2).
        if expected == "2" {
            assert_eq!(r.header("connection"), None, "{:?}", r.headers);
        }
        // An error reply is the same JSON on both versions.
        let (r, _) = curl(
            &certs.ca,
            flag,
            "POST",
            &gw.https("/genesys/1/service/nope"),
            None,
            dir.path(),
        );
        assert_error(&r, 404);
    }
}

#[test]
fn multipart_over_http2_stores_a_file_with_an_https_binary_url() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let gw = TlsGateway::start(&certs, "", STD_GMS);
    let picture = fake_jpeg(200_000);
    let (ct, body) = Multipart::new()
        .text("name", "Ann")
        .file("picture", "me.jpg", "image/jpeg", &picture)
        .build();
    let (r, version) = curl(
        &certs.ca,
        "--http2",
        "POST",
        &gw.https("/genesys/1/storage/60"),
        Some((&ct, &body)),
        dir.path(),
    );
    assert_eq!(version, "2");
    let id = str_field(&ok_json(&r), "id").to_string();

    // The binary URL takes the scheme and authority of the request that reads the record.
    let (r, _) = curl(
        &certs.ca,
        "--http2",
        "GET",
        &gw.https(&format!("/genesys/1/storage/{id}")),
        None,
        dir.path(),
    );
    let v = ok_json(&r);
    assert_eq!(v["name"], "Ann");
    let https_url = str_field(&v, "picture").to_string();
    assert_eq!(
        https_url,
        gw.https(&format!("/genesys/1/storage/binary/{id}/picture"))
    );
    let plain = ok_json(&get(&gw.gw.storage_url(&id), &[]));
    assert_eq!(
        str_field(&plain, "picture"),
        gw.gw
            .url(&format!("/genesys/1/storage/binary/{id}/picture"))
    );

    let (r, _) = curl(&certs.ca, "--http2", "GET", &https_url, None, dir.path());
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "image/jpeg");
    assert_eq!(r.body, picture, "the file came back changed over HTTP/2");
}

#[test]
fn an_oversized_body_over_http2_is_413_json() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let gms = format!("limits: {{max_body_bytes: 1000}}\n{STD_GMS}");
    let gw = TlsGateway::start(&certs, "", &gms);
    let path = "/genesys/1/service/request-interaction";
    let url = gw.https(path);
    // Beyond the 64 KiB flow-control window: the reply comes while the client still sends.
    let big = "x".repeat(200_000);
    let (ct, body) = form(&[("_phone_number", "5551234567"), ("first_name", &big)]);
    let r = h2_post(&certs.ca, gw.tls_port, path, &ct, &body);
    assert_error(&r, 413);
    // Not with curl: curl 7.88 reports the stream reset that follows an early 413 as error 92
    // instead of the reply, intermittently even for a 1.1 KB body (twice in fresh-clone CI
    // runs); see docs/tls.md. A normal create over h2 with curl still works:
    let (ct, body) = form(&[("_phone_number", "5551234567"), ("first_name", "Ann")]);
    let (r, _) = curl(
        &certs.ca,
        "--http2",
        "POST",
        &url,
        Some((&ct, &body)),
        dir.path(),
    );
    ok_json(&r);
}

/// The gms block of one ORS service on `node`.
fn ors_service(node: &str) -> String {
    format!(
        "ors: {{max_ors_request_attempts: 2, connect_timeout_ms: 1000, socket_timeout_ms: 2000}}\n\
         services:\n  request-inbound-poll:\n    _type: ors\n    \
         _service: \"http://scxml.example.com/poll.scxml\"\n    _ors: \"{node}\"\n"
    )
}

/// The sim's logged requests whose path starts with `prefix`.
fn logged(sim: &OrsSim, prefix: &str) -> usize {
    let log = sim.log();
    let entries = log.as_array().expect("/sim/log is an array");
    entries
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
        .count()
}

#[test]
fn an_https_ors_node_is_verified_against_the_ca_file() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let sim = OrsSim::start_tls(1, &certs);
    assert!(sim.url(0).starts_with("https://"));
    let gw = TlsGateway::start(&certs, &ca_file(&certs.ca), &ors_service(&sim.url(0)));
    for (flag, _) in VERSIONS {
        let (ct, body) = form(&[("_phone_number", "5551234567"), ("first_name", "Ann")]);
        let (r, _) = curl(
            &certs.ca,
            flag,
            "POST",
            &gw.https("/genesys/1/service/request-inbound-poll"),
            Some((&ct, &body)),
            dir.path(),
        );
        let id = str_field(&ok_json(&r), "_id").to_string();
        let (r, _) = curl(
            &certs.ca,
            flag,
            "POST",
            &gw.https(&format!("/genesys/1/service/{id}/status")),
            None,
            dir.path(),
        );
        let v = ok_json(&r);
        assert_eq!(v["status"], "waiting-for-agent", "{v}");
    }
    assert_eq!(logged(&sim, "/scxml/session/start"), 2);
}

#[test]
fn an_https_ors_node_that_fails_verification_is_502_json() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let other = TestCerts::make(&dir.file("other"));
    let sim = OrsSim::start_tls(1, &certs);
    // A CA that did not sign the node's certificate, then the system's roots (no ca_file).
    for top in [ca_file(&other.ca), String::new()] {
        let gw = Gateway::start_full(&format!("{top}{}", gateway_yaml(&ors_service(&sim.url(0)))));
        let r = post_form(
            &gw.service_url("request-inbound-poll"),
            &[("first_name", "Ann")],
            &[],
        );
        let e = assert_error(&r, 502);
        assert_eq!(e["exception"], "OrsServiceException", "{e}");
        let message = e["message"].as_str().unwrap_or("");
        assert!(message.contains("cannot connect to ORS"), "{e}");
    }
    assert_eq!(
        logged(&sim, "/scxml/"),
        0,
        "a request got past the handshake"
    );
}

/// The gms block of a web tier on one upstream entry.
fn backend(upstream: &str) -> String {
    format!("backend: {{upstreams: [\"{upstream}\"]}}\n{STD_GMS}")
}

/// The echo of the sim's web-backend side.
fn echo(r: &Resp) -> Value {
    let v = ok_json(r);
    assert!(v["path"].is_string(), "not an echo: {v}");
    v
}

#[test]
fn an_https_backend_is_verified_against_the_ca_file() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let web = OrsSim::start_tls(1, &certs);
    let upstream = web.url(0);
    let gw = TlsGateway::start(&certs, &ca_file(&certs.ca), &backend(&upstream));

    let v = echo(&get(&gw.gw.url("/web/page?x=1"), &[]));
    assert_eq!(v["path"], "/web/page");
    assert_eq!(v["query"], "x=1");
    // HTTP/2 in front, HTTP/1.1 over TLS behind, the body intact.
    for (flag, expected) in VERSIONS {
        let (r, version) = curl(
            &certs.ca,
            flag,
            "POST",
            &gw.https("/web/form"),
            Some(("text/plain", b"hello over tls")),
            dir.path(),
        );
        assert_eq!(version, expected);
        let v = echo(&r);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["body"], "hello over tls", "{v}");
    }
}

#[test]
fn an_https_backend_that_fails_verification_is_502_json() {
    let dir = TempDir::new("tls");
    let certs = TestCerts::make(&dir.file("pki"));
    let other = TestCerts::make(&dir.file("other"));
    let web = OrsSim::start_tls(1, &certs);
    for top in [ca_file(&other.ca), String::new()] {
        let gw = Gateway::start_full(&format!("{top}{}", gateway_yaml(&backend(&web.url(0)))));
        let e = assert_error(&get(&gw.url("/web/page"), &[]), 502);
        assert_eq!(e["exception"], "BadGatewayException", "{e}");
    }
    assert_eq!(logged(&web, "/web/"), 0, "a request got past the handshake");
}
