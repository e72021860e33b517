//! Zero-downtime operations (issue 6): the real `conf/reload` swaps gateway processes twice
//! while load runs (once from a foreground process given by `-p`, once from the daemon it
//! started, found through pid_file, as systemd does), then SIGTERM stops the last one; and a
//! reload whose configuration is bad leaves the running process serving.
//!
//! The load: a few threads, each on its own keep-alive connection, create an ORS service and
//! poll its status in a loop. A failure is any non-200 reply or any transport error, with one
//! exception told apart and counted on its own: a *reused* keep-alive connection that the
//! server closed before one byte of a reply came back. That is the keep-alive race every
//! HTTP/1.1 server has when it closes an idle connection just as a request goes out; Pingora
//! closes idle connections only while they wait for a request (before reading one), so the
//! request was not processed and the client may send it again on a new connection, as
//! RFC 9112 9.3.1 allows for idempotent requests. The load does exactly that, and the retry
//! is itself counted like any other request. The gateway's drain (`src/lifecycle.rs`) makes
//! the race rare: replies during the hand-over carry `Connection: close`.
//!
//! Stores: on Redis (GMS_TEST_STORE=redis or cluster) every service created during the test
//! must still answer 200 from the last process. The memory store is per process: a service
//! created before an upgrade is gone after it (asserted, as docs/operations.md says); so with it the
//! status poll follows its create only on the same connection (same process).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// The ORS service the load creates.
const SVC: &str = "request-inbound-poll";
/// Load threads (keep-alive connections).
const THREADS: usize = 4;

/// The gms block: one ORS service on the sim's node, an access log in the test's dir.
/// The load creates as fast as its threads go from one address: no per-address write rate.
fn gms(sim: &OrsSim) -> String {
    format!(
        "access_log: \"{{DIR}}/access.log\"\n\
         limits: {{create_rate_per_ip: 0}}\n\
         ors: {{max_ors_request_attempts: 3, connect_timeout_ms: 1000, socket_timeout_ms: 3000}}\n\
         services:\n  {SVC}:\n    _type: ors\n    _service: \"http://scxml.example.com/poll.scxml\"\n    \
         _ors: \"{}\"\n",
        sim.url(0)
    )
}

fn shared_store() -> bool {
    test_store() != TestStore::Memory
}

/// What the load saw, over all threads.
#[derive(Default)]
struct Tally {
    /// 200 replies.
    ok: usize,
    /// Non-200 replies and transport errors (fresh connections closed unanswered included).
    failed: usize,
    /// Reused connections closed before any byte of a reply (the keep-alive race).
    closed_reused: usize,
    /// New connections closed before any byte of a reply (counted in `failed` too).
    closed_fresh: usize,
    /// Replies that asked to close the connection (the drain).
    closes: usize,
    /// Memory store: creates whose status poll was skipped because the reply closed the
    /// connection (the poll could reach the other process).
    split: usize,
    /// The first failures, for the assertion message.
    failures: Vec<String>,
    /// Every service created.
    ids: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.closed_reused += other.closed_reused;
        self.closed_fresh += other.closed_fresh;
        self.closes += other.closes;
        self.split += other.split;
        let room = 10usize.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
        self.ids.extend(other.ids);
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }
}

/// One request; `retry`: send it once more on a new connection after the keep-alive race.
/// Returns the 200 reply.
fn call(
    c: &mut KeepAliveClient,
    t: &mut Tally,
    ok: &AtomicUsize,
    path: &str,
    body: Option<(&str, &[u8])>,
    retry: bool,
) -> Option<Resp> {
    match c.send("POST", path, body) {
        Exchange::Answered(r) if r.status == 200 => {
            t.ok += 1;
            ok.fetch_add(1, Ordering::Relaxed);
            if r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            {
                t.closes += 1;
            }
            Some(r)
        }
        Exchange::Answered(r) => {
            t.fail(format!("POST {path}: {} {}", r.status, r.text()));
            None
        }
        Exchange::ClosedBeforeAnswer {
            reused: true,
            error,
        } => {
            t.closed_reused += 1;
            eprintln!("keep-alive race on POST {path} ({error})");
            if retry {
                call(c, t, ok, path, body, false)
            } else {
                None
            }
        }
        Exchange::ClosedBeforeAnswer {
            reused: false,
            error,
        } => {
            t.closed_fresh += 1;
            t.fail(format!(
                "POST {path}: new connection closed unanswered ({error})"
            ));
            None
        }
        Exchange::Failed(e) => {
            t.fail(format!("POST {path}: {e}"));
            None
        }
    }
}

