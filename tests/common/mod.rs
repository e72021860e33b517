//! Shared harness for the black-box integration tests.
//!
//! Every test starts its own gateway (`env!("CARGO_BIN_EXE_gms-gateway")`) on a free
//! loopback port with its own temp dir (config, pid file, upgrade socket, logs), and
//! talks HTTP to it on 127.0.0.1 only. The child is killed (and waited for) when the
//! guard is dropped. Temp dirs are removed on drop unless the test is panicking, so a
//! failed test leaves the gateway's `stderr.log` / `stdout.log` behind for inspection.
//!
//! `Gateway::start_full` takes a whole config file in which the tokens `{PORT}` and
//! `{DIR}` are replaced with the listen port and the test's temp dir.
//!
//! `GMS_TEST_STORE=memory|redis|cluster` (default memory) picks the store of every gateway
//! whose config has no `storage:` of its own: `redis` starts a `redis-server` per gateway
//! (free loopback port, no persistence, killed with the gateway), `cluster` a 3-master Redis
//! Cluster shared by the test binary, each gateway with its own key prefix. Every Redis process
//! started here also has a watchdog that kills it when the test binary is gone.
#![allow(dead_code)]

pub mod callback;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The internal credentials the test configs give match-interaction (`gms.internal_auth`):
/// user `ivr`, password `ivr-secret`. [`Gateway::match_call`] sends them.
pub const INTERNAL_AUTH: &str = "internal_auth: {users: {ivr: ivr-secret}}";
/// The `Authorization` header of [`INTERNAL_AUTH`]'s user.
pub const IVR: (&str, &str) = ("Authorization", "Basic aXZyOml2ci1zZWNyZXQ=");

/// The gms block most tests use.
pub const STD_GMS: &str = r#"internal_auth: {users: {ivr: ivr-secret}}
resources:
  DNIS: ["8003449999", "8003449998", "8003449997"]
  SOLO: ["8005550001"]
services:
  request-interaction: {_type: builtin, _service: request-interaction}
  request-access: {_type: builtin, _service: request-access}
  match-interaction: {_type: builtin, _service: match-interaction}
  request-inbound-callback: {_type: builtin, _service: request-interaction}
"#;

/// A gms block with `gms.limits.reservations_per_phone: 2` added, for
/// [`check_reservations_per_phone`] (which needs `STD_GMS`'s services and DNIS / SOLO groups).
pub fn two_per_phone(gms: &str) -> String {
    format!("limits: {{reservations_per_phone: 2}}\n{gms}")
}

/// `gms.limits.reservations_per_phone: 2` at work, over one gateway or several sharing a
/// store (each create goes to the next node): a third live reservation for a phone in a group
/// is 429 JSON and creates nothing; another phone, or another group, is not held back; a
/// place frees when a service is deleted, when a call matches, and when a reservation expires.
pub fn check_reservations_per_phone(gws: &[Gateway]) {
    let mut turn = 0;
    let mut node = || {
        turn += 1;
        &gws[turn % gws.len()]
    };
    let coded = |phone: &'static str, ttl: &'static str| {
        vec![
            ("_phone_number", phone),
            ("_provide_code", "true"),
            ("_ttl", ttl),
        ]
    };
    let a = coded("5550001", "60");
    let first = ok_json(&node().create("request-interaction", &a));
    let second = ok_json(&node().create("request-interaction", &a));
    let refused = node().create("request-interaction", &a);
    let e = assert_error(&refused, 429);
    assert_eq!(e["exception"], "TooManyRequestsException");
    assert!(
        e["message"].as_str().unwrap_or("").contains("5550001"),
        "{e}"
    );
    assert!(refused.header("retry-after").is_none());
    ok_json(&node().create("request-interaction", &coded("5550002", "60")));
    ok_json(&node().create(
        "request-interaction",
        &[("_phone_number", "5550001"), ("_resource_group", "SOLO")],
    ));

    // Deleting a service frees its place.
    let id = str_field(&first, "_id").to_string();
    ok_json(&delete(&node().service_url(&id), &[]));
    ok_json(&node().create("request-interaction", &a));
    assert_error(&node().create("request-interaction", &a), 429);

    // So does the call that matches a reservation.
    let number = str_field(&second, "_access_number").to_string();
    let code = str_field(&second, "_access_code").to_string();
    ok_json(&node().match_call(&[("_access_number", &number), ("_access_code", &code)]));
    ok_json(&node().create("request-interaction", &a));
    assert_error(&node().create("request-interaction", &a), 429);

    // And expiry: two reservations of one second, then the place is free again.
    let short = coded("5550003", "1");
    ok_json(&node().create("request-interaction", &short));
    ok_json(&node().create("request-interaction", &short));
    assert_error(&node().create("request-interaction", &short), 429);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut freed = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let r = node().create("request-interaction", &short);
        if r.status == 200 {
            freed = true;
            break;
        }
        assert_error(&r, 429);
        if Instant::now() > deadline {
            break;
        }
    }
    assert!(freed, "no place freed 5 s after one-second reservations");
}

