//! Tests of the memory store through the [`Store`] trait.

use super::sharded::SHARDS;
use super::sweeper::SWEEP_TICK;
use super::*;
use crate::store::{Allocation, NumberUse, ReservationRef, StoreError};
use crate::value::Value;

fn record(ttl: u64) -> ServiceRecord {
    ServiceRecord {
        id: Uuid::new_v4(),
        service: "request-interaction".into(),
        data_id: Uuid::new_v4(),
        owner: Some("alice".into()),
        service_ttl: Duration::from_millis(ttl),
        data_ttl: Duration::from_millis(ttl),
        ors: None,
        reservations: vec![],
    }
}

fn reserve(code_len: Option<u8>) -> ReserveRequest {
    ReserveRequest {
        group: "G".into(),
        numbers: Arc::from(vec!["1".to_string()]),
        code: code_len.map(crate::ids::CodeSpace::all),
        allocation: Allocation::Random,
        phone: Some("555".into()),
        ttl: Duration::from_secs(30),
        per_phone: 0,
    }
}

#[tokio::test]
async fn create_get_delete_releases_everything() {
    let s = MemoryStore::new();
    let rec = record(60_000);
    let data = DataRecord {
        owner: rec.owner.clone(),
        fields: vec![("a".into(), Value::Text("1".into()))],
    };
    let r = s
        .create_service(rec.clone(), data.clone(), Some(reserve(None)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.number, "1");
    let got = s.get_service(rec.id).await.unwrap().unwrap();
    assert_eq!(
        got.reservations,
        vec![ReservationRef {
            number: "1".into(),
            code: None
        }]
    );
    assert_eq!(got.service, rec.service);
    let data_key = rec.data_id.to_string();
    assert_eq!(s.get_data(&data_key).await.unwrap(), Some(data));
    // Not yours: nothing happens.
    assert!(s
        .delete_service(rec.id, Some("bob"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .delete_service(rec.id, Some("alice"))
        .await
        .unwrap()
        .is_some());
    assert!(s.get_data(&data_key).await.unwrap().is_none());
    // The single number is free again.
    assert!(s
        .create_service(record(60_000), DataRecord::default(), Some(reserve(None)))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_match_removes_the_reservation_from_the_record() {
    let s = MemoryStore::new();
    let rec = record(60_000);
    let r = s
        .create_service(rec.clone(), DataRecord::default(), Some(reserve(Some(6))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.get_service(rec.id).await.unwrap().unwrap().reservations[0].code,
        r.code
    );
    let call = MatchRequest {
        number: r.number,
        code: r.code,
        phone: None,
        max_failed: 5,
        require_code: true,
    };
    assert_eq!(
        s.match_reservation(&call).await.unwrap(),
        MatchOutcome::Matched(rec.id)
    );
    assert!(s
        .get_service(rec.id)
        .await
        .unwrap()
        .unwrap()
        .reservations
        .is_empty());
}

#[tokio::test]
async fn usage_counts_live_services_and_holds() {
    let s = MemoryStore::new();
    let mut coded = reserve(Some(4));
    coded.numbers = Arc::from(vec!["2".to_string()]);
    for r in [Some(reserve(None)), Some(coded.clone()), Some(coded), None] {
        s.create_service(record(60_000), DataRecord::default(), r)
            .await
            .unwrap();
    }
    s.create_service(record(1), DataRecord::default(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let numbers: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
    let groups = HashMap::from([("G".to_string(), Arc::from(numbers))]);
    let use_of = |exclusive, coded| NumberUse { exclusive, coded };
    assert_eq!(
        s.usage(&groups).await.unwrap(),
        Usage {
            live_services: Some(4),
            groups: vec![(
                "G".into(),
                vec![use_of(true, 0), use_of(false, 2), use_of(false, 0)]
            )],
            data_bytes: Some((0, u64::MAX)),
        }
    );
}

fn text(key: &str, len: usize) -> Fields {
    vec![(key.into(), Value::Text("x".repeat(len)))]
}

#[tokio::test]
async fn the_byte_budget_counts_writes_merges_deletes_and_expiry() {
    // A text field packs as 1 + 4 + key + 4 + value bytes: 50 for key "k" and 40 bytes.
    let s = MemoryStore::with_budget(120);
    let ttl = Duration::from_secs(60);
    let put = |id: &'static str, len: usize, owner: Option<&str>| {
        let record = DataRecord {
            owner: owner.map(str::to_string),
            fields: text("k", len),
        };
        s.put_data(id, record, ttl, PutMode::New)
    };
    let used = || s.inner.budget.used();
    put("a", 40, None).await.unwrap();
    // A custom name counts too: 50 + 1.
    assert_eq!(used(), 51);
    put("b", 40, Some("bob")).await.unwrap();
    assert_eq!(used(), 105);
    // Past the budget: refused, nothing written.
    assert!(matches!(put("c", 40, None).await, Err(StoreError::Full(_))));
    assert!(s.get_data("c").await.unwrap().is_none());
    // Replacing counts the difference only.
    put("a", 50, None).await.unwrap();
    assert_eq!(used(), 115);
    // A merge that would pass is refused whole; one that fits is counted.
    let grow = s.merge_data("a", None, text("m", 10), ttl).await;
    assert!(matches!(grow, Err(StoreError::Full(_))), "{grow:?}");
    assert_eq!(
        s.get_data("a").await.unwrap().unwrap().fields,
        text("k", 50)
    );
    assert!(s.delete_data("b", Some("bob")).await.unwrap());
    assert_eq!(used(), 61);
    assert!(s.merge_data("a", None, text("m", 10), ttl).await.unwrap());
    assert_eq!(used(), 81);
    // A create that does not fit reserves no number.
    let mut big = record(60_000);
    big.owner = None;
    let data = DataRecord {
        owner: None,
        fields: text("k", 100),
    };
    let made = s.create_service(big, data, Some(reserve(None))).await;
    assert!(matches!(made, Err(StoreError::Full(_))), "{made:?}");
    assert_eq!(s.counts().3, 0, "no hold was left behind");
    // Expired and swept: given back.
    s.put_data(
        "short",
        DataRecord::default(),
        Duration::from_millis(1),
        PutMode::New,
    )
    .await
    .unwrap();
    s.put_data(
        "gone",
        DataRecord {
            owner: None,
            fields: text("k", 10),
        },
        Duration::from_millis(1),
        PutMode::New,
    )
    .await
    .unwrap();
    assert_eq!(used(), 81 + 5 + 24);
    tokio::time::sleep(Duration::from_millis(5)).await;
    for shard in 0..SHARDS {
        let now = s.inner.now();
        s.inner
            .data
            .sweep_shard(shard, now, |k, d| s.inner.budget.give(d.bytes(k)));
    }
    assert_eq!(used(), 81);
}

#[tokio::test]
async fn expired_entries_vanish_and_are_reclaimed() {
    let s = MemoryStore::new();
    s.start_upkeep();
    let rec = record(30);
    s.create_service(rec.clone(), DataRecord::default(), None)
        .await
        .unwrap();
    assert!(s.get_service(rec.id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(s.get_service(rec.id).await.unwrap().is_none());
    // The sweeper makes a full pass within SHARDS ticks.
    let deadline = Instant::now() + SWEEP_TICK * (SHARDS as u32 + 20);
    while s.counts().0 + s.counts().1 > 0 && Instant::now() < deadline {
        tokio::time::sleep(SWEEP_TICK).await;
    }
    assert_eq!(s.counts().0 + s.counts().1, 0);
}

#[tokio::test]
async fn custom_ids_are_created_or_replaced_by_their_owner_only() {
    let s = MemoryStore::new();
    let ttl = Duration::from_secs(60);
    let mine = |o: &str| DataRecord {
        owner: Some(o.into()),
        fields: vec![],
    };
    assert!(s
        .put_data("x", mine("alice"), ttl, PutMode::CreateOrReplaceOwn)
        .await
        .unwrap());
    assert!(s
        .put_data("x", mine("alice"), ttl, PutMode::CreateOrReplaceOwn)
        .await
        .unwrap());
    assert!(!s
        .put_data("x", mine("bob"), ttl, PutMode::CreateOrReplaceOwn)
        .await
        .unwrap());
    s.put_data("y", DataRecord::default(), ttl, PutMode::New)
        .await
        .unwrap();
    assert!(!s
        .put_data("y", mine("bob"), ttl, PutMode::CreateOrReplaceOwn)
        .await
        .unwrap());
}