/// One load thread: create + status until `stop` (or a hard limit of time and rounds).
fn load(port: u16, stop: &AtomicBool, ok: &AtomicUsize) -> Tally {
    let shared = shared_store();
    let mut c = KeepAliveClient::new(port);
    let mut t = Tally::default();
    let hard_stop = Instant::now() + Duration::from_secs(60);
    let create_path = format!("/genesys/1/service/{SVC}");
    for n in 0..100_000u32 {
        if stop.load(Ordering::Relaxed) || Instant::now() > hard_stop {
            break;
        }
        let form = form_encode(&[("first_name", "load"), ("n", &n.to_string())]);
        let body = Some(("application/x-www-form-urlencoded", form.as_bytes()));
        let Some(created) = call(&mut c, &mut t, ok, &create_path, body, true) else {
            continue;
        };
        let Some(id) = serde_json::from_slice::<serde_json::Value>(&created.body)
            .ok()
            .and_then(|v| v["_id"].as_str().map(str::to_string))
        else {
            t.fail(format!("create reply without _id: {}", created.text()));
            continue;
        };
        t.ids.push(id.clone());
        if !shared && !c.has_connection() {
            t.split += 1;
            continue;
        }
        let status = format!("/genesys/1/service/{id}/status");
        call(&mut c, &mut t, ok, &status, None, shared);
    }
    t
}

/// The names of a process's threads (`/proc/PID/task/*/comm`, 15 characters at most).
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a reload succeeded and returns the new PID.
fn reloaded(r: &Reloaded, what: &str) -> u32 {
    assert_eq!(
        r.code,
        Some(0),
        "{what} failed\n--- stderr ---\n{}\n--- stdout ---\n{}",
        r.stderr,
        r.stdout
    );
    r.new_pid()
        .unwrap_or_else(|| panic!("{what}: no PID on stdout: {:?}", r.stdout))
}

