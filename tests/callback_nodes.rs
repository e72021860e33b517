//! Callbacks on two gateways sharing one Redis or Redis Cluster (issue 18, "On every store, at
//! scale"; `gms-callback.md` §7.1): what one node creates, the other queries, reschedules and
//! cancels; 1,000 callbacks coming due together are each submitted to ORS exactly once (counted
//! at `ors-sim`'s `/sim/starts`), and at least once when a node is killed mid-pass, the
//! duplicates no more than the claim it had in flight (`docs/callback.md`); nothing is lost
//! when the gateway and Redis (with AOF; every node of a cluster) restart.
//!
//! Run with `GMS_TEST_STORE=redis` or `cluster` (`scripts/test` does): two gateways cannot share
//! a memory store, so each test says so and passes on memory.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::callback::*;
use common::*;
use serde_json::{json, Value};

/// The scheduler's claim (`gms.callback.submit_concurrency`): the most one node has in flight,
/// so the most a node killed mid-pass can leave to be submitted twice.
const BATCH: usize = 32;

/// Callbacks of the scale tests.
const MANY: usize = 1000;

/// The store the gateways of one test share, or None on memory (the test then returns).
struct Shared {
    /// The `storage:` line of every node's `gms:` block.
    storage: String,
    /// The single Redis (kept alive by the test); None on the cluster.
    redis: Option<RedisServer>,
    /// A cluster of the test's own (with AOF); None on the binary's shared one.
    cluster: Option<RedisCluster>,
    _dir: TempDir,
}

impl Shared {
    /// A fresh shared store for `test`: its own `redis-server` (with AOF when `aof`), or a key
    /// prefix of its own on the binary's cluster (with `aof`, a 3-master cluster of its own).
    fn start(test: &str, aof: bool) -> Option<Shared> {
        let dir = TempDir::new("cbnodes");
        let prefix = unique_prefix();
        let mut cluster = None;
        let (storage, redis) = match test_store() {
            TestStore::Memory => {
                println!(
                    "{test}: skipped on GMS_TEST_STORE=memory: two gateways cannot share a \
                     memory store (run it with GMS_TEST_STORE=redis or cluster)"
                );
                return None;
            }
            TestStore::Redis => {
                let r = RedisServer::start_in(&dir.path().join("redis"), aof);
                let s = format!(
                    "storage: {{backend: redis, url: \"{}\", prefix: \"{prefix}\"}}",
                    r.url()
                );
                (s, Some(r))
            }
            TestStore::Cluster => {
                let urls = if aof {
                    let own = RedisCluster::start_persisted(3, true);
                    let urls = own.urls();
                    cluster = Some(own);
                    urls
                } else {
                    shared_cluster()
                };
                let nodes: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
                let s = format!(
                    "storage: {{backend: redis, cluster: [{}], prefix: \"{prefix}\"}}",
                    nodes.join(", ")
                );
                (s, None)
            }
        };
        Some(Shared {
            storage,
            redis,
            cluster,
            _dir: dir,
        })
    }

    /// A gateway on this store with `services` on `sim`, `callback` keys for `gms.callback`
    /// (the batch is [`BATCH`]), and no per-address write rate (the tests create in bursts).
    fn node(&self, sim: &OrsSim, services: &str, callback: &str) -> Gateway {
        let callback = format!("submit_concurrency: {BATCH}\n{callback}");
        Gateway::start(&format!(
            "{}\nlimits: {{create_rate_per_ip: 0}}\n{}",
            self.storage,
            callback_gms(sim, services, &callback)
        ))
    }
}

/// Two gateways, A and B, on one shared store and one simulator, their schedulers passing
/// every 0.2 s (fields drop in order: the gateways before the simulator and the store).
struct Nodes {
    a: Gateway,
    b: Gateway,
    sim: OrsSim,
    _store: Shared,
}

impl Nodes {
    /// [`Nodes`] for `test`, or None on memory.
    fn start(test: &str) -> Option<Nodes> {
        let store = Shared::start(test, false)?;
        let sim = sim();
        let node = || store.node(&sim, &service(), "queue-polling-rate: 0.2");
        let (a, b) = (node(), node());
        Some(Nodes {
            a,
            b,
            sim,
            _store: store,
        })
    }
}

