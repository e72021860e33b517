//! The scheduler's due list: claims, leases, retries, start-up recovery (§7.1).

use super::*;

pub(super) async fn two_nodes_claim_each_due_record_exactly_once(b: &Backend) {
    let mut all = HashSet::new();
    for i in 0..200 {
        all.insert(create(b.cb(), plain(due("sch", &format!("{i}")))).await.id);
    }
    let pass = |i: usize| {
        let store = b.nodes[i].clone();
        let node = format!("node-{i}");
        tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut req = claim(&node, 60_000);
            req.batch = 7;
            for _ in 0..200 {
                let c = store.callbacks().claim_due("sch", &req).await.unwrap();
                let empty = c.records.is_empty();
                mine.extend(c.records);
                if empty && !c.more {
                    break;
                }
            }
            (node, mine)
        })
    };
    let (a, b2) = (pass(0), pass(1));
    let (a, b2) = (a.await.unwrap(), b2.await.unwrap());
    let ids_a: HashSet<Uuid> = a.1.iter().map(|r| r.id).collect();
    let ids_b: HashSet<Uuid> = b2.1.iter().map(|r| r.id).collect();
    assert_eq!(ids_a.len() + ids_b.len(), 200, "no record claimed twice");
    assert!(ids_a.is_disjoint(&ids_b));
    assert_eq!(&ids_a | &ids_b, all);
    for (node, records) in [&a, &b2] {
        for (n, r) in records.iter().enumerate() {
            assert_eq!(r.claim.as_ref().unwrap().node, *node);
            assert_eq!(r.attempts, 1);
            done(
                update(
                    b.cb(),
                    r,
                    Change::Submitted {
                        node: node.clone(),
                        ors: session(n),
                    },
                )
                .await,
            );
        }
    }
    assert_eq!(counts(b.cb(), "sch").await, vec![(State::Queued, 200)]);
    let again = b
        .cb()
        .claim_due("sch", &claim("node-0", 60_000))
        .await
        .unwrap();
    assert!(again.records.is_empty() && !again.more);
}

pub(super) async fn a_claim_whose_lease_ran_out_is_taken_again(b: &Backend) {
    let (a, b2) = (b.node(0), b.node(1));
    let r = create(a, plain(due("lease", "1"))).await;
    let imm = create(
        a,
        plain(
            scheduled("lease", "2", later(60))
                .immediate("a", now() + SignedDuration::from_millis(1500)),
        ),
    )
    .await;
    let spent = create(a, plain(due("lease2", "3"))).await;
    let first = a.claim_due("lease", &claim("a", 1500)).await.unwrap();
    assert_eq!(first.records.len(), 1);
    assert_eq!(
        a.claim_due("lease2", &claim("a", 1500))
            .await
            .unwrap()
            .records
            .len(),
        1
    );
    assert!(b2
        .claim_due("lease", &claim("b", 1500))
        .await
        .unwrap()
        .records
        .is_empty());
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The claim ran out: taken again, one more attempt; the first node's result is refused.
    let second = b2.claim_due("lease", &claim("b", 60_000)).await.unwrap();
    assert_eq!(second.records.len(), 1);
    let again = &second.records[0];
    assert_eq!((again.id, again.attempts), (r.id, 2));
    assert_eq!(second.dropped, vec![imm.id], "its creator died: dropped");
    assert_eq!(b2.get("lease", imm.id).await.unwrap(), None);
    let late = Change::Submitted {
        node: "a".into(),
        ors: session(1),
    };
    assert_eq!(refusal(update(a, again, late).await), Rejection::NotClaimer);
    let queued = Change::Submitted {
        node: "b".into(),
        ors: session(2),
    };
    done(update(b2, again, queued).await);
    assert_eq!(counts(a, "lease").await, vec![(State::Queued, 1)]);

    // Out of attempts when its claim ran out: given up.
    let mut last = claim("b", 60_000);
    last.max_attempts = 1;
    let out = b2.claim_due("lease2", &last).await.unwrap();
    assert!(out.records.is_empty());
    assert_eq!(out.failed, vec![spent.id]);
    let gone = b2.get("lease2", spent.id).await.unwrap().unwrap();
    assert_eq!(
        (gone.state, gone.reason.as_deref()),
        (State::Completed, Some(SUBMIT_FAILED))
    );
}

pub(super) async fn failed_attempts_retry_then_give_up(b: &Backend) {
    let cb = b.cb();
    let mut r = due("retry", "1");
    r.bucket = Some(bucket_of(r.desired));
    let r = create(cb, plain(r)).await;
    let fail = |retry_at| Change::SubmitFailed {
        node: "a".into(),
        retry_at,
        max_attempts: 2,
    };
    let c = cb.claim_due("retry", &claim("a", 60_000)).await.unwrap();
    let back = done(update(cb, &c.records[0], fail(later(30))).await);
    assert_eq!((back.state, back.attempts), (State::Scheduled, 1));
    assert!(
        cb.claim_due("retry", &claim("a", 60_000))
            .await
            .unwrap()
            .records
            .is_empty(),
        "not before its next attempt"
    );
    let soon = done(
        update(
            cb,
            &back,
            Change::Reschedule(Reschedule {
                desired: back.desired,
                submit_at: later(-1),
                expires: back.expires,
                bucket: back.bucket,
                capacity: None,
            }),
        )
        .await,
    );
    assert_eq!(soon.attempts, 0, "a new time starts the attempts again");
    let c = cb.claim_due("retry", &claim("a", 60_000)).await.unwrap();
    let once = done(update(cb, &c.records[0], fail(later(-1))).await);
    let c = cb.claim_due("retry", &claim("a", 60_000)).await.unwrap();
    assert_eq!(c.records[0].attempts, 2);
    assert_eq!(c.records[0].id, once.id);
    let failed = done(update(cb, &c.records[0], fail(later(-1))).await);
    assert_eq!(
        (failed.state, failed.reason.as_deref()),
        (State::Completed, Some(SUBMIT_FAILED))
    );
    assert_eq!(
        cb.booked("retry", &[r.bucket.unwrap()]).await.unwrap(),
        vec![0]
    );
    assert!(cb
        .claim_due("retry", &claim("a", 60_000))
        .await
        .unwrap()
        .records
        .is_empty());
}

pub(super) async fn start_up_recovery_gives_up_old_records(b: &Backend) {
    let cb = b.cb();
    let mut old = due("rec", "1");
    old.submit_at = later(-7200);
    let old = create(cb, plain(old)).await;
    let mut recent = due("rec", "2");
    recent.submit_at = later(-300);
    let recent = create(cb, plain(recent)).await;
    let mut req = claim("a", 60_000);
    req.recovery = Some(Duration::from_secs(3600));
    let c = cb.claim_due("rec", &req).await.unwrap();
    assert_eq!(
        c.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![recent.id]
    );
    assert_eq!(c.failed, vec![old.id]);
    let got = cb.get("rec", old.id).await.unwrap().unwrap();
    assert_eq!(got.reason.as_deref(), Some(SUBMIT_FAILED));
}