/// Waits until `ok` grew past `from` (bounded): the load is being served.
fn served_since(ok: &AtomicUsize, from: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::Relaxed) <= from {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn two_reloads_under_load_fail_no_request_and_sigterm_stops_the_last_process() {
    let sim = OrsSim::start(1);
    let mut gw = Gateway::start(&gms(&sim));
    let config = gw.config_path().to_path_buf();
    let dir = gw.dir().to_path_buf();
    let first = gw.pid();
    let port = gw.port();
    let before = gw.create_ok(SVC, &[("first_name", "before")]);
    let before_id = str_field(&before, "_id").to_string();

    let stop = AtomicBool::new(false);
    let ok = AtomicUsize::new(0);
    let total = Mutex::new(Tally::default());
    let (second, third) = std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let t = load(port, &stop, &ok);
                total.lock().unwrap().add(t);
            });
        }
        // Whatever happens below, the load threads stop (and the scope can end).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        assert!(served_since(&ok, 0), "the load got no 200 at all");
        std::thread::sleep(Duration::from_millis(1000));

        // 1: the foreground process the harness started -> a daemon.
        let at = ok.load(Ordering::Relaxed);
        let r = run_reload(&config, &["-p", &first.to_string()], &dir, "1");
        let second = reloaded(&r, "reload 1 (-p)");
        gw.adopt(second);
        assert_ne!(second, first);
        assert!(
            ok.load(Ordering::Relaxed) > at,
            "no request was served during reload 1"
        );
        let exit = gw.wait_exit(Duration::from_secs(20));
        assert!(
            exit.is_some_and(|e| e.success()),
            "the old process did not exit cleanly after SIGQUIT: {exit:?}\n{}",
            gw.stderr()
        );
        assert!(served_since(&ok, ok.load(Ordering::Relaxed)));

        // 2: daemon -> daemon, the old PID read from pid_file (the systemd way).
        let at = ok.load(Ordering::Relaxed);
        let r = run_reload(&config, &["-w"], &dir, "2");
        let third = reloaded(&r, "reload 2 (pid_file, -w)");
        gw.adopt(third);
        assert_ne!(third, second);
        assert!(
            ok.load(Ordering::Relaxed) > at,
            "no request was served during reload 2"
        );
        assert!(
            !process_running(second),
            "reload -w returned before the old process exited"
        );
        assert!(served_since(&ok, ok.load(Ordering::Relaxed)));
        std::thread::sleep(Duration::from_millis(500));
        (second, third)
    });
    let t = total.into_inner().unwrap();
    eprintln!(
        "load: {} ok, {} failed ({} new connections closed unanswered), {} keep-alive races \
         (retried), {} replies with Connection: close, \
         {} services created, {} polls skipped (memory store, other process)",
        t.ok,
        t.failed,
        t.closed_fresh,
        t.closed_reused,
        t.closes,
        t.ids.len(),
        t.split
    );
    assert_eq!(
        t.failed, 0,
        "failed requests during the reloads: {:#?}",
        t.failures
    );
    // A connection can be caught by the race once per process that closes it.
    assert!(
        t.closed_reused <= THREADS * 2,
        "{} keep-alive races for {THREADS} connections and 2 hand-overs",
        t.closed_reused
    );
    // Without the drain, Pingora closes only after requests read once it stopped accepting:
    // at most one in flight per connection and hand-over. The drain closes after every reply
    // of the old process for 5 seconds.
    assert!(
        t.closes > THREADS * 2,
        "only {} replies asked to close their connection: no drain seen",
        t.closes
    );

    // The last process has every service (shared store) or none from before (memory store).
    if shared_store() {
        let mut ids = t.ids.clone();
        ids.push(before_id.clone());
        let chunk = ids.len().div_ceil(THREADS);
        let lost: Vec<String> = std::thread::scope(|s| {
            let checks: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut c = KeepAliveClient::new(port);
                        let mut lost = Vec::new();
                        for id in part {
                            match c.send("POST", &format!("/genesys/1/service/{id}/status"), None) {
                                Exchange::Answered(r) if r.status == 200 => {}
                                other => lost.push(format!("{id}: {other:?}")),
                            }
                        }
                        lost
                    })
                })
                .collect();
            checks.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert!(
            lost.is_empty(),
            "{} of {} services lost across the reloads: {:?}",
            lost.len(),
            ids.len(),
            &lost[..lost.len().min(5)]
        );
    } else {
        let mut c = KeepAliveClient::new(port);
        match c.send(
            "POST",
            &format!("/genesys/1/service/{before_id}/status"),
            None,
        ) {
            Exchange::Answered(r) => assert_eq!(
                r.status, 404,
                "memory store: a service from before the upgrade should be gone"
            ),
            other => panic!("status after the upgrade: {other:?}"),
        }
    }

    // The daemons' own threads run although they were started before Pingora forked.
    let marker = format!("/genesys/1/admin/node/health?marker={third}");
    assert_eq!(get(&gw.url(&marker), &[]).status, 200);
    let logged = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::read_to_string(dir.join("access.log")).is_ok_and(|l| l.contains(&marker))
    });
    assert!(logged, "the daemon's access log has no line for {marker}");
    if !shared_store() {
        assert!(
            thread_names(third).iter().any(|n| n == "gms-store-sweep"),
            "no store sweeper thread in the daemon: {:?}",
            thread_names(third)
        );
    }

    // SIGTERM: graceful stop (grace_period_seconds 1 + graceful_shutdown_timeout_seconds 1).
    assert!(signal_pid(third, "TERM"));
    assert!(
        wait_gone(third, Duration::from_secs(15)),
        "PID {third} still runs 15 s after SIGTERM"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", gw.port())).is_err(),
        "something still listens on the port after SIGTERM"
    );
    assert!(!process_running(second));
}