/// A callback-mode simulator whose callbacks stay QUEUED (no state reports).
fn sim() -> OrsSim {
    OrsSim::start_args(1, &["--callback", r#"{"auto":false}"#])
}

/// The callback service of these tests: due a second before the desired time, room for
/// [`MANY`] in one bucket and in the queue, no duplicate check (every number differs anyway).
fn service() -> String {
    callback_service(
        CB,
        "_request_execution_time_buffer: 1\n\
         _enable_in_queue_checking: \"false\"\n\
         _max_request_by_time_bucket: 5000\n\
         _max_queued_callbacks_per_service: 5000",
    )
}

fn cb_url(gw: &Gateway, rest: &str) -> String {
    gw.url(&format!("/genesys/1/service/callback/{CB}{rest}"))
}

/// A scheduled callback for `number` at `at`, created on `gw`; its id.
fn schedule(gw: &Gateway, number: &str, at: &str) -> String {
    let v = ok_json(&post_form(
        &cb_url(gw, ""),
        &[("_customer_number", number), ("_desired_time", at)],
        &[],
    ));
    assert_eq!(v["_callback_state"], "SCHEDULED", "{v}");
    str_field(&v, "_id").to_string()
}

/// `n` callbacks at `at` (numbers `55800000 + i`), created by 8 threads taking turns over
/// `gws`; their ids.
fn schedule_many(gws: &[&Gateway], n: usize, at: &str) -> HashSet<String> {
    let next = AtomicUsize::new(0);
    let ids = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    // Bounded: each turn takes a distinct index below n.
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            break;
                        }
                        let number = format!("{}", 55_800_000 + i);
                        mine.push(schedule(gws[i % gws.len()], &number, at));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("create thread"))
            .collect::<HashSet<String>>()
    });
    assert_eq!(ids.len(), n, "every create made its own callback");
    ids
}

/// The query of one callback on `gw` (`?_id=`), as an array, without the node's address.
fn query_id(gw: &Gateway, id: &str) -> Value {
    portable(&ok_json(&get(&cb_url(gw, &format!("?_id={id}")), &[])))
}

/// The callbacks of the service in `state` (`!S`: in any other), as `gw` answers the query.
fn in_state(gw: &Gateway, state: &str) -> Vec<Value> {
    let v = ok_json(&get(&cb_url(gw, &format!("?_callback_state={state}")), &[]));
    v.as_array().cloned().unwrap_or_default()
}

/// Waits (at most `limit`) until `sim` took a start request for every id of `ids`; returns the
/// counts then.
fn wait_all_started(
    sim: &OrsSim,
    ids: &HashSet<String>,
    limit: Duration,
) -> HashMap<String, Starts> {
    wait_for(limit, "a start request for every callback", || {
        let counts = sim_starts(sim);
        ids.iter()
            .all(|id| counts.get(id).is_some_and(|n| n.requests > 0))
            .then_some(counts)
    })
}

/// The counts of the callbacks submitted more than once (a second session or start request).
fn repeated(counts: &HashMap<String, Starts>) -> Vec<Starts> {
    counts
        .values()
        .copied()
        .filter(|n| n.sessions > 1 || n.requests > 1)
        .collect()
}

/// `v` with this test's gateway addresses (`http://127.0.0.1:port`) taken out of its strings,
/// so that two nodes' replies compare.
fn portable(v: &Value) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix("http://127.0.0.1:") {
            Some(rest) => {
                Value::String(rest.trim_start_matches(|c: char| c.is_ascii_digit()).into())
            }
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(portable).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), portable(x))).collect())
        }
        _ => v.clone(),
    }
}

/// How many callbacks took a start request at `sim`.
fn started(sim: &OrsSim) -> usize {
    sim_starts(sim).values().filter(|n| n.requests > 0).count()
}

/// The start requests `sim` logged: the instants (ms) of the first and the last.
fn start_span_ms(sim: &OrsSim) -> (u64, u64) {
    let log = sim_requests(sim, "/scxml/session/");
    let at: Vec<u64> = log
        .iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/request/start"))
        })
        .filter_map(|e| e["at_ms"].as_u64())
        .collect();
    let first = at.iter().copied().min().unwrap_or_default();
    let last = at.iter().copied().max().unwrap_or_default();
    (first, last)
}

// ---------------------------------------------------------------------------
// One record, two nodes
// ---------------------------------------------------------------------------

/// `v` without what differs between two callbacks made alike (id, number, the URLs with the
/// id).
fn alike(v: &Value) -> Value {
    let mut v = portable(v);
    if let Some(m) = v.as_object_mut() {
        for k in ["_id", "_customer_number", "_url", "url"] {
            m.remove(k);
        }
    }
    v
}

