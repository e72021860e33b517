//! What each test gets of its own: fresh loopback ports and temp dirs.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
