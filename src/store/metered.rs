//! [`Metered`]: a [`Store`] around another one that counts each operation by outcome and times
//! it (`gms_store_operations_total{op, outcome}`, `gms_store_operation_duration_seconds{op}`).
//! `store::build` puts it in place only when metrics are on.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora_prometheus::prometheus::{Histogram, IntCounter};
use uuid::Uuid;

use super::{
    DataRecord, MatchOutcome, MatchRequest, NumberUse, OrsSession, PutMode, Reservation,
    ReserveRequest, ServiceRecord, StatusEntry, Store, StoreError, StoreResult, Usage,
};
use crate::metrics::{STORE_LATENCY, STORE_OPS};
use crate::value::Fields;

/// Every [`Store`] method, named as in the trait (the `op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateService,
    GetService,
    SetOrsSession,
    TouchService,
    DeleteService,
    AddReservation,
    MatchReservation,
    PutData,
    MergeData,
    GetData,
    DeleteData,
    DeleteDataKey,
    GetStatus,
    GetServiceAndStatus,
    PutStatus,
    Ping,
    Usage,
    GroupUse,
}

impl Op {
    /// Every op, in declaration order (so `op as usize` indexes [`OPS`]).
    const ALL: [Op; 18] = [
        Op::CreateService,
        Op::GetService,
        Op::SetOrsSession,
        Op::TouchService,
        Op::DeleteService,
        Op::AddReservation,
        Op::MatchReservation,
        Op::PutData,
        Op::MergeData,
        Op::GetData,
        Op::DeleteData,
        Op::DeleteDataKey,
        Op::GetStatus,
        Op::GetServiceAndStatus,
        Op::PutStatus,
        Op::Ping,
        Op::Usage,
        Op::GroupUse,
    ];

    /// Whether it reserves access numbers, and so can find a pool exhausted.
    fn reserves(self) -> bool {
        matches!(self, Op::CreateService | Op::AddReservation)
    }

    /// Whether it writes user data, and so can find the store full.
    fn writes_data(self) -> bool {
        matches!(self, Op::CreateService | Op::PutData | Op::MergeData)
    }

    fn name(self) -> &'static str {
        match self {
            Op::CreateService => "create_service",
            Op::GetService => "get_service",
            Op::SetOrsSession => "set_ors_session",
            Op::TouchService => "touch_service",
            Op::DeleteService => "delete_service",
            Op::AddReservation => "add_reservation",
            Op::MatchReservation => "match_reservation",
            Op::PutData => "put_data",
            Op::MergeData => "merge_data",
            Op::GetData => "get_data",
            Op::DeleteData => "delete_data",
            Op::DeleteDataKey => "delete_data_key",
            Op::GetStatus => "get_status",
            Op::GetServiceAndStatus => "get_service_and_status",
            Op::PutStatus => "put_status",
            Op::Ping => "ping",
            Op::Usage => "usage",
            Op::GroupUse => "group_use",
        }
    }
}

/// One op's series, resolved once.
struct OpSeries {
    ok: IntCounter,
    /// The store failed: unreachable, too slow, or holding damaged data (a 503).
    error: IntCounter,
    /// No access number was free: the store worked, the pool is full (also a 503). Only for
    /// the ops that reserve, so the others export no series that can never move.
    exhausted: Option<IntCounter>,
    /// The phone already held its allowed reservations (a 429); only for the ops that reserve.
    phone_limit: Option<IntCounter>,
    /// The store's byte budget had no room (a 507); only for the ops that write user data.
    full: Option<IntCounter>,
    duration: Histogram,
}

/// Every op's series, resolved at first use: a store operation is on the path of nearly every
/// request, and a label lookup per call would hash the labels every time.
static OPS: LazyLock<Vec<OpSeries>> = LazyLock::new(|| {
    Op::ALL
        .iter()
        .map(|op| {
            let counter = |outcome| STORE_OPS.with_label_values(&[op.name(), outcome]);
            OpSeries {
                ok: counter("ok"),
                error: counter("error"),
                exhausted: op.reserves().then(|| counter("exhausted")),
                phone_limit: op.reserves().then(|| counter("phone_limit")),
                full: op.writes_data().then(|| counter("full")),
                duration: STORE_LATENCY.with_label_values(&[op.name()]),
            }
        })
        .collect()
});

impl OpSeries {
    fn of(op: Op) -> &'static OpSeries {
        &OPS[op as usize]
    }

    fn record<T>(&self, result: &StoreResult<T>, took: Duration) {
        match (result, &self.exhausted, &self.phone_limit, &self.full) {
            (Ok(_), ..) => &self.ok,
            (Err(StoreError::Exhausted(_)), Some(exhausted), _, _) => exhausted,
            (Err(StoreError::PhoneLimit(_)), _, Some(limited), _) => limited,
            (Err(StoreError::Full(_)), _, _, Some(full)) => full,
            (Err(_), ..) => &self.error,
        }
        .inc();
        self.duration.observe(took.as_secs_f64());
    }
}

/// A [`Store`] that delegates every call to `inner` and meters it.
pub struct Metered {
    inner: Arc<dyn Store>,
}

impl Metered {
    /// Meters `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Metered { inner }
    }
}

/// Runs one delegated call and records its outcome and duration under `op`.
async fn metered<T>(op: Op, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let start = Instant::now();
    let result = call.await;
    OpSeries::of(op).record(&result, start.elapsed());
    result
}