#[test]
fn a_callback_made_on_one_node_is_queried_rescheduled_and_cancelled_on_the_other() {
    let Some(nodes) = Nodes::start("two_nodes") else {
        return;
    };
    let Nodes { a, b, sim, .. } = &nodes;
    let at = iso_in(3600);
    let (x, y) = (schedule(a, "5581101", &at), schedule(a, "5581102", &at));

    // B answers a query just as A does: by id, and by customer number.
    let on_a = query_id(a, &x);
    assert_eq!(on_a.as_array().map(Vec::len), Some(1), "{on_a}");
    assert_eq!(query_id(b, &x), on_a);
    let by_number = |gw: &Gateway| {
        portable(&ok_json(&get(
            &cb_url(gw, "?_customer_number=5581101"),
            &[],
        )))
    };
    assert_eq!(by_number(b), by_number(a));
    assert_eq!(by_number(b)[0]["_id"], x.as_str());

    // A reschedule on B (of x) answers as one on A (of y) does, and both nodes see it.
    let later = iso_in(7200);
    let put = |gw: &Gateway, id: &str| {
        let body = form_encode(&[("_new_desired_time", &later)]);
        ok_json(&request(
            "PUT",
            &cb_url(gw, &format!("/{id}")),
            &[],
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        ))
    };
    let (moved_b, moved_a) = (put(b, &x), put(a, &y));
    assert_eq!(moved_b["_desired_time"], later.as_str(), "{moved_b}");
    assert_eq!(alike(&moved_b), alike(&moved_a));
    assert_eq!(portable(&moved_b), query_id(b, &x)[0]);
    assert_eq!(query_id(a, &x)[0]["_desired_time"], later.as_str());
    assert_eq!(query_id(a, &x), query_id(b, &x));

    // So does a cancel; a second cancel is refused alike on either node.
    let (gone_b, gone_a) = (
        ok_json(&delete(&cb_url(b, &format!("/{x}")), &[])),
        ok_json(&delete(&cb_url(a, &format!("/{y}")), &[])),
    );
    assert_eq!(gone_b["_callback_state"], "COMPLETED", "{gone_b}");
    assert_eq!(gone_b["_callback_reason"], "CANCELLED", "{gone_b}");
    assert_eq!(alike(&gone_b), alike(&gone_a));
    assert_eq!(query_id(a, &x), query_id(b, &x));
    assert_eq!(query_id(a, &x)[0]["_callback_state"], "COMPLETED");
    let again_a = assert_callback_error(
        &delete(&cb_url(a, &format!("/{x}")), &[]),
        400,
        "CallbackExceptionInvalidState",
    );
    let again_b = assert_callback_error(
        &delete(&cb_url(b, &format!("/{y}")), &[]),
        400,
        "CallbackExceptionInvalidState",
    );
    assert_eq!(again_a["exception"], again_b["exception"]);
    assert!(sim_starts(sim).is_empty(), "nothing was due");
}

// ---------------------------------------------------------------------------
// At scale
// ---------------------------------------------------------------------------

/// How long 1,000 callbacks may take from due to started, on a slow shared machine (it takes
/// about a second on an idle one: docs/callback.md).
const SUBMIT_LIMIT: Duration = Duration::from_secs(60);

/// Seconds ahead of now the scale tests book their callbacks: time to create 1,000 first.
const LEAD_S: i64 = 15;

#[test]
fn a_thousand_callbacks_due_together_are_each_submitted_once_by_two_nodes() {
    let Some(nodes) = Nodes::start("thousand") else {
        return;
    };
    let Nodes { a, b, sim, .. } = &nodes;
    let made = Instant::now();
    let at = iso_in(LEAD_S);
    let ids = schedule_many(&[a, b], MANY, &at);
    let create_s = made.elapsed().as_secs_f64();
    // Due the service's buffer (1 s) before the desired time.
    let due_ms = parse_iso(&at).as_millisecond() as u64 - 1000;
    let early = started(sim);

    let counts = wait_all_started(sim, &ids, Duration::from_secs(LEAD_S as u64) + SUBMIT_LIMIT);
    // A few more passes of both nodes: nothing is submitted again.
    std::thread::sleep(Duration::from_millis(1000));
    let counts_after = sim_starts(sim);
    assert_eq!(
        counts_after, counts,
        "no start after every callback had one"
    );
    let twice = repeated(&counts);
    assert!(twice.is_empty(), "submitted more than once: {twice:?}");
    assert_eq!(counts.len(), MANY, "no other callback was submitted");

    let (first, last) = start_span_ms(sim);
    let span_ms = last.saturating_sub(first).max(1);
    println!(
        "{MANY} callbacks: created in {create_s:.1} s ({early} submitted before the last create); \
         started from {} ms after their due time to {} ms after it: {:.0} callbacks/s",
        first as i64 - due_ms as i64,
        last as i64 - due_ms as i64,
        MANY as f64 * 1000.0 / span_ms as f64
    );
    // Each is QUEUED with its session, on either node.
    assert_all_queued(&[a, b], &ids, Duration::from_secs(10));
}

