//! Who may use the client API: optional credentials (`gms.api_auth`) and the per-client-IP
//! rate limit on creates (`gms.limits.create_rate_per_ip`).

mod common;

use common::*;

const KEY: &str = "test-key-0123456789";

fn with_auth() -> Gateway {
    Gateway::start(&format!(
        "api_auth: {{header: X-App-Key, keys: ['{KEY}'], users: {{app: 's3cret'}}}}\n\
         admin: {{user: admin, password: pw}}\n{STD_GMS}"
    ))
}

#[test]
fn api_auth_admits_a_key_or_a_user_and_refuses_the_rest_with_401_json() {
    let gw = with_auth();
    let fields = [("_phone_number", "555")];
    let url = gw.service_url("request-interaction");
    ok_json(&post_form(&url, &fields, &[("X-App-Key", KEY)]));
    // app:s3cret
    ok_json(&post_form(
        &url,
        &fields,
        &[("Authorization", "Basic YXBwOnMzY3JldA==")],
    ));
    for bad in [
        vec![],
        vec![("X-App-Key", "test-key-0123456780")],
        vec![("Authorization", "Basic YXBwOndyb25n")],
        // The admin's credentials are not a client's.
        vec![("Authorization", "Basic YWRtaW46cHc=")],
    ] {
        let r = post_form(&url, &fields, &bad);
        let v = assert_error(&r, 401);
        assert_eq!(v["exception"], "UnauthorizedException");
    }
    // Storage is covered too.
    assert_error(
        &get(&gw.storage_url("00000000-0000-4000-8000-000000000000"), &[]),
        401,
    );
    // Health stays open for load balancers; the admin API keeps its own credentials.
    assert_eq!(
        get(&gw.url("/genesys/1/admin/node/health"), &[]).status,
        200
    );
    assert_eq!(
        get(
            &gw.url("/genesys/1/admin/node/status"),
            &[("Authorization", "Basic YWRtaW46cHc=")]
        )
        .status,
        200
    );
}

#[test]
fn creates_over_the_per_ip_rate_get_429_until_the_window_turns() {
    let gw = Gateway::start(&format!("limits: {{create_rate_per_ip: 2}}\n{STD_GMS}"));
    let start = std::time::Instant::now();
    let mut ok = 0;
    let mut refused = None;
    // Fast creates from one address: within a one-second window only two may pass. Bounded:
    // 200 tries, each a few milliseconds.
    for _ in 0..200 {
        let r = gw.create(
            "request-interaction",
            &[("_phone_number", "555"), ("_provide_code", "true")],
        );
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        ok_json(&r);
        ok += 1;
    }
    let r = refused.expect("no 429 within 200 creates");
    let v = assert_error(&r, 429);
    assert_eq!(v["exception"], "TooManyRequestsException");
    assert_eq!(r.header("retry-after"), Some("1"));
    // At most two per one-second window that the loop spanned.
    let windows = start.elapsed().as_secs() + 2;
    assert!(
        ok <= 2 * windows as usize,
        "{ok} creates passed in {windows} windows"
    );
    // The limit is per window: creates pass again once it turns (three tries, bounded).
    let mut created = false;
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = gw.create(
            "request-interaction",
            &[("_phone_number", "556"), ("_provide_code", "true")],
        );
        if r.status == 200 {
            created = true;
            break;
        }
        assert_error(&r, 429);
    }
    assert!(created, "no create passed after the window turned");
}

/// Issue 15, item 5: behind a trusted proxy (`gms.trusted_proxies`) the rate limit counts the
/// client its `X-Forwarded-For` names; from any other peer that header changes nothing.
#[test]
fn the_rate_limit_counts_the_client_a_trusted_proxy_names() {
    let create = |gw: &Gateway, client: &str| {
        post_form(
            &gw.service_url("request-interaction"),
            &[("_phone_number", "555"), ("_provide_code", "true")],
            &[("X-Forwarded-For", client)],
        )
    };
    // Creates "from" 192.0.2.1 until it is refused (bounded): then 192.0.2.2 still passes.
    let trusted = Gateway::start(&format!(
        "trusted_proxies: ['127.0.0.1']\nlimits: {{create_rate_per_ip: 2}}\n{STD_GMS}"
    ));
    let refused = (0..200).any(|_| create(&trusted, "192.0.2.1").status == 429);
    assert!(refused, "no 429 within 200 creates");
    ok_json(&create(&trusted, "192.0.2.2"));

    // Not trusted: every create counts against the peer, whatever the header says.
    let open = Gateway::start(&format!("limits: {{create_rate_per_ip: 2}}\n{STD_GMS}"));
    let mut clients = (0..200u32).map(|i| format!("198.51.100.{}", i % 250));
    let refused = clients.any(|c| create(&open, &c).status == 429);
    assert!(refused, "forged X-Forwarded-For values escaped the limit");
}
