//! Create and abort (§3.2, §3.3), reschedule (§5) and the bucket counts (§6.2).

use super::*;

pub(super) async fn create_checks_refuse_in_the_contract_order(b: &Backend) {
    let cb = b.cb();
    let desired = later(3600);
    let bucket = bucket_of(desired);
    let t0 = now();
    let hour = Duration::from_secs(3600);
    let minute = Duration::from_secs(60);
    let per_number = |max| ParameterThrottle {
        values: vec![(CUSTOMER_NUMBER.into(), "555".into())],
        max,
    };
    let counting = Limits {
        throttles: vec![
            Throttle {
                window: minute,
                max: 100,
            },
            Throttle {
                window: hour,
                max: 100,
            },
        ],
        per_parameter: Some(per_number(100)),
        ..Limits::default()
    };
    // One scheduled in the bucket, one immediate (active): both counted at t0.
    let mut r1 = scheduled("cb", "555", desired);
    r1.bucket = Some(bucket);
    r1.created = t0;
    create(
        cb,
        NewCallback {
            record: r1,
            capacity: Some(1),
            limits: counting.clone(),
        },
    )
    .await;
    let mut r2 = scheduled("cb", "555", later(60)).immediate("n1", later(30));
    r2.created = t0;
    create(
        cb,
        NewCallback {
            record: r2,
            capacity: None,
            limits: counting.clone(),
        },
    )
    .await;

    // A create that fails every check: each refusal in turn, as the limits relax.
    let mut x = scheduled("cb", "555", desired).immediate("n1", later(30));
    x.bucket = Some(bucket);
    x.created = t0;
    let mut limits = Limits {
        max_active: Some(1),
        throttles: vec![
            Throttle {
                window: minute,
                max: 2,
            },
            Throttle {
                window: hour,
                max: 2,
            },
        ],
        per_parameter: Some(per_number(2)),
        in_queue: Some(2),
    };
    let attempt = |capacity, limits: &Limits| NewCallback {
        record: x.clone(),
        capacity,
        limits: limits.clone(),
    };
    assert_eq!(
        refused(cb, attempt(Some(1), &limits)).await,
        CreateRefusal::BucketFull
    );
    assert_eq!(
        refused(cb, attempt(None, &limits)).await,
        CreateRefusal::QueueFull
    );
    limits.max_active = Some(2);
    assert_eq!(
        refused(cb, attempt(Some(2), &limits)).await,
        CreateRefusal::Throttled {
            index: 0,
            window: minute
        }
    );
    limits.throttles[0].max = 3;
    assert_eq!(
        refused(cb, attempt(None, &limits)).await,
        CreateRefusal::Throttled {
            index: 1,
            window: hour
        }
    );
    limits.throttles[1].max = 3;
    assert_eq!(
        refused(cb, attempt(None, &limits)).await,
        CreateRefusal::ParameterLimit {
            key: CUSTOMER_NUMBER.into(),
            value: "555".into()
        }
    );
    limits.per_parameter = Some(per_number(3));
    assert_eq!(
        refused(cb, attempt(None, &limits)).await,
        CreateRefusal::Duplicate
    );

    // Nothing of the refused creates was kept.
    assert_eq!(cb.booked("cb", &[bucket]).await.unwrap(), vec![1]);
    assert_eq!(
        counts(cb, "cb").await,
        vec![(State::Scheduled, 1), (State::Submitting, 1)]
    );
    let q = Query::new(vec![cn_is("555")], Operand::And, 100);
    assert_eq!(ids(cb, &["cb"], q.clone()).await.len(), 2);

    limits.in_queue = Some(3);
    let made = create(cb, attempt(Some(2), &limits)).await;
    assert_eq!(made.id, x.id);
    assert_eq!(cb.booked("cb", &[bucket]).await.unwrap(), vec![2]);
    assert_eq!(ids(cb, &["cb"], q).await.len(), 3);

    // `strict`: one open callback of the number is enough to refuse.
    let mut y = scheduled("cb", "555", later(7200));
    y.created = t0;
    let strict = Limits {
        in_queue: Some(1),
        ..Limits::default()
    };
    let strict_new = NewCallback {
        record: y.clone(),
        capacity: None,
        limits: strict,
    };
    assert_eq!(refused(cb, strict_new).await, CreateRefusal::Duplicate);
    // Another number is not a duplicate; a window that has passed no longer throttles.
    let mut z = scheduled("cb", "556", later(7200));
    z.created = t0 + SignedDuration::from_secs(61);
    let window_passed = Limits {
        throttles: vec![Throttle {
            window: minute,
            max: 1,
        }],
        in_queue: Some(1),
        ..Limits::default()
    };
    create(
        cb,
        NewCallback {
            record: z,
            capacity: None,
            limits: window_passed,
        },
    )
    .await;
}

