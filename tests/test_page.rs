//! The service test page (`gms.test_page`): absent (404 JSON) by default; when on, served with
//! its content types and CSP, and clicked through in Debian's headless Chromium by
//! `tests/browser/test_page.mjs` (playwright-core, installed by `scripts/deps`): services,
//! a match, and callbacks (immediate and scheduled) on `ors-sim`'s callback strategy.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const PAGE: &str = "/genesys/1/admin/servicetest.html";
/// The browser script stops itself after 60 s; this is the backstop.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// `STD_GMS` with the page on, an ORS service (on `ors`) whose status can be polled and a
/// callback service on the same ORS.
/// The page's config: the lab browser on this host may match (`internal_networks`), as the IVR
/// would with its credentials.
fn page_gms(ors: &str) -> String {
    format!(
        "test_page: true\nstorage: {{backend: memory}}\ninternal_networks: ['127.0.0.0/8']\n{STD_GMS}  request-inbound-poll: {{_type: ors, _service: \"http://scxml.example.com/poll.scxml\", _ors: \"{ors}\"}}\n  callback-for-mobile: {{_type: ors, _service_type: callback, _service: \"http://scxml.example.com/callback.scxml\", _ors: \"{ors}\"}}\n"
    )
}

#[test]
fn the_page_is_an_unknown_path_unless_enabled() {
    let gw = Gateway::start(STD_GMS);
    // The error JSON without its request id, which is every reply's own.
    let error = |r: &Resp| {
        let mut v = assert_error(r, 404);
        v.as_object_mut().map(|o| o.remove("request_id"));
        v
    };
    let unknown = error(&get(&gw.url("/genesys/1/admin/nothing"), &[]));
    for path in [
        PAGE,
        "/genesys/1/admin/servicetest.js",
        "/GMS-web/gms/1/admin/servicetest.css",
    ] {
        let r = get(&gw.url(path), &[]);
        assert_eq!(error(&r), unknown, "{path} differs from an unknown path");
    }
}

#[test]
fn the_page_and_its_files_are_served_when_enabled() {
    let gw = Gateway::start(&page_gms("http://127.0.0.1:9"));
    for (path, content_type) in [
        (PAGE, "text/html"),
        ("/GMS-web/gms/1/admin/servicetest.html", "text/html"),
        ("/genesys/1/admin/servicetest.js", "text/javascript"),
        ("/genesys/1/admin/servicetest.css", "text/css"),
    ] {
        let r = get(&gw.url(path), &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.content_type().starts_with(content_type),
            "{path}: {}",
            r.content_type()
        );
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: CSP {csp:?}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let html = get(&gw.url(PAGE), &[]).text();
    assert!(
        html.contains(r#""name":"request-inbound-poll","type":"ors""#),
        "{html}"
    );
    assert!(
        html.contains(r#""name":"callback-for-mobile","type":"callback""#),
        "{html}"
    );
    // The ORS service's node stays on the server.
    assert!(!html.contains("127.0.0.1:9"));
    // Only GET: another method gets the unknown path's 404.
    assert_error(&post_empty(&gw.url(PAGE), &[]), 404);
}

#[test]
fn a_browser_creates_polls_matches_and_books_callbacks_through_the_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/test_page.mjs");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/deps (it installs Debian's chromium)"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "tests/browser/node_modules/playwright-core is missing: run scripts/deps (npm ci)"
    );
    // The callback strategy answers the start request; its states stay as the gateway sets
    // them (no state reports: no `gms_base`).
    let sim = OrsSim::start_args(1, &["--callback", r#"{"auto":false}"#]);
    let gw = Gateway::start(&page_gms(&sim.url(0)));
    let dir = TempDir::new("browser");
    let mut child = Command::new("node")
        .arg(&script)
        .arg(gw.base())
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(dir.file("stdout.log")).expect("stdout.log"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.file("stderr.log")).expect("stderr.log"),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): run scripts/deps (nodejs)"));
    // On SIGTERM Playwright closes the Chromium it launched; SIGKILL if node hangs.
    let status = wait_or_kill(&mut child, BROWSER_TIMEOUT, Some(Duration::from_secs(3)));
    let out = std::fs::read_to_string(dir.file("stdout.log")).unwrap_or_default();
    let err = std::fs::read_to_string(dir.file("stderr.log")).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "browser test {}\n--- stderr ---\n{err}\n--- stdout ---\n{out}\n--- gateway stderr ---\n{}",
        status.map_or(format!("killed after {BROWSER_TIMEOUT:?}"), |s| s
            .to_string()),
        gw.stderr()
    );
    assert!(out.contains("every step passed"), "{out}");
    // The immediate callback's cancel reached ORS.
    let log = sim.log().to_string();
    assert!(log.contains("/request/cancel"), "{log}");
}
