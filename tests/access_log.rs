//! The access log (`gms.access_log`): one line per request, API and pass-through alike.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn every_request_gets_one_line_with_method_path_status_and_route() {
    // A free port number makes the name unique among concurrent test processes.
    let path = std::env::temp_dir().join(format!(
        "gms-access-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let gw = Gateway::start(&format!("access_log: \"{}\"\n{STD_GMS}", path.display()));
    let created = gw.create_ok("request-interaction", &[("_phone_number", "1")]);
    let id = str_field(&created, "_id");
    let missing_reply = get(&gw.url("/genesys/1/nothing?x=1"), &[]);
    assert_error(&missing_reply, 404);
    let request_id = missing_reply.header("x-request-id").expect("a request id");
    // The health polls of the harness are logged too; wait for our two lines (each is
    // written just after its reply went out, so neither is there at once for sure).
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let both = text.contains("/genesys/1/nothing")
            && text.contains("POST /genesys/1/service/request-interaction");
        if both || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&path);
    let create = text
        .lines()
        .find(|l| l.contains("POST /genesys/1/service/request-interaction"))
        .unwrap_or_else(|| panic!("no create line in:\n{text}"));
    assert!(create.contains("status=200"), "{create}");
    assert!(create.contains("route=service_create"), "{create}");
    assert!(create.contains("client=127.0.0.1:"), "{create}");
    assert!(
        create.contains(&format!("service=request-interaction id={id}")),
        "{create}"
    );
    let missing = text
        .lines()
        .find(|l| l.contains("GET /genesys/1/nothing?x=1"))
        .unwrap_or_else(|| panic!("no 404 line in:\n{text}"));
    assert!(missing.contains("status=404"), "{missing}");
    assert!(missing.contains("route=not_found"), "{missing}");
    assert!(
        missing.contains(&format!("request_id={request_id}")),
        "{missing}"
    );
}

#[test]
fn ors_and_pass_through_lines_name_the_upstream() {
    let ors = OrsSim::start(1);
    let path = std::env::temp_dir().join(format!(
        "gms-access-up-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let gw = Gateway::start(&format!(
        "access_log: \"{}\"\nbackend: {{upstreams: [\"{}\"]}}\n\
         services:\n  request-outbound-x: {{_type: ors, _service: \"http://s/x.scxml\", _ors: \"{}\"}}\n",
        path.display(),
        ors.addr(0),
        ors.url(0)
    ));
    let id = str_field(&gw.create_ok("request-outbound-x", &[("a", "1")]), "_id").to_string();
    assert_eq!(get(&gw.url("/some/page"), &[]).status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if (text.contains("GET /some/page") && text.contains("request-outbound-x"))
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&path);
    let create = text
        .lines()
        .find(|l| l.contains("POST /genesys/1/service/request-outbound-x"))
        .unwrap_or_else(|| panic!("no create line in:\n{text}"));
    assert!(
        create.contains(&format!(
            "service=request-outbound-x id={id} upstream={}",
            ors.url(0)
        )),
        "{create}"
    );
    let page = text
        .lines()
        .find(|l| l.contains("GET /some/page"))
        .unwrap_or_else(|| panic!("no pass-through line in:\n{text}"));
    assert!(
        page.contains(&format!("upstream={}", ors.addr(0))),
        "{page}"
    );
}
