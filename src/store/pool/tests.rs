//! The reservation rules: exclusive, coded, round robin, expiry, matching.

use super::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn req(numbers: &[&str], code_len: Option<u8>, allocation: Allocation) -> ReserveRequest {
    ReserveRequest {
        group: "G".into(),
        numbers: Arc::from(numbers.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        code: code_len.map(CodeSpace::all),
        allocation,
        phone: Some("555".into()),
        ttl: Duration::from_secs(30),
        per_phone: 0,
    }
}

#[test]
fn codes_pack_with_their_length() {
    assert_ne!(pack_code("0042"), pack_code("42"));
    assert_eq!(unpack_code(pack_code("0042").unwrap()), "0042");
    assert_eq!(pack_code("4a"), None);
    assert_eq!(pack_code(""), None);
    assert_eq!(pack_code("1234567890123"), None);
}

#[test]
fn exclusive_numbers_run_out_then_free_on_expiry() {
    let mut p = Pools::default();
    let now = Instant::now();
    let r = req(&["1", "2"], None, Allocation::Random);
    let a = p.reserve(&r, Uuid::new_v4(), now).unwrap();
    let b = p.reserve(&r, Uuid::new_v4(), now).unwrap();
    assert_ne!(a.number, b.number);
    assert!(a.code.is_none());
    assert!(matches!(
        p.reserve(&r, Uuid::new_v4(), now),
        Err(StoreError::Exhausted(_))
    ));
    let later = now + Duration::from_secs(31);
    assert!(p.reserve(&r, Uuid::new_v4(), later).is_ok());
}

#[test]
fn exclusive_and_coded_never_share_a_number() {
    let mut p = Pools::default();
    let now = Instant::now();
    p.reserve(
        &req(&["1"], Some(4), Allocation::Random),
        Uuid::new_v4(),
        now,
    )
    .unwrap();
    assert!(p
        .reserve(&req(&["1"], None, Allocation::Random), Uuid::new_v4(), now)
        .is_err());
    let mut p = Pools::default();
    p.reserve(&req(&["1"], None, Allocation::Random), Uuid::new_v4(), now)
        .unwrap();
    assert!(p
        .reserve(
            &req(&["1"], Some(4), Allocation::Random),
            Uuid::new_v4(),
            now
        )
        .is_err());
}

#[test]
fn coded_reservations_fill_the_whole_code_space_distinctly() {
    let mut p = Pools::default();
    let now = Instant::now();
    let r = req(&["1"], Some(2), Allocation::Random);
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let res = p.reserve(&r, Uuid::new_v4(), now).unwrap();
        assert!(seen.insert(res.code.unwrap()));
    }
    assert!(p.reserve(&r, Uuid::new_v4(), now).is_err());
}

#[test]
fn round_robin_cycles_in_configured_order() {
    let mut p = Pools::default();
    let now = Instant::now();
    let r = req(&["1", "2", "3"], Some(4), Allocation::RoundRobin);
    let got: Vec<String> = (0..6)
        .map(|_| p.reserve(&r, Uuid::new_v4(), now).unwrap().number)
        .collect();
    assert_eq!(got, ["1", "2", "3", "1", "2", "3"]);
}

#[test]
fn match_checks_code_and_phone_and_releases_once() {
    let mut p = Pools::default();
    let now = Instant::now();
    let svc = Uuid::new_v4();
    let res = p
        .reserve(&req(&["1"], Some(4), Allocation::Random), svc, now)
        .unwrap();
    let call = |code: Option<&str>, phone: Option<&str>| MatchRequest {
        number: "1".into(),
        code: code.map(str::to_string),
        phone: phone.map(str::to_string),
        max_failed: 0,
        require_code: true,
    };
    assert_eq!(p.take_match(&call(None, None), now), MatchOutcome::NoMatch);
    assert_eq!(
        p.take_match(&call(res.code.as_deref(), Some("666")), now),
        MatchOutcome::NoMatch
    );
    assert_eq!(
        p.take_match(&call(res.code.as_deref(), Some("555")), now),
        MatchOutcome::Matched(svc)
    );
    assert_eq!(
        p.take_match(&call(res.code.as_deref(), None), now),
        MatchOutcome::NoMatch
    );
}