#[test]
fn a_reload_with_a_bad_configuration_leaves_the_running_process_serving() {
    let mut gw = Gateway::start(STD_GMS);
    let good = std::fs::read_to_string(gw.config_path()).expect("config");
    let pid = gw.pid().to_string();
    let health = gw.url("/genesys/1/admin/node/health");

    // Fails `gms-gateway -t`.
    let bad = gw.dir().join("bad.yaml");
    std::fs::write(&bad, good.replace("gms:\n", "gms:\n  no_such_key: 1\n")).unwrap();
    let r = run_reload(&bad, &["-p", &pid], gw.dir(), "bad");
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert!(r.stderr.contains("gms.no_such_key"), "stderr: {}", r.stderr);
    assert!(r.stderr.contains("untouched"), "stderr: {}", r.stderr);
    gw.assert_alive();
    assert_eq!(get(&health, &[]).status, 200);

    // Passes `-t` but cannot start (its access log cannot be opened): the new process exits
    // before it asks for the sockets.
    let broken = gw.dir().join("broken.yaml");
    let log = gw.dir().join("no-such-dir/access.log");
    let text = good.replace(
        "gms:\n",
        &format!("gms:\n  access_log: \"{}\"\n", log.display()),
    );
    std::fs::write(&broken, text).unwrap();
    let r = run_reload(&broken, &["-p", &pid], gw.dir(), "broken");
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("before asking for the sockets"),
        "stderr: {}",
        r.stderr
    );
    gw.assert_alive();
    assert_eq!(get(&health, &[]).status, 200);
    assert!(
        !gw.dir().join("gw.pid").exists(),
        "a new process daemonized although the reload was refused"
    );

    // No such running process.
    let r = run_reload(gw.config_path(), &["-p", "999999999"], gw.dir(), "nopid");
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    gw.assert_alive();
}

#[test]
fn a_reload_onto_tls_listeners_only_checks_https_and_closes_the_plain_port() {
    let pki = TempDir::new("pki");
    let certs = TestCerts::make(pki.path());
    let tls_port = free_port();
    let tls = format!(
        "tls_listen: [{{addr: \"127.0.0.1:{tls_port}\", cert: \"{}\", key: \"{}\"}}]\n",
        certs.cert.display(),
        certs.key.display()
    );
    let mut gw = Gateway::start(&format!("{tls}{STD_GMS}"));
    let pid = gw.pid().to_string();
    // The file edited to drop its plain listener (the same path, so the harness still knows
    // the new process as this gateway): `-t` gives an https health URL, which the script must
    // reach (with a plain one it would poll port 80 and give up).
    let config = gw.config_path().to_path_buf();
    let text = std::fs::read_to_string(&config).expect("config");
    let plain = format!("  listen: [\"127.0.0.1:{}\"]\n", gw.port());
    assert!(text.contains(&plain), "no plain listener line in:\n{text}");
    std::fs::write(&config, text.replace(&plain, "")).unwrap();

    let r = run_reload(&config, &["-p", &pid, "-w"], gw.dir(), "tls-only");
    let new = reloaded(&r, "reload onto TLS only");
    gw.adopt(new);
    assert_ne!(new.to_string(), pid);
    assert!(
        runs_config(new, &config),
        "PID {new} does not run the config"
    );
    // The old process is gone (-w). The port the new configuration dropped must be closed,
    // not held open by the new process without an acceptor, where clients would wait.
    let dropped = std::net::SocketAddr::from(([127, 0, 0, 1], gw.port()));
    let refused = std::net::TcpStream::connect_timeout(&dropped, Duration::from_secs(2));
    assert!(
        refused.is_err(),
        "the dropped plain listener 127.0.0.1:{} still accepts connections",
        gw.port()
    );
}
