//! Access numbers and codes: exclusive and coded reservations, allocation order, per-phone
//! limits, an exhausted pool, and concurrent creates.

use super::*;

#[test]
fn exclusive_number_gets_no_coded_reservation() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_resource_group", "SOLO")],
    );
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    let coded = gw.create(
        "request-interaction",
        &[
            ("_phone_number", "2"),
            ("_resource_group", "SOLO"),
            ("_provide_code", "true"),
        ],
    );
    assert_error(&coded, 503);
    let again = gw.create(
        "request-interaction",
        &[("_phone_number", "3"), ("_resource_group", "SOLO")],
    );
    assert_error(&again, 503);
}

#[test]
fn coded_number_is_not_handed_out_exclusively_and_codes_are_distinct() {
    let gw = gw();
    let mut codes = HashSet::new();
    for i in 0..20 {
        let v = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_resource_group", "SOLO"),
                ("_provide_code", "true"),
                ("_access_code_length", "2"),
            ],
        );
        assert_eq!(str_field(&v, "_access_number"), SOLO);
        let code = str_field(&v, "_access_code").to_string();
        assert!(is_digits(&code, 2), "{v}");
        assert!(codes.insert(code), "duplicate code at #{i}: {v}");
    }
    let excl = gw.create(
        "request-interaction",
        &[("_phone_number", "2"), ("_resource_group", "SOLO")],
    );
    assert_error(&excl, 503);
}

#[test]
fn round_robin_follows_configured_order_per_group() {
    let gw = gw();
    let next = |n: &str| {
        let i = DNIS.iter().position(|d| *d == n).expect("DNIS number");
        DNIS[(i + 1) % DNIS.len()].to_string()
    };
    let mut seq: Vec<String> = Vec::new();
    for _ in 0..9 {
        let v = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_allocation", "round-robin"),
            ],
        );
        seq.push(str_field(&v, "_access_number").to_string());
        // a round-robin allocation in another group does not disturb DNIS's order
        let s = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_allocation", "round-robin"),
                ("_resource_group", "SOLO"),
            ],
        );
        assert_eq!(str_field(&s, "_access_number"), SOLO);
    }
    for w in seq.windows(2) {
        assert_eq!(w[1], next(&w[0]), "round-robin order broken: {seq:?}");
    }
}

#[test]
fn a_phone_holds_at_most_its_configured_reservations_per_group() {
    check_reservations_per_phone(&[Gateway::start(&two_per_phone(STD_GMS))]);
}

#[test]
fn random_allocation_uses_more_than_one_number() {
    let gw = gw();
    let mut seen = HashSet::new();
    for _ in 0..60 {
        let v = gw.create_ok(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", "true")],
        );
        seen.insert(str_field(&v, "_access_number").to_string());
    }
    assert!(seen.len() >= 2, "60 random allocations all got {seen:?}");
}

#[test]
fn pool_exhausted_is_503() {
    let gw = gw();
    let mut nums = HashSet::new();
    for _ in 0..3 {
        let v = gw.create_ok("request-interaction", &[("_phone_number", "1")]);
        nums.insert(str_field(&v, "_access_number").to_string());
    }
    assert_eq!(nums.len(), 3, "three exclusive numbers: {nums:?}");
    assert_error(
        &gw.create("request-interaction", &[("_phone_number", "1")]),
        503,
    );
    assert_error(
        &gw.create(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", "true")],
        ),
        503,
    );
}

/// A group larger than the window of numbers a random reservation tries first (16 on Redis):
/// every number is still found before the group is called exhausted.
#[test]
fn a_large_group_is_used_to_its_last_number() {
    let numbers: Vec<String> = (0..40).map(|i| format!("\"80077700{i:02}\"")).collect();
    let gw = Gateway::start(&format!(
        "resources:\n  BIG: [{}]\nservices:\n  request-interaction: \
         {{_type: builtin, _service: request-interaction, _resource_group: BIG}}\n",
        numbers.join(", ")
    ));
    let mut seen = HashSet::new();
    for i in 0..40 {
        let v = gw.create_ok("request-interaction", &[("_phone_number", "1")]);
        assert!(
            seen.insert(str_field(&v, "_access_number").to_string()),
            "reservation {i} got a number already held: {v}"
        );
    }
    assert_error(
        &gw.create("request-interaction", &[("_phone_number", "1")]),
        503,
    );
}

#[test]
fn concurrent_coded_creates_get_distinct_number_code_pairs() {
    // 300 creates from one address as fast as 16 threads go: over the default write rate.
    let gw = Gateway::start(&format!("limits: {{create_rate_per_ip: 0}}\n{STD_GMS}"));
    const TOTAL: usize = 300;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Resp>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < TOTAL {
                    let r = gw.create(
                        "request-interaction",
                        &[
                            ("_phone_number", "1"),
                            ("_provide_code", "true"),
                            ("_access_code_length", "4"),
                            ("_ttl", "600"),
                        ],
                    );
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), TOTAL);
    let mut pairs = HashSet::new();
    let mut ids = HashSet::new();
    for r in &results {
        let v = ok_json(r);
        let n = str_field(&v, "_access_number").to_string();
        let c = str_field(&v, "_access_code").to_string();
        assert!(DNIS.contains(&n.as_str()) && is_digits(&c, 4), "{v}");
        assert!(pairs.insert((n, c)), "duplicate (number, code): {v}");
        assert!(
            ids.insert(str_field(&v, "_id").to_string()),
            "duplicate _id: {v}"
        );
    }
}

#[test]
fn concurrent_exclusive_creates_on_three_numbers_exactly_three_win() {
    let gw = gw();
    const TOTAL: usize = 40;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Resp>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < TOTAL {
                    let r = gw.create(
                        "request-interaction",
                        &[("_phone_number", "1"), ("_ttl", "600")],
                    );
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), TOTAL);
    let mut numbers = HashSet::new();
    let mut won = 0;
    for r in &results {
        if r.status == 200 {
            won += 1;
            let v = ok_json(r);
            assert!(v.get("_access_code").is_none(), "{v}");
            numbers.insert(str_field(&v, "_access_number").to_string());
        } else {
            assert_error(r, 503);
        }
    }
    assert_eq!(won, 3, "exactly the pool size wins");
    assert_eq!(numbers.len(), 3, "distinct numbers: {numbers:?}");
}
