//! What each test gets of its own: fresh loopback ports and temp dirs.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A loopback port that was free a moment ago, and not one this test process handed out
/// before (until its walk wraps after ~12,000 ports): Pingora binds with SO_REUSEPORT, so two
/// gateways of parallel tests could otherwise share a port and split its traffic. It is taken
/// below the kernel's ephemeral range: between this call and the server's bind, an outgoing
/// connection of a parallel test (to a gateway, Redis, ors-sim) gets its local port from that
/// range, and one did take a port handed out here ("ors-sim: cannot listen ...: Address
/// already in use" in CI).
pub fn free_port() -> u16 {
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let (lo, hi) = PORT_RANGE;
    let hi = hi.min(ephemeral_low().saturating_sub(1));
    let span = u32::from(hi.saturating_sub(lo)) + 1;
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    // A start far from the last test binary's (their process ids are consecutive), so one
    // binary does not walk the ports another has just let go of.
    let spread = std::process::id().wrapping_mul(2_654_435_761) % span;
    let mut port = next.unwrap_or(lo + spread as u16);
    for _ in 0..span.min(5000) {
        let candidate = port;
        port = if port >= hi { lo } else { port + 1 };
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return candidate;
        }
    }
    panic!("no free loopback port in {lo}..={hi}");
}

/// Where `free_port` looks, before clipping to below the ephemeral range.
const PORT_RANGE: (u16, u16) = (20000, 32767);

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_low() -> u16 {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|&low: &u16| low > PORT_RANGE.0 + 1000)
        .unwrap_or(32768)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number no other caller in this test process got: temp dirs and Redis key prefixes.
pub(super) fn next_id() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A per-test directory under the system temp dir; removed on drop unless panicking.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = next_id();
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
