//! Redis for the gateways under test: the store `GMS_TEST_STORE` picks, one `redis-server`,
//! a Redis Cluster, and the cluster a test binary shares.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::certs::TestCerts;
use super::process::{read_lossy, spawn_sh, watchdog, READY_TIMEOUT};
use super::sandbox::{free_port, next_id, TempDir};

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
    let n = next_id();
    format!("t{}-{n}:", std::process::id())
}

/// Adds the `storage:` block `GMS_TEST_STORE` asks for to a config without one (a config
/// that sets its own storage keeps it). Returns the text and the Redis started for it.
pub(super) fn with_test_store(config: &str, dir: &Path) -> (String, Option<RedisServer>) {
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
    /// docs/redis.md recommends (`appendonly yes`, `appendfsync everysec`).
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
    pub fn start(n: usize) -> RedisCluster {
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
                    "no",
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
        // Every node must see the whole cluster as ok before it is used.
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            loop {
                if node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster not ok within 20 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes, _dir: dir }
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
