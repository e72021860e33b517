//! Queries by properties, across services, admin queues and reports (§6.1, §9).

use super::*;

pub(super) async fn queries_combine_filters_across_services(b: &Backend) {
    let cb = b.cb();
    let base = later(3600);
    let at = |min: i64| base + SignedDuration::from_mins(min);
    let mut r = scheduled("qa", "100", at(10));
    r.lookup = vec![("CB_SUB".into(), "x".into())];
    r.props = vec![("_vq".into(), "VQ1".into())];
    let a1 = create(cb, plain(r)).await;
    let a2 = create(cb, plain(scheduled("qa", "100", at(5)))).await;
    done(
        update(
            cb,
            &a2,
            Change::Cancel {
                reason: CANCELLED_BY_ADMIN.into(),
            },
        )
        .await,
    );
    let a3 = create(
        cb,
        plain(scheduled("qa", "200", at(20)).immediate("n1", later(30))),
    )
    .await;
    done(
        update(
            cb,
            &a3,
            Change::Submitted {
                node: "n1".into(),
                ors: session(3),
            },
        )
        .await,
    );
    let mut r = scheduled("qb", "100", at(1));
    r.lookup = vec![("CB_SUB".into(), "x".into())];
    let b1 = create(cb, plain(r)).await;
    let b2 = create(cb, plain(scheduled("qb", "300", at(30)))).await;
    let both = ["qa", "qb"];
    let q = |terms: Vec<Term>, op| Query::new(terms, op, 100);
    let state = |v: &str| Term::is(Field::State, v);
    let sub = |v: &str| Term::is(Field::Lookup("CB_SUB".into()), v);

    // One service, by customer number: in desired-time order.
    assert_eq!(
        ids(cb, &["qa"], q(vec![cn_is("100")], Operand::And)).await,
        vec![a2.id, a1.id]
    );
    assert_eq!(
        ids(
            cb,
            &["qa"],
            q(
                vec![cn_is("100"), Term::not(Field::State, "COMPLETED")],
                Operand::And
            )
        )
        .await,
        vec![a1.id]
    );
    assert_eq!(
        ids(
            cb,
            &["qa"],
            q(vec![cn_is("100"), cn_is("200")], Operand::Or)
        )
        .await,
        vec![a2.id, a1.id, a3.id]
    );
    // Across services, and by another lookup key.
    assert_eq!(
        ids(cb, &both, q(vec![cn_is("100")], Operand::And)).await,
        vec![b1.id, a2.id, a1.id]
    );
    assert_eq!(
        ids(cb, &both, q(vec![sub("x")], Operand::And)).await,
        vec![b1.id, a1.id]
    );
    // Only negations: every record, bounded.
    assert_eq!(
        ids(
            cb,
            &both,
            q(
                vec![Term::not(Field::Lookup(CUSTOMER_NUMBER.into()), "100")],
                Operand::And
            )
        )
        .await,
        vec![a3.id, b2.id]
    );
    assert_eq!(
        ids(
            cb,
            &["qa"],
            q(
                vec![
                    state("QUEUED"),
                    Term::not(Field::Reason, CANCELLED_BY_ADMIN)
                ],
                Operand::Or
            )
        )
        .await,
        vec![a1.id, a3.id]
    );
    assert!(ids(cb, &both, q(vec![state("NOPE")], Operand::And))
        .await
        .is_empty());
    // By id: a query, and a lookup without the service.
    let by_id = |id: Uuid| q(vec![Term::is(Field::Id, &id.to_string())], Operand::And);
    assert_eq!(ids(cb, &both, by_id(b2.id)).await, vec![b2.id]);
    assert!(ids(cb, &both, by_id(Uuid::new_v4())).await.is_empty());
    assert_eq!(cb.find(&both, b2.id).await.unwrap(), Some(b2.clone()));
    assert_eq!(cb.find(&["qa"], b2.id).await.unwrap(), None);
    assert_eq!(cb.find(&both, Uuid::new_v4()).await.unwrap(), None);

    // Admin queues: states, a desired-time range, a filter key; the cancelled report.
    let mut admin = q(
        vec![Term::is(Field::Prop("_vq".into()), "VQ1")],
        Operand::And,
    );
    admin.states = vec![State::Scheduled];
    admin.from = Some(at(0));
    admin.to = Some(at(15));
    assert_eq!(ids(cb, &["qa"], admin.clone()).await, vec![a1.id]);
    admin.terms.clear();
    admin.states = vec![State::Scheduled, State::Completed];
    assert_eq!(ids(cb, &["qa"], admin.clone()).await, vec![a2.id, a1.id]);
    admin.to = Some(at(9));
    assert_eq!(ids(cb, &["qa"], admin).await, vec![a2.id]);
    let mut report = q(
        vec![Term::is(Field::Reason, CANCELLED_BY_ADMIN)],
        Operand::And,
    );
    report.states = vec![State::Completed];
    assert_eq!(ids(cb, &both, report).await, vec![a2.id]);

    // Pages of two over everything.
    let mut page = Query::new(vec![], Operand::And, 2);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let found = cb.query(&both, &page).await.unwrap();
        if found.records.is_empty() {
            break;
        }
        let last = found.records.last().unwrap();
        page.after = Some((last.desired, last.id));
        seen.extend(found.records.iter().map(|r| r.id));
    }
    assert_eq!(seen, vec![b1.id, a2.id, a1.id, a3.id, b2.id]);

    // A lookup key edited: the index follows.
    let edit = Update {
        change: None,
        lookup: vec![("CB_SUB".into(), Some("y".into()))],
        props: vec![],
    };
    done(cb.update("qa", a1.id, &edit).await.unwrap());
    assert!(ids(cb, &["qa"], q(vec![sub("x")], Operand::And))
        .await
        .is_empty());
    assert_eq!(
        ids(cb, &["qa"], q(vec![sub("y")], Operand::And)).await,
        vec![a1.id]
    );
}
