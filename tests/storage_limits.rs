//! Anonymous storage cannot fill memory (issue 15 item 3): the store's byte budget
//! (`gms.limits.max_store_bytes`: 507, nothing half-written, a gauge of bytes in use), the
//! per-client-address rates on writes and upload bytes (on by default), and the TTL cap of data
//! stored without a `gms_user` (`gms.limits.max_anonymous_ttl`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

const FILE_BYTES: usize = 200_000;

fn upload(gw: &Gateway, ttl: &str) -> Resp {
    let mp = Multipart::new().file("pic", "p.jpg", "image/jpeg", &fake_jpeg(FILE_BYTES));
    post_multipart(&gw.storage_url(ttl), &mp, &[])
}

/// The value of one sample line in a Prometheus scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len()..].trim().parse().ok())
}

#[test]
fn a_memory_store_over_its_byte_budget_answers_507_and_writes_nothing() {
    let port = free_port();
    // Its own memory store (the budget is the memory store's), small bodies, no rates.
    let gw = Gateway::start(&format!(
        "storage: {{backend: memory}}\nmetrics_listen: \"127.0.0.1:{port}\"\n\
         limits: {{max_body_bytes: 262144, max_store_bytes: 1048576, create_rate_per_ip: 0, \
         upload_bytes_per_ip_per_s: 0}}\n{STD_GMS}"
    ));
    let (stored, refused) = until_refused(10, |_| upload(&gw, "600"));
    let ids: Vec<String> = stored
        .iter()
        .map(|v| str_field(v, "id").to_string())
        .collect();
    let r = refused.expect("ten 200 KB uploads fit in a 1 MiB budget");
    let e = assert_error(&r, 507);
    assert_eq!(e["exception"], "InsufficientStorageException");
    assert!(
        (4..=5).contains(&ids.len()),
        "{} uploads of 200 KB passed a 1 MiB budget",
        ids.len()
    );
    // What was stored is whole and readable.
    for id in &ids {
        let b = get(&gw.binary_url(id, "pic"), &[]);
        assert_eq!(b.body.len(), FILE_BYTES);
    }
    // A create with user data is refused the same way, and holds no number: SOLO has one,
    // and a create without data takes it next.
    let mp = Multipart::new()
        .text("_phone_number", "555")
        .text("_resource_group", "SOLO")
        .file("pic", "p.jpg", "image/jpeg", &fake_jpeg(FILE_BYTES));
    let r = post_multipart(&gw.service_url("request-interaction"), &mp, &[]);
    assert_error(&r, 507);
    gw.create_ok(
        "request-interaction",
        &[("_phone_number", "555"), ("_resource_group", "SOLO")],
    );

    // The gauge shows the bytes in use and the budget (recounted every 5 s).
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let scrape = get(&metrics, &[]).text();
        let used = sample(&scrape, "gms_store_data_bytes").unwrap_or(0.0);
        let limit = sample(&scrape, "gms_store_data_bytes_limit").unwrap_or(0.0);
        if used >= (ids.len() * FILE_BYTES) as f64 {
            assert!(used <= 1_048_576.0, "{used}");
            assert_eq!(limit, 1_048_576.0);
            break;
        }
        assert!(Instant::now() < deadline, "no data bytes gauge:\n{scrape}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A delete gives its bytes back: the next upload fits.
    ok_json(&delete(&gw.storage_url(&ids[0]), &[]));
    ok_json(&upload(&gw, "600"));
}

#[test]
fn anonymous_data_lives_at_most_max_anonymous_ttl() {
    let gw = Gateway::start(&format!("limits: {{max_anonymous_ttl: 1}}\n{STD_GMS}"));
    let anon = ok_json(&post_form(&gw.storage_url("86400"), &[("k", "v")], &[]));
    let anon = str_field(&anon, "id").to_string();
    let bob = [("gms_user", "bob")];
    let owned = ok_json(&post_form(&gw.storage_url("86400"), &[("k", "v")], &bob));
    let owned = str_field(&owned, "id").to_string();
    let made = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "555"),
            ("_ttl", "60"),
            ("first_name", "Ann"),
        ],
    );
    // Bounded: 1 s TTL, checked every 100 ms for at most 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&gw.storage_url(&anon), &[]).status == 200 {
        assert!(
            Instant::now() < deadline,
            "anonymous data outlived 1 s by far"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_error(&get(&gw.storage_url(&anon), &[]), 404);
    ok_json(&get(&gw.storage_url(&owned), &bob));
    // The anonymous service's user data went too; the reservation (60 s) did not.
    let m = gw.match_ok(&[
        ("_access_number", str_field(&made, "_access_number")),
        ("_return_user_data", "true"),
    ]);
    assert_eq!(m["_id"], made["_id"]);
    assert!(m.get("first_name").is_none(), "{m}");
}

