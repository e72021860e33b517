//! Processes: PIDs, signals, bounded waits, commands run with their output in files
//! (`conf/reload`, `gms-gateway -t`), and watchdogs for what must not outlive the test binary.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::sandbox::TempDir;

/// How long the gateway / simulator may take to become ready.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A file's text (lossy UTF-8), or why it could not be read.
pub(super) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
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

/// Kills `pid` once this test process (or `pid` itself) is gone: statics are never dropped,
/// and a killed test binary runs no destructors.
pub(super) fn watchdog(pid: u32) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null; exit 0",
        me = std::process::id()
    );
    spawn_sh(&script);
}

/// Runs a shell script in the background, detached from the test's stdio: cleanup that must
/// outlive (or watch) this test process.
pub(super) fn spawn_sh(script: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// What `gms-gateway -t` did.
pub type Checked = Finished;

/// Run `gms-gateway -t -c <path>` with a deadline; output goes to files in `dir`.
pub fn run_check(path: &Path, dir: &TempDir) -> Checked {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gms-gateway"));
    cmd.arg("-t").arg("-c").arg(path);
    run_logged(&mut cmd, &dir.file("check"), Duration::from_secs(20))
}
