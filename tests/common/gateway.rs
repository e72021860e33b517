//! The gateway under test: its config file, starting it, its URLs, and shortcuts for the
//! service API calls most tests make.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::asserts::ok_json;
use super::http::{post_form, Resp};
use super::process::{read_lossy, runs_config, signal_pid, watchdog, READY_TIMEOUT};
use super::redis::{with_test_store, RedisServer};
use super::sandbox::{free_port, TempDir};

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

/// The DNIS pool of `STD_GMS`, in configured order.
pub const DNIS: [&str; 3] = ["8003449999", "8003449998", "8003449997"];
/// The single number of the SOLO pool of `STD_GMS`.
pub const SOLO: &str = "8005550001";

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

/// A running `gms-gateway` on a free loopback port with its own temp dir; killed on drop.
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

// Graceful upgrade: the processes that take over from this one.
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

// Service and storage shortcuts.
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