#[test]
fn storage_writes_share_the_create_rate_and_uploads_have_a_byte_rate() {
    let gw = Gateway::start(&format!(
        "limits: {{create_rate_per_ip: 3, upload_bytes_per_ip_per_s: 0}}\n{STD_GMS}"
    ));
    // Creates and storage writes count together: within a one-second window only three
    // pass. Bounded: 200 tries, each a few milliseconds.
    let (_, refused) = until_refused(200, |i| {
        if i % 2 == 0 {
            post_form(&gw.storage_url("30"), &[("k", "v")], &[])
        } else {
            gw.create(
                "request-interaction",
                &[("_phone_number", "555"), ("_provide_code", "true")],
            )
        }
    });
    let r = refused.expect("no 429 within 200 writes");
    assert_eq!(
        assert_error(&r, 429)["exception"],
        "TooManyRequestsException"
    );
    assert_eq!(r.header("retry-after"), Some("1"));

    let gw = Gateway::start(&format!(
        "limits: {{max_body_bytes: 262144, create_rate_per_ip: 0, \
         upload_bytes_per_ip_per_s: 400000}}\n{STD_GMS}"
    ));
    // Two 200 KB uploads a second pass, a third in the same second does not.
    let (_, refused) = until_refused(20, |_| upload(&gw, "30"));
    let r = refused.expect("no 429 within 20 uploads of 200 KB at 400 KB/s");
    assert_eq!(
        assert_error(&r, 429)["exception"],
        "TooManyRequestsException"
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    // Reads are not uploads.
    assert_eq!(
        get(&gw.url("/genesys/1/admin/node/health"), &[]).status,
        200
    );
}

/// Upload bytes are counted as the body arrives: a client over its rate gets the 429 before the
/// rest of its body is even sent (a body the gateway still waited for would end in a 408).
#[test]
fn an_upload_over_the_byte_rate_is_refused_before_its_body_has_arrived() {
    let gw = Gateway::start(&format!(
        "limits: {{max_body_bytes: 4096, create_rate_per_ip: 0, upload_bytes_per_ip_per_s: 4096}}\n\
         connections: {{body_timeout_ms: 1000}}\n{STD_GMS}"
    ));
    let body = format!("a={}", "x".repeat(4000));
    let mut partial = format!(
        "POST /genesys/1/storage/60 HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        gw.host(),
        body.len()
    )
    .into_bytes();
    partial.extend_from_slice(&body.as_bytes()[..200]);
    // A whole body spends nearly all of one second's bytes; the next 200 bytes in the same
    // window pass the rate. A try whose window turns in between waits for the body (408):
    // the next try, at most 10.
    let refused = (0..10).find_map(|_| {
        let _ = post_raw(
            &gw.storage_url("60"),
            "application/x-www-form-urlencoded",
            body.as_bytes(),
            &[],
        );
        let (status, raw) = raw_request(gw.port(), &partial);
        (status == 429).then_some(raw)
    });
    let raw = refused.expect("no partial body refused in 10 tries");
    let r = parse_response(&raw).expect("a response");
    assert_eq!(
        assert_error(&r, 429)["exception"],
        "TooManyRequestsException"
    );
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[test]
fn the_per_address_write_rate_is_on_by_default() {
    let gw = Gateway::start(STD_GMS);
    // 16 threads of storage writes from one address, at most 3,000 in all: far past the
    // default 100 a second long before the end.
    let sent = AtomicUsize::new(0);
    let refused: Mutex<Option<Resp>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while sent.fetch_add(1, Ordering::SeqCst) < 3000 {
                    if refused.lock().unwrap().is_some() {
                        break;
                    }
                    let r = post_form(&gw.storage_url("30"), &[("k", "v")], &[]);
                    if r.status == 429 {
                        *refused.lock().unwrap() = Some(r);
                        break;
                    }
                    ok_json(&r);
                }
            });
        }
    });
    let r = refused
        .into_inner()
        .unwrap()
        .expect("no 429 in 3,000 writes");
    assert_error(&r, 429);
    assert!(r.header("retry-after").is_some());
}
