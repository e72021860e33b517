//! The callback store's contract (issue 18, `gms-callback.md` §3.2, §4–§7, §9), one suite run
//! on every implementation: the memory store, a real `redis-server` and a real 3-master Redis
//! Cluster (`memory::…`, `redis::…`, `cluster::…`). Each test has its own store (its own
//! redis-server, or its own key prefix on the binary's shared cluster); "two nodes" are two
//! store handles on one backend.

#[path = "../common/mod.rs"]
mod common;

mod changes;
mod create;
mod queries;
mod scheduler;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{redis_cli, shared_cluster, unique_prefix, RedisServer, TempDir};
use gms_gateway::callback::change::{Change, Reschedule, Update};
use gms_gateway::callback::record::{
    CallbackRecord, OrsRef, State, CANCELLED, CANCELLED_BY_ADMIN, CUSTOMER_NUMBER, SUBMIT_FAILED,
};
use gms_gateway::store::callback::{
    CallbackStore, ClaimRequest, CreateRefusal, Field, Limits, NewCallback, Operand,
    ParameterThrottle, Query, Rejection, Term, Throttle, Updated,
};
use gms_gateway::store::memory::MemoryStore;
use gms_gateway::store::redis::RedisStore;
use gms_gateway::store::Store;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    Redis,
    Cluster,
}

/// The store under test: two handles ("nodes") on one backend.
struct Backend {
    nodes: Vec<Arc<dyn Store>>,
    /// The single redis-server (kept alive by the test) and its port.
    redis: Option<(RedisServer, TempDir)>,
    prefix: String,
}

impl Backend {
    fn start(kind: Kind) -> Backend {
        let prefix = unique_prefix();
        let timeout = Duration::from_secs(5);
        let none = Default::default();
        match kind {
            Kind::Memory => {
                let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
                Backend {
                    nodes: vec![store.clone(), store],
                    redis: None,
                    prefix,
                }
            }
            Kind::Redis => {
                let dir = TempDir::new("cbstore");
                let server = RedisServer::start_in(&dir.path().join("redis"), false);
                let nodes = (0..2)
                    .map(|_| {
                        let s = RedisStore::single(&server.url(), &prefix, timeout, &none);
                        Arc::new(s.unwrap()) as Arc<dyn Store>
                    })
                    .collect();
                Backend {
                    nodes,
                    redis: Some((server, dir)),
                    prefix,
                }
            }
            Kind::Cluster => {
                let urls = shared_cluster();
                let nodes = (0..2)
                    .map(|_| {
                        let s = RedisStore::cluster(&urls, &prefix, timeout, &none);
                        Arc::new(s.unwrap()) as Arc<dyn Store>
                    })
                    .collect();
                Backend {
                    nodes,
                    redis: None,
                    prefix,
                }
            }
        }
    }

    fn cb(&self) -> &dyn CallbackStore {
        self.nodes[0].callbacks()
    }

    fn node(&self, i: usize) -> &dyn CallbackStore {
        self.nodes[i].callbacks()
    }

    /// `redis-cli` on the single server (`None` on the other backends).
    fn cli(&self, args: &[&str]) -> Option<String> {
        let (server, _) = self.redis.as_ref()?;
        Some(redis_cli(server.port(), args).trim().to_string())
    }
}

/// For each scenario `module::name`, a test `memory::name`, `redis::name` and `cluster::name`.
macro_rules! on_every_store {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$module::$name(&super::Backend::start(super::Kind::Memory)).await
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$module::$name(&super::Backend::start(super::Kind::Redis)).await
            })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$module::$name(&super::Backend::start(super::Kind::Cluster)).await
            })*
        }
    };
}