#[test]
fn without_a_code_only_a_numbers_single_reservation_matches() {
    let mut p = Pools::default();
    let now = Instant::now();
    let call = |require_code| MatchRequest {
        number: "1".into(),
        code: None,
        phone: None,
        max_failed: 1,
        require_code,
    };
    let coded = req(&["1"], Some(4), Allocation::Random);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    p.reserve(&coded, a, now).unwrap();
    // The strict rule: a code is required (and a call without one is a failed match).
    assert_eq!(p.take_match(&call(true), now), MatchOutcome::NoMatch);
    let mut p = Pools::default();
    p.reserve(&coded, a, now).unwrap();
    let second = p.reserve(&coded, b, now).unwrap();
    // Two to choose from: nothing taken, nothing counted (the limit of one failure would
    // lock the number otherwise).
    for _ in 0..3 {
        assert_eq!(p.take_match(&call(false), now), MatchOutcome::Ambiguous);
    }
    let b_call = MatchRequest {
        code: second.code.clone(),
        ..call(false)
    };
    assert_eq!(p.take_released(&b_call, now).0, MatchOutcome::Matched(b));
    // One left: it matches without its code, and its code comes back for the record.
    let (outcome, code) = p.take_released(&call(false), now);
    assert_eq!(outcome, MatchOutcome::Matched(a));
    assert!(code.is_some());
    assert_eq!(p.take_match(&call(false), now), MatchOutcome::NoMatch);
    // A reservation without a phone matches whatever phone the caller names.
    let mut anonymous = req(&["2"], None, Allocation::Random);
    anonymous.phone = None;
    p.reserve(&anonymous, a, now).unwrap();
    let from = MatchRequest {
        number: "2".into(),
        phone: Some("5550100".into()),
        ..call(false)
    };
    assert_eq!(p.take_match(&from, now), MatchOutcome::Matched(a));
}

#[test]
fn failed_matches_lock_a_number_until_its_reservations_window_ends() {
    let mut p = Pools::default();
    let now = Instant::now();
    let svc = Uuid::new_v4();
    let r = req(&["1"], Some(4), Allocation::Random);
    let res = p.reserve(&r, svc, now).unwrap();
    let wrong = if res.code.as_deref() == Some("0000") {
        "0001"
    } else {
        "0000"
    };
    let call = |code: &str| MatchRequest {
        number: "1".into(),
        code: Some(code.to_string()),
        phone: None,
        max_failed: 3,
        require_code: false,
    };
    for _ in 0..3 {
        assert_eq!(p.take_match(&call(wrong), now), MatchOutcome::NoMatch);
    }
    // Full: the right code is refused too, until the reservation's TTL (30 s) is over.
    let right = res.code.clone().unwrap();
    let later = now + Duration::from_secs(10);
    assert_eq!(
        p.take_match(&call(&right), later),
        MatchOutcome::Locked(Duration::from_secs(20))
    );
    // The sweep keeps the window while it lasts, then drops the number.
    p.sweep(later, 10);
    assert!(p.numbers.contains_key("1"));
    let after = now + Duration::from_secs(31);
    p.sweep(after, 10);
    assert!(p.numbers.is_empty());
    // A number with no live reservation counts nothing; a number never reserved has no state.
    assert_eq!(p.take_match(&call(wrong), after), MatchOutcome::NoMatch);
    assert!(p.numbers.get("1").is_none_or(|s| s.failed.is_none()));
    let unknown = MatchRequest {
        number: "999".into(),
        ..call(wrong)
    };
    assert_eq!(p.take_match(&unknown, now), MatchOutcome::NoMatch);
    assert!(!p.numbers.contains_key("999"));
}

#[test]
fn release_only_frees_the_services_own_hold() {
    let mut p = Pools::default();
    let now = Instant::now();
    let a = Uuid::new_v4();
    let res = p
        .reserve(&req(&["1"], None, Allocation::Random), a, now)
        .unwrap();
    let r = ReservationRef {
        number: res.number,
        code: None,
    };
    p.release(Uuid::new_v4(), &r);
    assert_eq!(p.hold_count(), 1);
    p.release(a, &r);
    assert_eq!(p.hold_count(), 0);
}