/// The DNIS pool of `STD_GMS`, in configured order.
pub const DNIS: [&str; 3] = ["8003449999", "8003449998", "8003449997"];
/// The single number of the SOLO pool of `STD_GMS`.
pub const SOLO: &str = "8005550001";

/// How long the gateway / simulator may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Ports and temp dirs
// ---------------------------------------------------------------------------

/// A loopback port that was free a moment ago (bind 127.0.0.1:0, read it, drop), never one
/// this test process handed out before: the kernel may offer a just-released port again
/// before its new owner binds it, and Pingora binds with SO_REUSEPORT, so two gateways of
/// parallel tests could otherwise share one port and split its traffic.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no fresh loopback port in 1000 tries");
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A per-test directory under the system temp dir; removed on drop unless panicking.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("gmsgw-{tag}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// Indent every line of `text` by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The standard config file around a gms block, with `{PORT}` and `{DIR}` placeholders.
pub fn gateway_yaml(gms_yaml: &str) -> String {
    format!(
        "version: 1\n\
         threads: 2\n\
         pid_file: {{DIR}}/gw.pid\n\
         upgrade_sock: {{DIR}}/gw.sock\n\
         grace_period_seconds: 1\n\
         graceful_shutdown_timeout_seconds: 1\n\
         gms:\n  listen: [\"127.0.0.1:{{PORT}}\"]\n{}\n",
        indent(gms_yaml, 2)
    )
}

/// Fill the `{PORT}` and `{DIR}` placeholders.
pub fn fill(template: &str, port: u16, dir: &Path) -> String {
    template
        .replace("{PORT}", &port.to_string())
        .replace("{DIR}", &dir.display().to_string())
}

// ---------------------------------------------------------------------------
// The gateway under test
// ---------------------------------------------------------------------------

pub struct Gateway {
    child: Child,
    port: u16,
    config: PathBuf,
    /// Processes that took over from `child` (graceful upgrade, `conf/reload`): daemons, not
    /// our children, killed by PID on drop.
    successors: Vec<u32>,
    /// The Redis this gateway got from `GMS_TEST_STORE=redis` (dropped after the gateway,
    /// before its dir).
    _redis: Option<RedisServer>,
    dir: TempDir,
}

enum StartError {
    Exited(ExitStatus),
    Timeout,
}

impl Gateway {
    /// Start the gateway with the standard top-level keys and `gms_yaml` under `gms:`.
    pub fn start(gms_yaml: &str) -> Gateway {
        Gateway::start_full(&gateway_yaml(gms_yaml))
    }

    /// Start the gateway with a whole config file (`{PORT}` / `{DIR}` placeholders).
    pub fn start_full(template: &str) -> Gateway {
        Gateway::start_full_env(template, &[])
    }

    /// `start`, with extra environment variables for the gateway process.
    pub fn start_env(gms_yaml: &str, env: &[(&str, &str)]) -> Gateway {
        Gateway::start_full_env(&gateway_yaml(gms_yaml), env)
    }

    /// `start_full`, with extra environment variables for the gateway process.
    pub fn start_full_env(template: &str, env: &[(&str, &str)]) -> Gateway {
        // The free port may be taken by someone else between our probe and the
        // gateway's bind: try again (a bounded number of times) in that case.
        for attempt in 1..=3 {
            let port = free_port();
            let dir = TempDir::new("gw");
            let config = dir.file("gateway.yaml");
            let (text, redis) = with_test_store(&fill(template, port, dir.path()), dir.path());
            fs::write(&config, text).expect("write config");
            let stdout = fs::File::create(dir.file("stdout.log")).expect("stdout.log");
            let stderr = fs::File::create(dir.file("stderr.log")).expect("stderr.log");
            let child = Command::new(env!("CARGO_BIN_EXE_gms-gateway"))
                .arg("-c")
                .arg(&config)
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr))
                .spawn()
                .expect("spawn gms-gateway");
            let mut gw = Gateway {
                child,
                port,
                config,
                successors: Vec::new(),
                _redis: redis,
                dir,
            };
            match gw.wait_ready() {
                Ok(()) => return gw,
                Err(StartError::Exited(status)) => {
                    let err = gw.stderr();
                    let in_use = err.contains("in use") || err.contains("os error 98");
                    if in_use && attempt < 3 {
                        continue;
                    }
                    panic!(
                        "gateway exited during startup ({status}); config {}:\n{}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                        gw.config.display(),
                        read_lossy(&gw.config),
                        err,
                        gw.stdout()
                    );
                }
                Err(StartError::Timeout) => {
                    let _ = gw.child.kill();
                    let _ = gw.child.wait();
                    panic!(
                        "gateway not healthy within {READY_TIMEOUT:?} on port {}; config {}:\n{}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                        gw.port,
                        gw.config.display(),
                        read_lossy(&gw.config),
                        gw.stderr(),
                        gw.stdout()
                    );
                }
            }
        }
        unreachable!("the loop either returns or panics")
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("/genesys/1/admin/node/health");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(1))
            .max_idle_connections(0)
            .redirects(0)
            .build();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError::Exited(status));
            }
            if let Ok(r) = agent.get(&url).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(StartError::Timeout)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.file("stderr.log"))
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.dir.file("stdout.log"))
    }

    /// Panics (with the gateway's stderr) if the process has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "gateway died ({status}); stderr:\n{}",
                read_lossy(&self.dir.file("stderr.log"))
            );
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A daemon a failed reload started before the test could adopt it is in pid_file.
        let in_pid_file = fs::read_to_string(self.dir.file("gw.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        for pid in self.successors.iter().copied().chain(in_pid_file) {
            // Only while it is still this gateway (runs this config): a PID can be reused.
            if runs_config(pid, &self.config) {
                signal_pid(pid, "KILL");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Graceful upgrade: conf/reload and the processes it starts
// ---------------------------------------------------------------------------

impl Gateway {
    /// The PID of the process the harness started.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config file the gateway runs.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Waits (bounded) for the process the harness started to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Takes charge of a process that took over from this gateway: it is killed on drop, or
    /// when the test binary dies first (watchdog).
    pub fn adopt(&mut self, pid: u32) {
        watchdog(pid);
        self.successors.push(pid);
    }
}

/// Does `pid` run a gms-gateway on `config` (its command line names the file)?
pub fn runs_config(pid: u32, config: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let want = config.as_os_str().as_encoded_bytes();
    process_running(pid) && cmdline.split(|b| *b == 0).any(|arg| arg == want)
}

/// Whether `pid` exists and is not a zombie.
pub fn process_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// `kill -SIG pid`; true when the signal was sent.
pub fn signal_pid(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits (bounded) until `pid` is gone; true if it went.
pub fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while process_running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// What one bounded run of a command (`conf/reload`, `gms-gateway -t`) did.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// What `conf/reload` did.
pub type Reloaded = Finished;

impl Finished {
    /// The new process's PID (the script's last stdout line), when it succeeded.
    pub fn new_pid(&self) -> Option<u32> {
        self.stdout
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
    }
}

/// Waits for `child` up to `limit`; past it, stops it (SIGTERM first when `term_grace` is
/// given, so it can stop what it started; then SIGKILL) and returns `None`.
pub fn wait_or_kill(
    child: &mut Child,
    limit: Duration,
    term_grace: Option<Duration>,
) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(grace) = term_grace {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Runs the real `conf/reload` with `args` (after `-c <config>`), the gateway binary of this
/// build, a 60 s deadline; output goes to files in `dir` (the new daemon keeps writing its
/// log to the stderr file).
pub fn run_reload(config: &Path, args: &[&str], dir: &Path, tag: &str) -> Reloaded {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/reload");
    let mut cmd = Command::new(&script);
    cmd.arg("-c")
        .arg(config)
        .args(args)
        .env("GMS_GATEWAY", env!("CARGO_BIN_EXE_gms-gateway"));
    run_logged(
        &mut cmd,
        &dir.join(format!("reload-{tag}")),
        Duration::from_secs(60),
    )
}

/// Runs `cmd` with its output in `<base>.stdout` / `<base>.stderr` (files, so a daemon it
/// leaves behind cannot hold a pipe open), within `limit` (else it is killed and the test
/// fails with its stderr).
pub fn run_logged(cmd: &mut Command, base: &Path, limit: Duration) -> Finished {
    let out = base.with_extension("stdout");
    let err = base.with_extension("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(fs::File::create(&out).expect("stdout file")))
        .stderr(Stdio::from(fs::File::create(&err).expect("stderr file")))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_or_kill(&mut child, limit, None).unwrap_or_else(|| {
        panic!(
            "{cmd:?} did not exit within {limit:?}; stderr:\n{}",
            read_lossy(&err)
        )
    });
    Finished {
        code: status.code(),
        stdout: read_lossy(&out),
        stderr: read_lossy(&err),
    }
}

// ---------------------------------------------------------------------------
// Redis for the gateways under test (GMS_TEST_STORE)
// ---------------------------------------------------------------------------

/// Which store the black-box tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStore {
    Memory,
    Redis,
    Cluster,
}

/// `GMS_TEST_STORE`: `memory` (default), `redis` or `cluster`.
pub fn test_store() -> TestStore {
    match std::env::var("GMS_TEST_STORE").as_deref() {
        Err(_) | Ok("") | Ok("memory") => TestStore::Memory,
        Ok("redis") => TestStore::Redis,
        Ok("cluster") => TestStore::Cluster,
        Ok(other) => panic!("GMS_TEST_STORE={other}: expected memory, redis or cluster"),
    }
}

/// A key prefix no other gateway of this test run uses.
pub fn unique_prefix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("t{}-{n}:", std::process::id())
}

/// Adds the `storage:` block `GMS_TEST_STORE` asks for to a config without one (a config
/// that sets its own storage keeps it). Returns the text and the Redis started for it.
fn with_test_store(config: &str, dir: &Path) -> (String, Option<RedisServer>) {
    let lines: Vec<&str> = config.lines().collect();
    let Some(gms_at) = lines.iter().position(|l| l.trim_end() == "gms:") else {
        return (config.to_string(), None);
    };
    // The indentation of the keys under `gms:` (from its first key line).
    let pad: String = lines[gms_at + 1..]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.chars().take_while(|c| *c == ' ').collect())
        .filter(|p: &String| !p.is_empty())
        .unwrap_or_else(|| "  ".into());
    let has_own = lines[gms_at + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .any(|l| {
            l.strip_prefix(pad.as_str())
                .is_some_and(|rest| rest.starts_with("storage:") || rest.starts_with("storage :"))
        });
    let (block, redis) = match test_store() {
        _ if has_own => return (config.to_string(), None),
        TestStore::Memory => return (config.to_string(), None),
        TestStore::Redis => {
            let r = RedisServer::start_in(&dir.join("redis"), false);
            let block = format!(
                "{pad}storage: {{backend: redis, url: \"{}\", prefix: \"{}\"}}",
                r.url(),
                unique_prefix()
            );
            (block, Some(r))
        }
        TestStore::Cluster => {
            let nodes = shared_cluster()
                .iter()
                .map(|u| format!("\"{u}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let block = format!(
                "{pad}storage: {{backend: redis, cluster: [{nodes}], prefix: \"{}\"}}",
                unique_prefix()
            );
            (block, None)
        }
    };
    let mut out = String::with_capacity(config.len() + block.len() + 1);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i == gms_at {
            out.push_str(&block);
            out.push('\n');
        }
    }
    (out, redis)
}

/// Kills `pid` once this test process (or `pid` itself) is gone: statics are never dropped,
/// and a killed test binary runs no destructors.
fn watchdog(pid: u32) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null; exit 0",
        me = std::process::id()
    );
    spawn_sh(&script);
}

/// Runs a shell script in the background, detached from the test's stdio: cleanup that must
/// outlive (or watch) this test process.
fn spawn_sh(script: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// A test CA and a server certificate it signed, valid for `127.0.0.1`, `::1` and `localhost`,
/// made with `openssl` (scripts/deps installs it). PEM files, valid for two days.
pub struct TestCerts {
    /// The CA certificate (`ca.pem`): what a client must trust.
    pub ca: PathBuf,
    /// The server certificate (`server.pem`).
    pub cert: PathBuf,
    /// The server's private key (`server.key`).
    pub key: PathBuf,
}

impl TestCerts {
    /// Makes a new CA and server certificate in `dir` (created); another call in another dir
    /// gives an unrelated CA.
    pub fn make(dir: &Path) -> TestCerts {
        fs::create_dir_all(dir).expect("certs dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .expect("openssl (scripts/deps installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let new_key = ["-newkey", "rsa:2048", "-nodes"];
        run(&[
            &["req", "-x509", "-days", "2"][..],
            &new_key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=gms-test-ca",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &new_key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n",
        )
        .expect("ext.cnf");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

/// One `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    /// With TLS: the CA file clients must trust (the server listens only with TLS then).
    tls_ca: Option<PathBuf>,
}

impl RedisServer {
    /// A server in `dir` (created): no persistence, or with `aof` the append-only file as
    /// the README recommends (`appendonly yes`, `appendfsync everysec`).
    pub fn start_in(dir: &Path, aof: bool) -> RedisServer {
        let mut args: Vec<String> = vec!["--save".into(), "".into()];
        if aof {
            args.extend(["--appendonly", "yes", "--appendfsync", "everysec"].map(String::from));
        } else {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        RedisServer::start_with(dir, &args)
    }

    /// A server with extra `redis-server` arguments, in `dir` (created).
    pub fn start_with(dir: &Path, extra: &[String]) -> RedisServer {
        fs::create_dir_all(dir).expect("redis dir");
        for attempt in 1..=3 {
            let mut r = RedisServer {
                child: None,
                port: free_port(),
                dir: dir.to_path_buf(),
                args: extra.to_vec(),
                tls_ca: None,
            };
            match r.spawn() {
                Ok(()) => return r,
                Err(e) if attempt < 3 => eprintln!("redis-server start failed, retrying: {e}"),
                Err(e) => panic!("redis-server did not start: {e}"),
            }
        }
        unreachable!("the loop either returns or panics")
    }

    /// A server that listens only with TLS, on a certificate made by [`TestCerts::make`] in
    /// `dir` (see [`RedisServer::tls_ca`]). No persistence.
    pub fn start_tls(dir: &Path) -> RedisServer {
        fs::create_dir_all(dir).expect("redis dir");
        let certs = TestCerts::make(dir);
        let p = |f: &Path| f.display().to_string();
        let args: Vec<String> = vec![
            "--tls-cert-file".into(),
            p(&certs.cert),
            "--tls-key-file".into(),
            p(&certs.key),
            "--tls-ca-cert-file".into(),
            p(&certs.ca),
            "--tls-auth-clients".into(),
            "no".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
        ];
        for attempt in 1..=3 {
            let mut r = RedisServer {
                child: None,
                port: free_port(),
                dir: dir.to_path_buf(),
                args: args.clone(),
                tls_ca: Some(certs.ca.clone()),
            };
            match r.spawn() {
                Ok(()) => return r,
                Err(e) if attempt < 3 => eprintln!("redis-server start failed, retrying: {e}"),
                Err(e) => panic!("redis-server (TLS) did not start: {e}"),
            }
        }
        unreachable!("the loop either returns or panics")
    }

    /// The CA file a client must trust, for a TLS server.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .expect("redis.log");
        let mut cmd = Command::new("redis-server");
        match &self.tls_ca {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(_) => cmd
                .arg("--port")
                .arg("0")
                .arg("--tls-port")
                .arg(self.port.to_string()),
        };
        let child = cmd
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("spawn redis-server (is it installed? scripts/deps): {e}"))?;
        watchdog(child.id());
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!(
                    "redis-server exited ({status}): {}",
                    read_lossy(&self.dir.join("redis.log"))
                ));
            }
            if self.cli(&["PING"]).trim() == "PONG" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(format!(
            "redis-server on port {} not ready in time",
            self.port
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for a TLS server)
    pub fn url(&self) -> String {
        match self.tls_ca {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
        }
    }

    /// Runs `redis-cli -p <port> args...` (3 s timeout) and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        match &self.tls_ca {
            None => redis_cli(self.port, args),
            Some(ca) => {
                let ca = ca.display().to_string();
                let mut all = vec!["--tls", "--cacert", ca.as_str()];
                all.extend_from_slice(args);
                redis_cli(self.port, &all)
            }
        }
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and dir (an AOF there is loaded).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn().expect("redis-server restart");
    }

    /// Restarts it the way a service manager does: SIGTERM (Redis writes and fsyncs its AOF
    /// on the way out), wait for the exit (bounded), start again on the same port and dir.
    pub fn restart_graceful(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.child = None;
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn().expect("redis-server restart");
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the server process.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill -{sig} redis-server failed");
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `redis-cli -p <port> args...` on 127.0.0.1, bounded to 3 s; stdout ("" on failure).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let mut child = match Command::new("redis-cli")
        .arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return String::new();
            }
        }
    }
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    out
}

/// A Redis Cluster of `n` masters (no replicas), each on its own free port.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    _dir: TempDir,
}

impl RedisCluster {
    /// `n` masters without persistence.
    pub fn start(n: usize) -> RedisCluster {
        RedisCluster::start_persisted(n, false)
    }

    /// `n` masters; with `aof` each keeps the append-only file as the README recommends
    /// (`appendonly yes`, `appendfsync everysec`), so that [`RedisCluster::restart_graceful`]
    /// keeps the data.
    pub fn start_persisted(n: usize, aof: bool) -> RedisCluster {
        let dir = TempDir::new("cluster");
        let nodes: Vec<RedisServer> = (0..n)
            .map(|i| {
                let extra: Vec<String> = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--save",
                    "",
                    "--appendonly",
                    if aof { "yes" } else { "no" },
                    "--appendfsync",
                    "everysec",
                ]
                .map(String::from)
                .to_vec();
                RedisServer::start_with(&dir.path().join(format!("node{i}")), &extra)
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|r| format!("127.0.0.1:{}", r.port()))
            .collect();
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        cmd.args(&addrs);
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_ok();
        cluster
    }

    /// Waits (at most 20 s) until every node sees the whole cluster as ok.
    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &self.nodes {
            loop {
                if node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster not ok within 20 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Restarts every node as a service manager does ([`RedisServer::restart_graceful`]: by
    /// PID, SIGTERM, same port and dir), then waits until the cluster is ok again.
    pub fn restart_graceful(&mut self) {
        for node in &mut self.nodes {
            node.restart_graceful();
        }
        self.wait_ok();
    }

    /// The nodes' `redis://` URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// The cluster shared by every gateway of this test binary under `GMS_TEST_STORE=cluster`
/// (each gateway with its own key prefix); its processes end with the binary (watchdogs).
pub fn shared_cluster() -> Vec<String> {
    static CLUSTER: OnceLock<Vec<String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let c = RedisCluster::start(3);
            let urls = c.urls();
            // Kept for the whole binary: the watchdogs stop the servers when it exits, and
            // this one removes their dir after them.
            let script = format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; sleep 2; rm -rf '{}'",
                std::process::id(),
                c._dir.path().display()
            );
            spawn_sh(&script);
            std::mem::forget(c);
            urls
        })
        .clone()
}

// ---------------------------------------------------------------------------
// The ORS simulator / echo web backend
// ---------------------------------------------------------------------------

pub struct OrsSim {
    child: Child,
    /// `https` when the instances speak TLS, else `http`.
    scheme: &'static str,
    ports: Vec<u16>,
    control: u16,
    dir: TempDir,
}

impl OrsSim {
    /// Start `ors-sim` with `n` ORS / echo listeners and a control listener.
    pub fn start(n: usize) -> OrsSim {
        OrsSim::start_with(n, None, &[])
    }

    /// `start`, the instances speaking HTTPS with `certs`' server certificate (the control
    /// listener stays plain HTTP).
    pub fn start_tls(n: usize, certs: &TestCerts) -> OrsSim {
        OrsSim::start_with(n, Some(certs), &[])
    }

    /// `start` with more command-line arguments (e.g. `--callback ...`).
    pub fn start_args(n: usize, args: &[&str]) -> OrsSim {
        OrsSim::start_with(n, None, args)
    }

    fn start_with(n: usize, tls: Option<&TestCerts>, args: &[&str]) -> OrsSim {
        assert!(n >= 1, "at least one instance");
        let dir = TempDir::new("sim");
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let control = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ors-sim"));
        for p in &ports {
            cmd.arg("--listen").arg(format!("127.0.0.1:{p}"));
        }
        cmd.arg("--control").arg(format!("127.0.0.1:{control}"));
        if let Some(c) = tls {
            cmd.arg("--tls-cert")
                .arg(&c.cert)
                .arg("--tls-key")
                .arg(&c.key);
        }
        cmd.args(args);
        let stdout = fs::File::create(dir.file("stdout.log")).expect("stdout.log");
        let stderr = fs::File::create(dir.file("stderr.log")).expect("stderr.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn ors-sim");
        let mut sim = OrsSim {
            child,
            scheme: if tls.is_some() { "https" } else { "http" },
            ports,
            control,
            dir,
        };
        sim.wait_ready();
        sim
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<u16> = self.ports.clone();
        pending.push(self.control);
        while !pending.is_empty() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ors-sim exited during startup ({status}); stderr:\n{}",
                    read_lossy(&self.dir.file("stderr.log"))
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "ors-sim ports {pending:?} not accepting within {READY_TIMEOUT:?}; stderr:\n{}",
                    read_lossy(&self.dir.file("stderr.log"))
                );
            }
            pending.retain(|p| {
                TcpStream::connect_timeout(
                    &format!("127.0.0.1:{p}").parse().expect("addr"),
                    Duration::from_millis(500),
                )
                .is_err()
            });
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// `127.0.0.1:<port i>`
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// `http://127.0.0.1:<port i>` (`https://` with TLS)
    pub fn url(&self, i: usize) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.ports[i])
    }

    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.control)
    }

    /// `GET {control}/sim/log` as JSON.
    pub fn log(&self) -> Value {
        let r = get(&format!("{}/sim/log", self.control_url()), &[]);
        assert_eq!(r.status, 200, "GET /sim/log: {}", r.text());
        r.json()
    }

    /// `PUT {control}/sim/instances/{addr i}` with a JSON body.
    pub fn set(&self, i: usize, config: &Value) -> Resp {
        let url = format!("{}/sim/instances/{}", self.control_url(), self.addr(i));
        let r = request(
            "PUT",
            &url,
            &[],
            Some(("application/json", config.to_string().as_bytes())),
        );
        assert!(
            (200..300).contains(&r.status),
            "PUT {url}: {} {}",
            r.status,
            r.text()
        );
        r
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.file("stderr.log"))
    }
}

