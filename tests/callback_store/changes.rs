//! Expiry, the state machine through the store, state counts (§4, §6.1, §7.2, §9).

use super::*;

pub(super) async fn expired_records_leave_no_index_entry(b: &Backend) {
    let cb = b.cb();
    let keeper = create(cb, plain(scheduled("ex", "keep", later(3600)))).await;
    let mut short = Vec::new();
    for i in 0..3 {
        let mut r = scheduled("ex", &format!("{i}"), later(3600));
        r.expires = now() + SignedDuration::from_millis(1500);
        r.bucket = Some(bucket_of(r.desired));
        r.lookup = vec![("CB_SUB".into(), format!("v{i}"))];
        r.options.push(("_token".into(), format!("t{i}")));
        short.push(create(cb, plain(r)).await);
    }
    if let Some(first) = short.first() {
        done(
            update(
                cb,
                first,
                Change::Cancel {
                    reason: CANCELLED.into(),
                },
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for r in &short {
        assert_eq!(cb.get("ex", r.id).await.unwrap(), None, "gone for readers");
    }
    let mut purged = 0;
    for _ in 0..10 {
        let n = cb.purge_expired("ex", 2).await.unwrap();
        purged += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(purged, 3);
    assert_eq!(counts(cb, "ex").await, vec![(State::Scheduled, 1)]);
    assert_eq!(
        cb.booked("ex", &[short[1].bucket.unwrap()]).await.unwrap(),
        vec![0]
    );
    let all = Query::new(vec![], Operand::And, 100);
    assert_eq!(ids(cb, &["ex"], all).await, vec![keeper.id]);
    // On a single Redis, look at the keys themselves: only the keeper's entries are left.
    let p = &b.prefix;
    if let Some(index) = b.cli(&["ZCARD", &format!("{p}ci{{cb:ex}}")]) {
        assert_eq!(index, "2", "its state and customer number");
        for (kind, left) in [("cd", "1"), ("ce", "1")] {
            let key = format!("{p}{kind}{{cb:ex}}");
            assert_eq!(b.cli(&["ZCARD", &key]).unwrap(), left, "{key}");
        }
        let options = b.cli(&["HLEN", &format!("{p}co{{cb:ex}}")]).unwrap();
        assert_eq!(options, "2", "one shared list and its count");
        let counts = b.cli(&["HGETALL", &format!("{p}cc{{cb:ex}}")]).unwrap();
        assert_eq!(
            counts.split_whitespace().collect::<Vec<_>>(),
            vec!["nS", "1"]
        );
        for r in &short {
            let key = format!("{p}cr{{cb:ex}}{}", r.id.simple());
            assert_eq!(b.cli(&["EXISTS", &key]).unwrap(), "0");
        }
        let keep = format!("{p}cr{{cb:ex}}{}", keeper.id.simple());
        let ttl: i64 = b.cli(&["PTTL", &keep]).unwrap().parse().unwrap();
        assert!(ttl > 86_400_000, "kept past its expiration: {ttl}");
    }
}

pub(super) async fn changes_follow_the_state_machine(b: &Backend) {
    let cb = b.cb();
    let r = create(cb, plain(scheduled("sm", "1", later(3600)))).await;
    let report = |state, reason: Option<&str>| Change::Report {
        state,
        reason: reason.map(str::to_string),
    };
    assert_eq!(
        refusal(update(cb, &r, report(State::Queued, None)).await),
        Rejection::InvalidState,
        "never submitted"
    );
    let cancel = || Change::Cancel {
        reason: CANCELLED.into(),
    };
    let c = done(update(cb, &r, cancel()).await);
    assert_eq!(
        (c.state, c.reason.as_deref()),
        (State::Completed, Some(CANCELLED))
    );
    assert_eq!(c.version, r.version + 1);
    match update(cb, &r, cancel()).await {
        Updated::Refused(Rejection::InvalidState, now) => assert_eq!(now, c),
        other => panic!("{other:?}"),
    }
    let ghost = Update {
        change: Some(cancel()),
        ..Update::default()
    };
    assert_eq!(
        cb.update("sm", Uuid::new_v4(), &ghost).await.unwrap(),
        Updated::NotFound
    );
    assert_eq!(
        cb.update("other", r.id, &ghost).await.unwrap(),
        Updated::NotFound,
        "an id of another service"
    );

    // Immediate: submitted, then ORS's reports up to COMPLETED.
    let imm = create(
        cb,
        plain(scheduled("sm", "2", now()).immediate("n1", later(30))),
    )
    .await;
    let mut cur = done(
        update(
            cb,
            &imm,
            Change::Submitted {
                node: "n1".into(),
                ors: session(1),
            },
        )
        .await,
    );
    assert_eq!(cur.ors, Some(session(1)));
    for (state, reason) in [
        (State::Routing, None),
        (State::Processing, None),
        (State::Completed, Some("AGENT_CONNECTED")),
    ] {
        cur = done(update(cb, &cur, report(state, reason)).await);
    }
    assert_eq!(cur.reason.as_deref(), Some("AGENT_CONNECTED"));

    // Cancelled while being submitted: the submitter's result is refused.
    let imm = create(
        cb,
        plain(scheduled("sm", "3", now()).immediate("n1", later(30))),
    )
    .await;
    done(update(cb, &imm, cancel()).await);
    let late = Change::Submitted {
        node: "n1".into(),
        ors: session(2),
    };
    assert_eq!(
        refusal(update(cb, &imm, late).await),
        Rejection::InvalidState
    );

    // Keys only, with the record's other fields kept.
    let r = create(cb, plain(scheduled("sm", "4", later(3600)))).await;
    let edit = Update {
        change: None,
        lookup: vec![],
        props: vec![("first".into(), Some("Ann".into()))],
    };
    let edited = done(cb.update("sm", r.id, &edit).await.unwrap());
    assert_eq!(edited.prop("first"), Some("Ann"));
    assert_eq!(edited.options, r.options);
    assert_eq!(cb.get("sm", r.id).await.unwrap(), Some(edited));
}

pub(super) async fn state_counts_give_the_watermarks(b: &Backend) {
    let cb = b.cb();
    for i in 0..3 {
        let r = create(
            cb,
            plain(scheduled("wa", &format!("{i}"), now()).immediate("n", later(30))),
        )
        .await;
        if i > 0 {
            let q = done(
                update(
                    cb,
                    &r,
                    Change::Submitted {
                        node: "n".into(),
                        ors: session(i),
                    },
                )
                .await,
            );
            if i == 2 {
                done(
                    update(
                        cb,
                        &q,
                        Change::Report {
                            state: State::Paused,
                            reason: None,
                        },
                    )
                    .await,
                );
            }
        }
    }
    create(cb, plain(scheduled("wb", "9", later(3600)))).await;
    let c = cb.state_counts(&["wa", "wb", "none"]).await.unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(
        (
            c[0].of(State::Submitting),
            c[0].of(State::Queued),
            c[0].of(State::Paused)
        ),
        (1, 1, 1)
    );
    assert_eq!(c[0].watermark(), 2, "QUEUED, ROUTING, PROCESSING, PAUSED");
    assert_eq!((c[1].of(State::Scheduled), c[1].watermark()), (1, 0));
    assert_eq!(c[2].counts, [0; 7]);
}
