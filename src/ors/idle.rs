//! The ORS client's idle keep-alive connections, kept newest first per node, and how many 1xx
//! responses it reads past ([`read_final_head`], on Pingora's HTTP/1 client).
//!
//! Pingora's connection pool watches every idle connection with a task of its own and checks
//! the peer's address (a `getpeername`) each time one is reused: per upstream request, a task
//! spawned and woken and a system call, which the ORS-create benchmark showed. Here an idle
//! connection just waits in a list; whether the peer closed it meanwhile is seen when it is
//! taken (a closed socket is readable), and a request that still fails on a reused connection
//! is retried once on a fresh one (`client.rs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pingora::protocols::http::v1::client::HttpSession;
use pingora::protocols::Stream;
use pingora::{Error, ErrorType};
use tokio::io::AsyncReadExt;

/// Idle connections kept per peer (Pingora's default pool size).
pub const IDLE_PER_PEER: usize = 128;
/// How long an idle connection is kept (Pingora's default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// 1xx responses skipped before the final one.
pub const MAX_INFORMATIONAL: usize = 4;

/// Reads response heads until the final one (any 1xx, `100 Continue` and the like, comes
/// before it); afterwards `up.resp_header()` is that final head.
pub async fn read_final_head(up: &mut HttpSession) -> pingora::Result<()> {
    for _ in 0..=MAX_INFORMATIONAL {
        up.read_response().await?;
        match up.resp_header() {
            Some(h) if h.status.is_informational() => continue,
            Some(_) => return Ok(()),
            None => {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "no response head",
                ))
            }
        }
    }
    Err(Error::explain(
        ErrorType::InvalidHTTPHeader,
        "too many 1xx responses",
    ))
}

/// Idle connections, keyed by the peer they lead to.
pub struct IdleConns {
    idle: Mutex<HashMap<u64, Vec<(Stream, Instant)>>>,
    /// Most idle connections kept per peer; more are closed.
    per_peer: usize,
    /// How long a connection may stay idle before it is closed instead of reused.
    timeout: Duration,
}

impl IdleConns {
    /// An empty set keeping at most `per_peer` connections per peer for up to `timeout`.
    pub fn new(per_peer: usize, timeout: Duration) -> Self {
        IdleConns {
            idle: Mutex::new(HashMap::new()),
            per_peer,
            timeout,
        }
    }

    /// The most recently used idle connection to `peer` that is still usable, if any.
    pub fn take(&self, peer: u64) -> Option<Stream> {
        loop {
            let (mut stream, since) = self.lock().get_mut(&peer)?.pop()?;
            if since.elapsed() < self.timeout && still_open(&mut stream) {
                return Some(stream);
            }
            // Dropped here: closed, outside the lock.
        }
    }

    /// Keeps a connection whose last exchange ended cleanly, for the next request to `peer`.
    pub fn put(&self, peer: u64, stream: Stream) {
        let mut idle = self.lock();
        let list = idle.entry(peer).or_default();
        if list.len() < self.per_peer {
            list.push((stream, Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<(Stream, Instant)>>> {
        // A panic elsewhere cannot leave the lists half-changed: use them as they are.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An idle connection the node has closed (or sent something on, which it never should) is
/// readable; one still open is not. The test is one non-blocking read at most.
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    tokio::task::unconstrained(stream.read(&mut byte))
        .now_or_never()
        .is_none()
}