impl Drop for OrsSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// HTTP client helpers (ureq 2; 4xx/5xx are responses, not errors)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .max_idle_connections(0)
            .redirects(0)
            .build()
    })
}

/// Any request; `body` is `(content_type, bytes)`. Transport errors panic.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Resp {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some((ct, bytes)) => req.set("Content-Type", ct).send_bytes(bytes),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: transport error: {e}"),
    };
    let status = resp.status();
    let mut hdrs = Vec::new();
    for name in resp.headers_names() {
        for v in resp.all(&name) {
            hdrs.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    let mut body = Vec::new();
    resp.into_reader()
        .take(256 * 1024 * 1024)
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("{method} {url}: reading body: {e}"));
    Resp {
        status,
        headers: hdrs,
        body,
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", url, headers, None)
}

pub fn delete(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("DELETE", url, headers, None)
}

/// POST with no body at all.
pub fn post_empty(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("POST", url, headers, None)
}

/// POST `application/x-www-form-urlencoded`.
pub fn post_form(url: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
    let body = form_encode(fields);
    request(
        "POST",
        url,
        headers,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

/// POST `application/json`.
pub fn post_json(url: &str, json: &Value, headers: &[(&str, &str)]) -> Resp {
    let body = json.to_string();
    request(
        "POST",
        url,
        headers,
        Some(("application/json", body.as_bytes())),
    )
}

/// POST arbitrary bytes with a given content type.
pub fn post_raw(url: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
    request("POST", url, headers, Some((content_type, body)))
}

/// POST a multipart body.
pub fn post_multipart(url: &str, mp: &Multipart, headers: &[(&str, &str)]) -> Resp {
    let (ct, body) = mp.build();
    request("POST", url, headers, Some((&ct, &body)))
}

fn enc_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding (also usable as a query string).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc_component(k, &mut out);
        out.push('=');
        enc_component(v, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------
// Multipart builder
// ---------------------------------------------------------------------------

pub const BOUNDARY: &str = "----gmsGatewayTestBoundary7MA4YWxkTrZu0gW";

#[derive(Default, Clone)]
pub struct Multipart {
    body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Multipart {
        Multipart::default()
    }

    /// A text part.
    pub fn text(self, name: &str, value: &str) -> Multipart {
        self.text_bytes(name, value.as_bytes())
    }

    /// A text part with arbitrary (possibly invalid UTF-8) bytes.
    pub fn text_bytes(mut self, name: &str, value: &[u8]) -> Multipart {
        self.check(value);
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        self.body.extend_from_slice(value);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file part (has a filename and a content type).
    pub fn file(
        mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Multipart {
        self.check(bytes);
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn check(&self, bytes: &[u8]) {
        assert!(
            !bytes
                .windows(BOUNDARY.len())
                .any(|w| w == BOUNDARY.as_bytes()),
            "part contains the boundary"
        );
    }

    /// `(content_type, body)`
    pub fn build(&self) -> (String, Vec<u8>) {
        let mut body = self.body.clone();
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={BOUNDARY}"), body)
    }
}

/// Deterministic pseudo-random bytes (all byte values occur), starting like a JPEG.
pub fn fake_jpeg(len: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u32 = 0x1234_5678;
    while out.len() < len {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        out.push((x >> 24) as u8);
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------
// Raw sockets
// ---------------------------------------------------------------------------

/// Total length of the first complete HTTP response in `buf`, if it is complete.
pub fn complete_len(buf: &[u8]) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    if (100..200).contains(&status) && status != 101 {
        // An interim response: wait for the final one after it.
        return complete_len(&buf[head_end..]).map(|n| head_end + n);
    }
    if status == 204 || status == 304 {
        return Some(head_end);
    }
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            let n: usize = v.trim().parse().ok()?;
            return (buf.len() >= head_end + n).then_some(head_end + n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return dechunk(&buf[head_end..]).map(|(_, used)| head_end + used);
        }
    }
    None // read until EOF
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode a complete chunked body: `(body, bytes consumed)`; None if incomplete.
fn dechunk(mut data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = data.len();
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_txt = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // trailers until an empty line
            loop {
                let e = find(data, b"\r\n")?;
                data = &data[e + 2..];
                if e == 0 {
                    return Some((out, total - data.len()));
                }
            }
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Parse a raw HTTP/1.1 response (the first one in `raw`).
pub fn parse_response(raw: &[u8]) -> Option<Resp> {
    let head_end = find(raw, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let rest = &raw[head_end..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)
            .map(|(b, _)| b)
            .unwrap_or_else(|| rest.to_vec())
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// Send raw bytes to the gateway and read one response (bounded by a 10 s read
/// timeout). Returns `(status, full response bytes)`; status 0 when the connection was
/// closed without a parseable response. Panics if nothing arrives within the timeout
/// (the gateway must never hang).
pub fn raw_request(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    raw_exchange(port, bytes, false)
}

/// Like `raw_request`, but half-closes the connection after sending.
pub fn raw_request_half_close(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    raw_exchange(port, bytes, true)
}

fn raw_exchange(port: u16, bytes: &[u8], half_close: bool) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to gateway");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    // The gateway may answer (and close) before reading everything: ignore write errors.
    let _ = s.write_all(bytes);
    let _ = s.flush();
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(n) = complete_len(&buf) {
            buf.truncate(n);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no complete response within 15 s; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "gateway did not answer within 10 s (hang); got {:?}",
                    String::from_utf8_lossy(&buf)
                )
            }
            Err(_) => break, // reset: take what we have
        }
    }
    let status = parse_response(&buf).map(|r| r.status).unwrap_or(0);
    (status, buf)
}

/// What became of one request on a [`KeepAliveClient`].
#[derive(Debug)]
pub enum Exchange {
    /// A complete response.
    Answered(Resp),
    /// The connection ended (EOF or reset) before one byte of a response arrived. On a reused
    /// connection this is the keep-alive race: the server closed it as the request went out.
    ClosedBeforeAnswer { reused: bool, error: String },
    /// Anything else: no connection, a timeout, a response cut off.
    Failed(String),
}

/// An HTTP/1.1 client on one keep-alive connection at a time, written here rather than using
/// ureq so that nothing is retried behind the test's back and every outcome is told apart
/// (fresh or reused connection, closed before any byte or after some). A response with
/// `Connection: close` ends the connection; the next request opens a new one.
pub struct KeepAliveClient {
    port: u16,
    conn: Option<TcpStream>,
}

impl KeepAliveClient {
    pub fn new(port: u16) -> KeepAliveClient {
        KeepAliveClient { port, conn: None }
    }

    /// Sends one request (`body` with its content type, if any) and reads its response.
    pub fn send(&mut self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Exchange {
        let reused = self.conn.is_some();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => match self.connect() {
                Ok(c) => c,
                Err(e) => return Exchange::Failed(format!("connect: {e}")),
            },
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        if let Some((ct, bytes)) = body {
            req.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
        }
        req.push_str("\r\n");
        let mut wire = req.into_bytes();
        if let Some((_, bytes)) = body {
            wire.extend_from_slice(bytes);
        }
        if let Err(e) = conn.write_all(&wire) {
            // Nothing can have been answered yet.
            return Exchange::ClosedBeforeAnswer {
                reused,
                error: format!("write: {e}"),
            };
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(n) = complete_len(&buf) {
                buf.truncate(n);
                break;
            }
            if Instant::now() >= deadline {
                return Exchange::Failed(format!("no complete response within 15 s: {buf:?}"));
            }
            match conn.read(&mut chunk) {
                Ok(0) if buf.is_empty() => {
                    return Exchange::ClosedBeforeAnswer {
                        reused,
                        error: "EOF".into(),
                    }
                }
                Ok(0) => {
                    return Exchange::Failed(format!(
                        "connection closed inside a response: {:?}",
                        String::from_utf8_lossy(&buf)
                    ))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Exchange::Failed(format!("read timeout: {e}"))
                }
                Err(e) if buf.is_empty() => {
                    return Exchange::ClosedBeforeAnswer {
                        reused,
                        error: format!("read: {e}"),
                    }
                }
                Err(e) => return Exchange::Failed(format!("read inside a response: {e}")),
            }
        }
        let Some(resp) = parse_response(&buf) else {
            return Exchange::Failed(format!("unparsable: {:?}", String::from_utf8_lossy(&buf)));
        };
        let closes = resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !closes {
            self.conn = Some(conn);
        }
        Exchange::Answered(resp)
    }

    /// Whether the next request goes on a connection already used.
    pub fn has_connection(&self) -> bool {
        self.conn.is_some()
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.set_write_timeout(Some(Duration::from_secs(10)))?;
        c.set_nodelay(true)?;
        Ok(c)
    }
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// Assert an error reply: the status, `application/json`, and a body
/// `{"exception": <string>, "message": <string>}`. Returns the body.
pub fn assert_error(resp: &Resp, status: u16) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected error status {status}, got {} with body {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "error reply ({status}) is not application/json but {:?}: {:?}",
        resp.header("content-type"),
        resp.text()
    );
    let v = resp.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {v}"));
    let exc = obj.get("exception").and_then(Value::as_str);
    assert!(
        exc.is_some_and(|s| !s.is_empty()),
        "error body lacks a string \"exception\": {v}"
    );
    assert!(
        obj.get("message").is_some_and(Value::is_string),
        "error body lacks a string \"message\": {v}"
    );
    v
}

/// Assert a 200 JSON reply and return the body.
pub fn ok_json(resp: &Resp) -> Value {
    assert_eq!(
        resp.status,
        200,
        "expected 200, got {} with body {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "200 reply is not application/json but {:?}: {:?}",
        resp.header("content-type"),
        resp.text()
    );
    resp.json()
}

/// Is `s` a UUID of version 4?
pub fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s)
        .map(|u| u.get_version_num() == 4)
        .unwrap_or(false)
}

/// A string field of a JSON object; panics if missing.
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string field {key:?} in {v}"))
}

/// The keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

// ---------------------------------------------------------------------------
// Service / storage shortcuts
// ---------------------------------------------------------------------------

impl Gateway {
    /// `{base}/genesys/1/service/{name}`
    pub fn service_url(&self, name: &str) -> String {
        self.url(&format!("/genesys/1/service/{name}"))
    }

    /// `{base}/genesys/1/storage/{rest}`
    pub fn storage_url(&self, rest: &str) -> String {
        self.url(&format!("/genesys/1/storage/{rest}"))
    }

    /// POST a form to a service.
    pub fn create(&self, service: &str, fields: &[(&str, &str)]) -> Resp {
        post_form(&self.service_url(service), fields, &[])
    }

    /// POST a form to a service and expect 200 JSON.
    pub fn create_ok(&self, service: &str, fields: &[(&str, &str)]) -> Value {
        ok_json(&self.create(service, fields))
    }

    /// match-interaction, with the IVR's credentials ([`INTERNAL_AUTH`]).
    pub fn match_call(&self, fields: &[(&str, &str)]) -> Resp {
        post_form(&self.service_url("match-interaction"), fields, &[IVR])
    }

    /// match-interaction expecting 200.
    pub fn match_ok(&self, fields: &[(&str, &str)]) -> Value {
        ok_json(&self.match_call(fields))
    }

    /// The binary URL the gateway should hand out for a file.
    pub fn binary_url(&self, data_id: &str, key: &str) -> String {
        self.url(&format!("/genesys/1/storage/binary/{data_id}/{key}"))
    }
}

/// Calls `call(i)` for `i` in `0..tries` until an answer is not a 200: the JSON of the 200s
/// before it, and that answer (`None` when all were 200). For limits that refuse the n-th call.
pub fn until_refused(
    tries: usize,
    mut call: impl FnMut(usize) -> Resp,
) -> (Vec<Value>, Option<Resp>) {
    let mut ok = Vec::new();
    for i in 0..tries {
        let r = call(i);
        if r.status != 200 {
            return (ok, Some(r));
        }
        ok.push(ok_json(&r));
    }
    (ok, None)
}

/// Count occurrences.
pub fn tally<I: IntoIterator<Item = String>>(items: I) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------------
// `gms-gateway -t`

/// What `gms-gateway -t` did.
pub type Checked = Finished;

/// Run `gms-gateway -t -c <path>` with a deadline; output goes to files in `dir`.
pub fn run_check(path: &Path, dir: &TempDir) -> Checked {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gms-gateway"));
    cmd.arg("-t").arg("-c").arg(path);
    run_logged(&mut cmd, &dir.file("check"), Duration::from_secs(20))
}