pub(super) async fn an_abort_gives_back_every_count(b: &Backend) {
    let cb = b.cb();
    let bucket = bucket_of(now());
    let tight = Limits {
        max_active: Some(1),
        throttles: vec![Throttle {
            window: Duration::from_secs(60),
            max: 1,
        }],
        per_parameter: Some(ParameterThrottle {
            values: vec![
                (CUSTOMER_NUMBER.into(), "777".into()),
                ("first_name".into(), "Ann".into()),
            ],
            max: 1,
        }),
        in_queue: Some(1),
    };
    let immediate = || {
        let mut r = scheduled("ab", "777", now()).immediate("n1", later(30));
        r.bucket = Some(bucket);
        NewCallback {
            record: r,
            capacity: Some(1),
            limits: tight.clone(),
        }
    };
    let first = immediate();
    create(cb, first.clone()).await;
    assert_eq!(
        refused(cb, immediate()).await,
        CreateRefusal::BucketFull,
        "the first holds every count"
    );

    let mut stranger = first.clone();
    stranger.record.claim.as_mut().unwrap().node = "n2".into();
    assert!(
        !cb.abort(&stranger).await.unwrap(),
        "only its creator aborts it"
    );
    assert!(cb.abort(&first).await.unwrap());
    assert!(!cb.abort(&first).await.unwrap(), "already gone");
    assert_eq!(cb.get("ab", first.record.id).await.unwrap(), None);
    assert_eq!(cb.booked("ab", &[bucket]).await.unwrap(), vec![0]);
    assert_eq!(counts(cb, "ab").await, vec![]);
    let q = Query::new(vec![cn_is("777")], Operand::And, 10);
    assert!(ids(cb, &["ab"], q).await.is_empty());

    // Every limit is free again, so the same create passes; once ORS took it, no abort.
    let second = immediate();
    let made = create(cb, second.clone()).await;
    let queued = done(
        update(
            cb,
            &made,
            Change::Submitted {
                node: "n1".into(),
                ors: session(1),
            },
        )
        .await,
    );
    assert_eq!(queued.state, State::Queued);
    assert!(!cb.abort(&second).await.unwrap());
    assert_eq!(counts(cb, "ab").await, vec![(State::Queued, 1)]);
}

pub(super) async fn a_reschedule_moves_bucket_due_time_and_expiration(b: &Backend) {
    let cb = b.cb();
    // A minute into their buckets, so that a minute later is still the same bucket.
    let aligned = |secs| Timestamp::from_millisecond(bucket_of(later(secs)) + 60_000).unwrap();
    let (d1, d2, d3) = (aligned(3600), aligned(7200), aligned(10800));
    let (b1, b2, b3) = (bucket_of(d1), bucket_of(d2), bucket_of(d3));
    let in_bucket = |d: Timestamp| {
        let mut r = scheduled("rs", "1", d);
        r.bucket = Some(bucket_of(d));
        r
    };
    let r = create(cb, plain(in_bucket(d1))).await;
    let other = create(cb, plain(in_bucket(d2))).await;
    let to = |d: Timestamp, submit: Timestamp| Reschedule {
        desired: d,
        submit_at: submit,
        expires: d + SignedDuration::from_hours(48),
        bucket: Some(bucket_of(d)),
        capacity: Some(1),
    };
    let full = update(cb, &r, Change::Reschedule(to(d2, d2))).await;
    assert_eq!(refusal(full), Rejection::BucketFull);
    assert_eq!(cb.booked("rs", &[b1, b2, b3]).await.unwrap(), vec![1, 1, 0]);

    // To the third bucket, due at once.
    let moved = done(update(cb, &r, Change::Reschedule(to(d3, later(-1)))).await);
    assert_eq!(cb.booked("rs", &[b1, b2, b3]).await.unwrap(), vec![0, 1, 1]);
    let got = cb.get("rs", r.id).await.unwrap().unwrap();
    assert_eq!(got, moved);
    assert_eq!(got.desired.as_millisecond(), d3.as_millisecond());
    assert_eq!(
        got.expires.as_millisecond(),
        (d3 + SignedDuration::from_hours(48)).as_millisecond()
    );
    let claimed = cb.claim_due("rs", &claim("a", 60_000)).await.unwrap();
    assert_eq!(
        claimed.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r.id],
        "due at its new time; the other is not"
    );
    assert_eq!(
        refusal(update(cb, &claimed.records[0], Change::Reschedule(to(d1, d1))).await),
        Rejection::InvalidState,
        "being submitted: too late"
    );

    // Within its own (full) bucket a move takes no new slot.
    let same = d2 + SignedDuration::from_secs(60);
    assert_eq!(bucket_of(same), b2);
    done(update(cb, &other, Change::Reschedule(to(same, same))).await);
    assert_eq!(cb.booked("rs", &[b2]).await.unwrap(), vec![1]);
    // The index follows: the desired-time order is the new one.
    let q = Query::new(vec![cn_is("1")], Operand::And, 10);
    assert_eq!(ids(cb, &["rs"], q).await, vec![other.id, r.id]);
}