#[async_trait]
impl Store for Metered {
    async fn create_service(
        &self,
        record: ServiceRecord,
        data: DataRecord,
        reserve: Option<ReserveRequest>,
    ) -> StoreResult<Option<Reservation>> {
        metered(
            Op::CreateService,
            self.inner.create_service(record, data, reserve),
        )
        .await
    }

    async fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
        metered(Op::GetService, self.inner.get_service(id)).await
    }

    async fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool> {
        metered(Op::SetOrsSession, self.inner.set_ors_session(id, session)).await
    }

    async fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool> {
        metered(Op::TouchService, self.inner.touch_service(record)).await
    }

    async fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>> {
        metered(Op::DeleteService, self.inner.delete_service(id, owner)).await
    }

    async fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>> {
        metered(
            Op::AddReservation,
            self.inner.add_reservation(id, owner, reserve),
        )
        .await
    }

    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<MatchOutcome> {
        metered(Op::MatchReservation, self.inner.match_reservation(call)).await
    }

    async fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool> {
        metered(Op::PutData, self.inner.put_data(id, record, ttl, mode)).await
    }

    async fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: Fields,
        ttl: Duration,
    ) -> StoreResult<bool> {
        metered(Op::MergeData, self.inner.merge_data(id, owner, fields, ttl)).await
    }

    async fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>> {
        metered(Op::GetData, self.inner.get_data(id)).await
    }

    async fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool> {
        metered(Op::DeleteData, self.inner.delete_data(id, owner)).await
    }

    async fn delete_data_key(&self, id: &str, owner: Option<&str>, key: &str) -> StoreResult<bool> {
        metered(
            Op::DeleteDataKey,
            self.inner.delete_data_key(id, owner, key),
        )
        .await
    }

    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        metered(Op::GetStatus, self.inner.get_status(id)).await
    }

    async fn get_service_and_status(
        &self,
        id: Uuid,
    ) -> StoreResult<(Option<ServiceRecord>, Option<StatusEntry>)> {
        metered(
            Op::GetServiceAndStatus,
            self.inner.get_service_and_status(id),
        )
        .await
    }

    async fn put_status(&self, id: Uuid, entry: StatusEntry, keep: Duration) -> StoreResult<()> {
        metered(Op::PutStatus, self.inner.put_status(id, entry, keep)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        metered(Op::Ping, self.inner.ping()).await
    }

    async fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage> {
        metered(Op::Usage, self.inner.usage(groups)).await
    }

    /// Not metered per operation: the callback API meters its own requests.
    fn callbacks(&self) -> &dyn super::callback::CallbackStore {
        self.inner.callbacks()
    }

    async fn group_use(&self, group: &str, numbers: &Arc<[String]>) -> StoreResult<Vec<NumberUse>> {
        metered(Op::GroupUse, self.inner.group_use(group, numbers)).await
    }

    fn start_upkeep(&self) {
        self.inner.start_upkeep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::redis::RedisStore;

    #[test]
    fn ops_index_their_series() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
        let names: std::collections::HashSet<_> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Op::ALL.len());
    }

    #[tokio::test]
    async fn outcomes_and_durations_are_recorded_per_op() {
        // The counters are process-wide and other tests may move them: compare deltas.
        let series = OpSeries::of(Op::GetData);
        let (ok, timed) = (series.ok.get(), series.duration.get_sample_count());
        let store = Metered::new(Arc::new(MemoryStore::new()));
        assert_eq!(store.get_data("nope").await, Ok(None));
        assert_eq!(series.ok.get() - ok, 1);
        assert_eq!(series.duration.get_sample_count() - timed, 1);

        // A full pool is its own outcome, not a store error.
        let create = OpSeries::of(Op::CreateService);
        let exhausted = create.exhausted.as_ref().unwrap();
        let (full, errors) = (exhausted.get(), create.error.get());
        let reserve = crate::store::ReserveRequest {
            group: "G".into(),
            numbers: Arc::from(Vec::<String>::new()),
            code: None,
            allocation: crate::store::Allocation::Random,
            phone: Some("1".into()),
            ttl: Duration::from_secs(30),
            per_phone: 0,
        };
        let record = ServiceRecord {
            id: Uuid::new_v4(),
            service: "s".into(),
            data_id: Uuid::new_v4(),
            owner: None,
            service_ttl: Duration::from_secs(30),
            data_ttl: Duration::from_secs(30),
            ors: None,
            reservations: vec![],
        };
        let made = store
            .create_service(record, DataRecord::default(), Some(reserve))
            .await;
        assert!(matches!(made, Err(StoreError::Exhausted(_))), "{made:?}");
        assert_eq!(
            (exhausted.get() - full, create.error.get() - errors),
            (1, 0)
        );
        assert!(OpSeries::of(Op::Ping).exhausted.is_none());

        // A real Redis store on a port where nothing listens fails as unavailable.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let redis = RedisStore::single(
            &format!("redis://127.0.0.1:{port}"),
            "gms:",
            Duration::from_millis(500),
            &HashMap::new(),
        )
        .unwrap();
        let ping = OpSeries::of(Op::Ping);
        let errors = ping.error.get();
        let store = Metered::new(Arc::new(redis));
        assert!(store.ping().await.is_err());
        assert_eq!(ping.error.get() - errors, 1);
    }
}