/// Every callback of `ids`, and no other, is QUEUED with an ORS session, as each of `gws`
/// answers (one query: at most 1,000 records), once the last outcomes are written (within
/// `limit`: a start request reaches ORS before its node records it).
fn assert_all_queued(gws: &[&Gateway], ids: &HashSet<String>, limit: Duration) {
    for gw in gws {
        wait_for(limit, "no callback but QUEUED ones", || {
            in_state(gw, "%21QUEUED").is_empty().then_some(())
        });
        let queued = in_state(gw, "QUEUED");
        let got: HashSet<String> = queued
            .iter()
            .map(|r| {
                assert!(!str_field(r, "_ors_session_id").is_empty(), "{r}");
                str_field(r, "_id").to_string()
            })
            .collect();
        assert_eq!(&got, ids);
    }
}

#[test]
fn a_node_killed_mid_pass_loses_no_callback_and_repeats_at_most_its_claim() {
    let Some(mut nodes) = Nodes::start("killed") else {
        return;
    };
    let Nodes { a, b, sim, .. } = &mut nodes;
    let ids = schedule_many(&[a, b], MANY, &iso_in(LEAD_S));
    // Slow ORS down so that a pass lasts seconds (two requests a callback, 100 ms each, 32 at
    // a time per node: 3 s or more for each node's half): A is killed with a claim in flight.
    sim.set(0, &json!({"latency_ms": 100}));
    wait_for(
        Duration::from_secs(LEAD_S as u64) + SUBMIT_LIMIT,
        "the first 200 starts",
        || (started(sim) >= 200).then_some(()),
    );
    assert!(signal_pid(a.pid(), "KILL"), "SIGKILL node A");
    assert!(a.wait_exit(Duration::from_secs(10)).is_some(), "A is gone");
    let at_kill = started(sim);
    assert!(at_kill < MANY, "A was killed mid-pass ({at_kill} started)");

    // B takes over; A's claim in flight once its lease (20 s here) runs out. A claim A had
    // started at ORS but not recorded is started again then: wait until B recorded all.
    wait_all_started(sim, &ids, Duration::from_secs(20) + SUBMIT_LIMIT);
    assert_all_queued(&[b], &ids, Duration::from_secs(20) + SUBMIT_LIMIT);
    let counts = sim_starts(sim);
    assert_eq!(counts.len(), MANY, "no other callback was submitted");
    // The documented rule (docs/callback.md, "At least once when a node dies"): only the
    // claim A had in flight may be submitted again, each of its callbacks once more.
    let twice = repeated(&counts);
    println!(
        "killed A after {at_kill} start requests: every callback started and QUEUED; {} \
         submitted twice ({} second sessions, {} second start requests; the bound is A's claim \
         of {BATCH})",
        twice.len(),
        twice.iter().filter(|n| n.sessions == 2).count(),
        twice.iter().filter(|n| n.requests == 2).count(),
    );
    assert!(
        twice.iter().all(|n| n.sessions <= 2 && n.requests <= 2),
        "none more than twice: {twice:?}"
    );
    assert!(
        twice.len() <= BATCH,
        "only A's claim in flight is repeated: {twice:?}"
    );
}

// ---------------------------------------------------------------------------
// Restarts
// ---------------------------------------------------------------------------

#[test]
fn scheduled_callbacks_survive_a_gateway_and_redis_restart_and_are_submitted_once() {
    let Some(mut store) = Shared::start("restart", true) else {
        return;
    };
    let sim = sim();
    let mut gw = store.node(&sim, &service(), "queue-polling-rate: 0.2");
    let at = iso_in(15);
    let ids: Vec<String> = (0..50)
        .map(|i| schedule(&gw, &format!("{}", 55_900_000 + i), &at))
        .collect();
    let before: Vec<Value> = ids.iter().map(|id| query_id(&gw, id)).collect();

    // The gateway dies (SIGKILL); Redis (every node of the cluster) restarts as a service
    // manager does it (SIGTERM, by PID; it writes its AOF) and loads the AOF.
    assert!(signal_pid(gw.pid(), "KILL"), "SIGKILL the gateway");
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some());
    drop(gw);
    if let Some(r) = store.redis.as_mut() {
        r.restart_graceful();
    }
    if let Some(c) = store.cluster.as_mut() {
        c.restart_graceful();
    }
    let gw = store.node(&sim, &service(), "queue-polling-rate: 0.2");
    for (id, was) in ids.iter().zip(&before) {
        let now = query_id(&gw, id);
        if now[0]["_callback_state"] == "SCHEDULED" {
            assert_eq!(&now, was, "unchanged across the restarts");
        } else {
            assert_eq!(now[0]["_desired_time"], at.as_str(), "{now}");
        }
    }
    let want: HashSet<String> = ids.iter().cloned().collect();
    let counts = wait_all_started(&sim, &want, Duration::from_secs(15) + SUBMIT_LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(sim_starts(&sim), counts);
    assert!(repeated(&counts).is_empty(), "each once: {counts:?}");
    assert_eq!(counts.len(), ids.len());
}