pub(super) async fn booked_counts_follow_states(b: &Backend) {
    let cb = b.cb();
    let d = later(3600);
    let bucket = bucket_of(d);
    let mut made = Vec::new();
    for i in 0..4 {
        let mut r = scheduled("bk", &format!("{i}"), d);
        r.bucket = Some(bucket);
        if i == 1 || i == 2 {
            r.submit_at = later(-1);
        }
        made.push(create(cb, plain(r)).await);
    }
    assert_eq!(cb.booked("bk", &[bucket]).await.unwrap(), vec![4]);
    // Cancelled: the slot is free again.
    done(
        update(
            cb,
            &made[0],
            Change::Cancel {
                reason: CANCELLED.into(),
            },
        )
        .await,
    );
    assert_eq!(cb.booked("bk", &[bucket]).await.unwrap(), vec![3]);
    let claimed = cb.claim_due("bk", &claim("a", 60_000)).await.unwrap();
    assert_eq!(claimed.records.len(), 2);
    let (handled, failed) = if claimed.records[0].id == made[1].id {
        (&claimed.records[0], &claimed.records[1])
    } else {
        (&claimed.records[1], &claimed.records[0])
    };
    // Handled by an agent: it stays booked.
    let queued = done(
        update(
            cb,
            handled,
            Change::Submitted {
                node: "a".into(),
                ors: session(1),
            },
        )
        .await,
    );
    done(
        update(
            cb,
            &queued,
            Change::Report {
                state: State::Completed,
                reason: Some("AGENT_CONNECTED".into()),
            },
        )
        .await,
    );
    assert_eq!(cb.booked("bk", &[bucket]).await.unwrap(), vec![3]);
    // Never submitted: released.
    let gone = done(
        update(
            cb,
            failed,
            Change::SubmitFailed {
                node: "a".into(),
                retry_at: later(10),
                max_attempts: 1,
            },
        )
        .await,
    );
    assert_eq!(gone.reason.as_deref(), Some(SUBMIT_FAILED));
    assert_eq!(
        cb.booked("bk", &[bucket, bucket + 300_000, bucket])
            .await
            .unwrap(),
        vec![2, 0, 2]
    );
    assert_eq!(cb.booked("bk", &[]).await.unwrap(), Vec::<u32>::new());
    assert_eq!(cb.booked("no-such", &[bucket]).await.unwrap(), vec![0]);
}

pub(super) async fn the_last_slot_of_a_bucket_goes_to_exactly_one_create(b: &Backend) {
    let d = later(3600);
    let bucket = bucket_of(d);
    let new = |i: usize| {
        let mut r = scheduled("slot", &format!("{i}"), d);
        r.bucket = Some(bucket);
        NewCallback {
            record: r,
            capacity: Some(5),
            limits: Limits::default(),
        }
    };
    for i in 0..3 {
        create(b.cb(), new(i)).await;
    }
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = b.nodes[i % 2].clone();
            let n = new(100 + i);
            tokio::spawn(async move { store.callbacks().create(&n).await })
        })
        .collect();
    let mut made = 0;
    for t in tasks {
        match t.await.unwrap().expect("store") {
            Ok(_) => made += 1,
            Err(refusal) => assert_eq!(refusal, CreateRefusal::BucketFull),
        }
    }
    assert_eq!(made, 2, "exactly the free slots");
    assert_eq!(b.cb().booked("slot", &[bucket]).await.unwrap(), vec![5]);
}
