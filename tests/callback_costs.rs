//! What the callback store costs (issue 18): bytes per scheduled callback on the memory store
//! and on Redis, and the Redis commands each operation sends (seen with `MONITOR`, as
//! `scripts/bench-redis` counts them). Each test prints its numbers (`--nocapture`) and
//! checks them against a bound, so a change that makes them worse fails here.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::io::Read;
use std::process::Stdio;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::{redis_cli, RedisServer, TempDir};
use gms_gateway::callback::change::{Change, Update};
use gms_gateway::callback::record::{CallbackRecord, OrsRef, CUSTOMER_NUMBER};
use gms_gateway::store::callback::{
    ClaimRequest, Field, Limits, NewCallback, Operand, ParameterThrottle, Query, Term, Throttle,
};
use gms_gateway::store::memory::MemoryStore;
use gms_gateway::store::redis::RedisStore;
use gms_gateway::store::Store;
use jiff::{SignedDuration, Timestamp};

/// Counts the bytes this process holds from the allocator.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests of this binary run one at a time: the allocation count is the process's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The merged options of a typical callback service (§12's example), the same for every
/// callback of the service.
fn options() -> Vec<(String, String)> {
    [
        ("_type", "ors"),
        ("_service_type", "callback"),
        (
            "_service",
            "http://scxml.example.com/callback/callback.scxml",
        ),
        ("_ttl", "86400"),
        ("_call_direction", "USERTERMINATED"),
        ("_media_type", "voice"),
        ("_wait_for_agent", "false"),
        ("_wait_for_user_confirm", "false"),
        ("_target", "Customer_Service@Stat_Server.GA"),
        ("_urs_virtual_queue", "SIP_VQ_SIP_Switch"),
        ("_request_time_bucket", "5"),
        ("_max_ors_submit_attempts", "3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The `i`-th scheduled callback of a day's load: its own 10-digit number, desired times
/// spread over 30 days in 5-minute buckets, its bucket booked.
fn typical(service: &str, i: u64, base: Timestamp) -> NewCallback {
    let desired = base + SignedDuration::from_mins((i % 8640) as i64 * 5);
    let mut r = CallbackRecord::new(
        service,
        &format!("555{:07}", i),
        desired,
        desired + SignedDuration::from_hours(24),
        base,
    );
    r.submit_at = desired - SignedDuration::from_secs(120);
    r.bucket = Some(desired.as_millisecond());
    r.options = options();
    NewCallback {
        record: r,
        capacity: Some(1000),
        limits: Limits::default(),
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_scheduled_callback_on_the_memory_store() {
    let _serial = SERIAL.lock().await;
    const N: u64 = 100_000;
    let base = Timestamp::now() + SignedDuration::from_hours(1);
    let store = MemoryStore::new();
    let cb = store.callbacks();
    // Warm up (the service's maps exist), then count.
    cb.create(&typical("warm", 0, base)).await.unwrap().unwrap();
    let (held, rss) = (HELD.load(Ordering::Relaxed), rss_bytes());
    for i in 0..N {
        cb.create(&typical("cb", i, base)).await.unwrap().unwrap();
    }
    let held = (HELD.load(Ordering::Relaxed) - held) as f64 / N as f64;
    let rss = rss_bytes().saturating_sub(rss) as f64 / N as f64;
    eprintln!(
        "memory store, {N} scheduled callbacks: {held:.0} bytes allocated per callback, \
         {rss:.0} bytes of RSS per callback"
    );
    assert!(held < 600.0, "{held:.0} bytes per scheduled callback");
    let q = Query::new(
        vec![Term::is(
            Field::Lookup(CUSTOMER_NUMBER.into()),
            "5550000042",
        )],
        Operand::And,
        10,
    );
    assert_eq!(cb.query(&["cb"], &q).await.unwrap().records.len(), 1);
}

fn redis_store(server: &RedisServer) -> RedisStore {
    RedisStore::single(
        &server.url(),
        "gms:",
        Duration::from_secs(10),
        &HashMap::new(),
    )
    .unwrap()
}

fn used_memory(port: u16) -> i64 {
    redis_cli(port, &["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_scheduled_callback_on_redis() {
    let _serial = SERIAL.lock().await;
    const N: u64 = 20_000;
    let dir = TempDir::new("cbcost");
    let server = RedisServer::start_in(&dir.path().join("redis"), false);
    let store = redis_store(&server);
    let cb = store.callbacks();
    let base = Timestamp::now() + SignedDuration::from_hours(1);
    cb.create(&typical("cb", N, base)).await.unwrap().unwrap();
    let before = used_memory(server.port());
    for chunk in (0..N).collect::<Vec<_>>().chunks(200) {
        let creates = chunk.iter().map(|i| {
            let new = typical("cb", *i, base);
            async move { cb.create(&new).await.unwrap().unwrap() }
        });
        futures::future::join_all(creates).await;
    }
    let per = (used_memory(server.port()) - before) as f64 / N as f64;
    let usage = |key: &str| -> i64 {
        server
            .cli(&["MEMORY", "USAGE", key, "SAMPLES", "0"])
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let one = cb.create(&typical("cb", 7, base)).await.unwrap().unwrap();
    let record = usage(&format!("gms:cr{{cb:cb}}{}", one.id.simple()));
    let mut line =
        format!("redis, {N} scheduled callbacks: {per:.0} bytes of used_memory per callback;");
    for (name, kind) in [
        ("index", "ci"),
        ("due", "cd"),
        ("expiry", "ce"),
        ("counts", "cc"),
    ] {
        let bytes = usage(&format!("gms:{kind}{{cb:cb}}")) as f64 / N as f64;
        line.push_str(&format!(" {name} {bytes:.0} B/callback,"));
    }
    eprintln!("{line} one record hash {record} B");
    assert!(
        per < 1500.0,
        "{per:.0} bytes per scheduled callback on Redis"
    );
}

/// Marks in Redis's `MONITOR` output (an `ECHO` from another client) between which one
/// operation's commands are counted.
struct Monitor {
    port: u16,
    marks: usize,
}

impl Monitor {
    fn mark(&mut self) -> String {
        self.marks += 1;
        let m = format!("mark-{}", self.marks);
        redis_cli(self.port, &["ECHO", &m]);
        m
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands_per_operation() {
    let _serial = SERIAL.lock().await;
    let dir = TempDir::new("cbrt");
    let server = RedisServer::start_in(&dir.path().join("redis"), false);
    let store = redis_store(&server);
    let cb = store.callbacks();
    let base = Timestamp::now() + SignedDuration::from_hours(1);
    let services = ["cb", "cb2", "cb3"];
    for s in services {
        for i in 0..50 {
            cb.create(&typical(s, i, base)).await.unwrap().unwrap();
        }
    }
    let limited = |i: u64| {
        let mut n = typical("cb", 1000 + i, base);
        n.limits = Limits {
            max_active: Some(1000),
            throttles: vec![
                Throttle {
                    window: Duration::from_secs(300),
                    max: 500,
                },
                Throttle {
                    window: Duration::from_secs(3600),
                    max: 1000,
                },
            ],
            per_parameter: Some(ParameterThrottle {
                values: vec![(CUSTOMER_NUMBER.into(), n.record.customer_number.clone())],
                max: 6,
            }),
            in_queue: Some(2),
        };
        n
    };
    let by_number = Query::new(
        vec![Term::is(
            Field::Lookup(CUSTOMER_NUMBER.into()),
            "5550000007",
        )],
        Operand::And,
        1000,
    );
    let buckets: Vec<i64> = (0..24)
        .map(|i| (base + SignedDuration::from_mins(i * 5)).as_millisecond())
        .collect();
    let claim = ClaimRequest {
        node: "n".into(),
        batch: 50,
        lease: Duration::from_secs(60),
        max_attempts: 3,
        recovery: None,
    };

    let mut mon = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port().to_string(),
            "MONITOR",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli MONITOR");
    let mut m = Monitor {
        port: server.port(),
        marks: 0,
    };
    let mut ops: Vec<(&str, String, String)> = Vec::new();
    // Runs the operation once to warm it up (scripts loaded), then again between two marks.
    macro_rules! measure {
        ($name:expr, $op:expr) => {{
            $op; // warm-up
            let start = m.mark();
            $op;
            let end = m.mark();
            ops.push(($name, start, end));
        }};
    }
    let mut i = 0;
    measure!("create (scheduled, bucket checked)", {
        i += 1;
        cb.create(&typical("cb", 500 + i, base))
            .await
            .unwrap()
            .unwrap()
    });
    measure!("create (every limit of 3.2)", {
        i += 1;
        cb.create(&limited(i)).await.unwrap().unwrap()
    });
    let one = cb.create(&typical("cb", 900, base)).await.unwrap().unwrap();
    measure!("get", cb.get("cb", one.id).await.unwrap());
    measure!(
        "find by id over 3 services",
        cb.find(&services, one.id).await.unwrap()
    );
    measure!(
        "query by customer number",
        cb.query(&["cb"], &by_number).await.unwrap()
    );
    measure!(
        "query by customer number over 3 services",
        cb.query(&services, &by_number).await.unwrap()
    );
    measure!(
        "booked, 24 buckets",
        cb.booked("cb", &buckets).await.unwrap()
    );
    measure!(
        "state counts, 3 services",
        cb.state_counts(&services).await.unwrap()
    );
    measure!("update (edit a property)", {
        i += 1;
        let u = Update {
            change: None,
            lookup: vec![],
            props: vec![("k".into(), Some(format!("{i}")))],
        };
        cb.update("cb", one.id, &u).await.unwrap()
    });
    measure!(
        "claim_due (nothing due)",
        cb.claim_due("cb", &claim).await.unwrap()
    );
    // A pass that claims 10 records, then their sessions written.
    for j in 0..20 {
        let mut n = typical("due", j, base);
        n.record.submit_at = Timestamp::now() - SignedDuration::from_secs(1);
        cb.create(&n).await.unwrap().unwrap();
    }
    let mut small = claim.clone();
    small.batch = 10;
    let mut claimed = Vec::new();
    measure!("claim_due (10 claimed)", {
        claimed.extend(cb.claim_due("due", &small).await.unwrap().records)
    });
    measure!("submitted", {
        let r = claimed.pop().unwrap();
        let c = Update {
            change: Some(Change::Submitted {
                node: "n".into(),
                ors: OrsRef {
                    node: "http://ors".into(),
                    session: "s".into(),
                },
            }),
            ..Update::default()
        };
        cb.update("due", r.id, &c).await.unwrap()
    });
    measure!(
        "purge_expired (none)",
        cb.purge_expired("cb", 100).await.unwrap()
    );

    // Wait (bounded) until MONITOR has shown the last mark, then stop it.
    let last = ops.last().map(|o| o.2.clone()).unwrap();
    let mut out = String::new();
    let mut stdout = mon.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut all = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&all).contains(&format!("\"{last}\"")) {
                break;
            }
        }
        all
    });
    // A command after the last mark lets the reader see it and stop.
    redis_cli(server.port(), &["PING"]);
    let seen = reader.join().unwrap_or_default();
    let _ = mon.kill();
    let _ = mon.wait();
    out.push_str(&String::from_utf8_lossy(&seen));

    let lines: Vec<&str> = out.lines().collect();
    let at = |mark: &str| {
        lines
            .iter()
            .position(|l| l.contains(&format!("\"{mark}\"")))
            .unwrap_or_else(|| panic!("{mark} not seen by MONITOR"))
    };
    let mut table = String::from("redis commands sent per operation (MONITOR):\n");
    let mut sent = HashMap::new();
    for (name, start, end) in &ops {
        let cmds: Vec<&str> = lines[at(start) + 1..at(end)]
            .iter()
            .filter(|l| !l.contains("[0 lua]") && l.contains("] \""))
            .map(|l| {
                l.split("] ")
                    .nth(1)
                    .unwrap_or("")
                    .split(' ')
                    .next()
                    .unwrap_or("")
            })
            .collect();
        table.push_str(&format!("  {name}: {} {:?}\n", cmds.len(), cmds));
        sent.insert(*name, cmds.len());
    }
    eprintln!("{table}");
    for (name, most) in [
        ("create (scheduled, bucket checked)", 1),
        ("create (every limit of 3.2)", 1),
        ("get", 1),
        ("find by id over 3 services", 3),
        ("query by customer number", 1),
        ("query by customer number over 3 services", 3),
        ("booked, 24 buckets", 1),
        ("state counts, 3 services", 3),
        ("update (edit a property)", 2),
        ("claim_due (nothing due)", 1),
        ("claim_due (10 claimed)", 1),
        ("submitted", 2),
        ("purge_expired (none)", 1),
    ] {
        assert!(
            sent[name] <= most,
            "{name}: {} commands\n{table}",
            sent[name]
        );
    }
}