on_every_store!(
    create::create_checks_refuse_in_the_contract_order,
    create::an_abort_gives_back_every_count,
    create::a_reschedule_moves_bucket_due_time_and_expiration,
    create::booked_counts_follow_states,
    create::the_last_slot_of_a_bucket_goes_to_exactly_one_create,
    queries::queries_combine_filters_across_services,
    scheduler::two_nodes_claim_each_due_record_exactly_once,
    scheduler::a_claim_whose_lease_ran_out_is_taken_again,
    scheduler::failed_attempts_retry_then_give_up,
    scheduler::start_up_recovery_gives_up_old_records,
    changes::expired_records_leave_no_index_entry,
    changes::changes_follow_the_state_machine,
    changes::state_counts_give_the_watermarks,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn now() -> Timestamp {
    Timestamp::now()
}

fn later(secs: i64) -> Timestamp {
    now() + SignedDuration::from_secs(secs)
}

fn bucket_of(t: Timestamp) -> i64 {
    t.as_millisecond().div_euclid(300_000) * 300_000
}

/// A scheduled record of `service` for customer `cn`, submitted two minutes before `desired`,
/// kept a day after it.
fn scheduled(service: &str, cn: &str, desired: Timestamp) -> CallbackRecord {
    let mut r = CallbackRecord::new(
        service,
        cn,
        desired,
        desired + SignedDuration::from_hours(24),
        now(),
    );
    r.submit_at = desired - SignedDuration::from_secs(120);
    r.options = vec![
        ("_target".into(), "Customer_Service".into()),
        ("_media_type".into(), "voice".into()),
    ];
    r
}

/// A scheduled record that is due now.
fn due(service: &str, cn: &str) -> CallbackRecord {
    let mut r = scheduled(service, cn, later(60));
    r.submit_at = later(-1);
    r
}

fn plain(record: CallbackRecord) -> NewCallback {
    NewCallback {
        record,
        capacity: None,
        limits: Limits::default(),
    }
}

async fn create(cb: &dyn CallbackStore, new: NewCallback) -> CallbackRecord {
    match cb.create(&new).await.expect("store") {
        Ok(r) => r,
        Err(refused) => panic!("create refused: {refused:?}"),
    }
}

async fn refused(cb: &dyn CallbackStore, new: NewCallback) -> CreateRefusal {
    cb.create(&new).await.expect("store").expect_err("refused")
}

async fn update(cb: &dyn CallbackStore, r: &CallbackRecord, change: Change) -> Updated {
    let u = Update {
        change: Some(change),
        ..Update::default()
    };
    cb.update(&r.service, r.id, &u).await.expect("store")
}

fn done(u: Updated) -> CallbackRecord {
    match u {
        Updated::Done(r) => r,
        other => panic!("not done: {other:?}"),
    }
}

fn refusal(u: Updated) -> Rejection {
    match u {
        Updated::Refused(why, _) => why,
        other => panic!("not refused: {other:?}"),
    }
}

fn claim(node: &str, lease_ms: u64) -> ClaimRequest {
    ClaimRequest {
        node: node.into(),
        batch: 100,
        lease: Duration::from_millis(lease_ms),
        max_attempts: 3,
        recovery: None,
    }
}

fn session(n: usize) -> OrsRef {
    OrsRef {
        node: "http://127.0.0.1:7210".into(),
        session: format!("S-{n}"),
    }
}

fn cn_is(v: &str) -> Term {
    Term::is(Field::Lookup(CUSTOMER_NUMBER.into()), v)
}

async fn ids(cb: &dyn CallbackStore, services: &[&str], q: Query) -> Vec<Uuid> {
    let found = cb.query(services, &q).await.expect("store");
    assert!(found.complete);
    found.records.iter().map(|r| r.id).collect()
}

async fn counts(cb: &dyn CallbackStore, service: &str) -> Vec<(State, u64)> {
    let c = cb.state_counts(&[service]).await.expect("store")[0];
    State::ALL
        .into_iter()
        .map(|s| (s, c.of(s)))
        .filter(|(_, n)| *n > 0)
        .collect()
}