#[test]
fn number_use_counts_live_holds_only() {
    let mut p = Pools::default();
    let now = Instant::now();
    let mut coded = req(&["1"], Some(4), Allocation::Random);
    for _ in 0..3 {
        p.reserve(&coded, Uuid::new_v4(), now).unwrap();
    }
    coded.ttl = Duration::from_secs(1);
    p.reserve(&coded, Uuid::new_v4(), now).unwrap();
    p.reserve(&req(&["2"], None, Allocation::Random), Uuid::new_v4(), now)
        .unwrap();
    let later = now + Duration::from_secs(2);
    assert_eq!(
        p.number_use("1", later),
        NumberUse {
            exclusive: false,
            coded: 3
        }
    );
    assert_eq!(
        p.number_use("2", later),
        NumberUse {
            exclusive: true,
            coded: 0
        }
    );
    assert_eq!(p.number_use("3", later), NumberUse::default());
    assert_eq!(
        p.number_use("2", now + Duration::from_secs(31)),
        NumberUse::default()
    );
}

fn limited(per_phone: u32) -> ReserveRequest {
    let mut r = req(&["1", "2", "3"], Some(4), Allocation::Random);
    r.per_phone = per_phone;
    r
}

fn refused(p: &mut Pools, r: &ReserveRequest, now: Instant) -> bool {
    matches!(
        p.reserve(r, Uuid::new_v4(), now),
        Err(StoreError::PhoneLimit(_))
    )
}

#[test]
fn a_phone_holds_at_most_its_limit_until_one_ends() {
    let mut p = Pools::default();
    let now = Instant::now();
    let r = limited(2);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let ra = p.reserve(&r, a, now).unwrap();
    let rb = p.reserve(&r, b, now).unwrap();
    assert!(refused(&mut p, &r, now));
    // Another phone, and the same phone in another group, have their own limits.
    let other_phone = ReserveRequest {
        phone: Some("777".into()),
        ..limited(2)
    };
    let other_group = ReserveRequest {
        group: "H".into(),
        ..limited(2)
    };
    p.reserve(&other_phone, Uuid::new_v4(), now).unwrap();
    p.reserve(&other_group, Uuid::new_v4(), now).unwrap();
    // A release frees a place.
    p.release(
        a,
        &ReservationRef {
            number: ra.number,
            code: ra.code,
        },
    );
    p.reserve(&r, Uuid::new_v4(), now).unwrap();
    assert!(refused(&mut p, &r, now));
    // So does a call that matches.
    let call = MatchRequest {
        number: rb.number,
        code: rb.code,
        phone: None,
        max_failed: 0,
        require_code: false,
    };
    assert_eq!(p.take_match(&call, now), MatchOutcome::Matched(b));
    p.reserve(&r, Uuid::new_v4(), now).unwrap();
    assert!(refused(&mut p, &r, now));
    // And expiry.
    let later = now + Duration::from_secs(31);
    p.reserve(&r, Uuid::new_v4(), later).unwrap();
    p.reserve(&r, Uuid::new_v4(), later).unwrap();
    assert!(refused(&mut p, &r, later));
}

#[test]
fn without_a_limit_nothing_is_counted() {
    let mut p = Pools::default();
    let now = Instant::now();
    for _ in 0..20 {
        p.reserve(&limited(0), Uuid::new_v4(), now).unwrap();
    }
    assert!(p.phones.is_empty());
    // Nor is a reservation made without a phone, under a limit.
    let anonymous = ReserveRequest {
        phone: None,
        ..limited(1)
    };
    for _ in 0..5 {
        p.reserve(&anonymous, Uuid::new_v4(), now).unwrap();
    }
    assert!(p.phones.is_empty());
}

#[test]
fn sweep_drops_the_phone_entries_of_ended_reservations() {
    let mut p = Pools::default();
    let now = Instant::now();
    for k in 0..10 {
        let r = ReserveRequest {
            phone: Some(format!("p{k}")),
            ..limited(1)
        };
        p.reserve(&r, Uuid::new_v4(), now).unwrap();
    }
    assert_eq!(p.phones.len(), 10);
    // Each pass looks at up to 3 phones and drops every one it sees (all ended).
    let later = now + Duration::from_secs(60);
    for _ in 0..10 {
        p.sweep(later, 3);
    }
    assert!(p.phones.is_empty());
}

#[test]
fn sweep_reclaims_expired_holds() {
    let mut p = Pools::default();
    let now = Instant::now();
    let r = req(&["1", "2", "3"], Some(4), Allocation::Random);
    for _ in 0..50 {
        p.reserve(&r, Uuid::new_v4(), now).unwrap();
    }
    let later = now + Duration::from_secs(60);
    for _ in 0..3 {
        p.sweep(later, 1);
    }
    assert_eq!(p.hold_count(), 0);
}
