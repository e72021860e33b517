//! One connection: TLS where configured, then hyper's HTTP/1.1 server, with the simulator's
//! own idle limit, body limit and connection-level failures (refuse, hang).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::Mode;
use crate::http::{error, with_header, Outcome, Reply, Request};
use crate::sim::{Instance, Sim};
use crate::{control, ors};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// A pooled keep-alive connection may sit idle between requests much longer than a
/// request takes to arrive once started.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// For the TLS handshake (a body is bounded by the idle limit, see `Activity`).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const HANG_LIMIT: Duration = Duration::from_secs(120);

/// The service's error, on which hyper drops the connection without writing anything.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the simulator")
    }
}

impl std::error::Error for Dropped {}

/// Serves one accepted connection; `inst` is None on the control listener.
pub async fn serve(sim: Arc<Sim>, inst: Option<Arc<Instance>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let tls = if inst.is_some() {
        sim.tls.clone()
    } else {
        None
    };
    match tls {
        Some(acceptor) => {
            // A client that fails the handshake (e.g. rejects the certificate) just goes away.
            if let Ok(Ok(s)) = tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await {
                serve_http(sim, inst, TokioIo::new(s)).await;
            }
        }
        None => serve_http(sim, inst, TokioIo::new(stream)).await,
    }
}

/// When the connection last saw a request start or end, and how many it is handling (body
/// read), so that it is closed only when really idle: waiting for a head or for the rest of
/// a body counts as idle, which also bounds slow bodies without a timer per request.
/// (hyper's own header timeout counts from the end of the previous request, cannot change
/// per instance at run time, and would cut a hang short.)
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle; None while a request is in progress.
    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.origin.elapsed().saturating_sub(last))
    }
}

/// Marks a request in progress for as long as it lives (also when hyper drops it).
struct Busy<'a>(&'a Activity);

impl Busy<'_> {
    fn new(a: &Activity) -> Busy<'_> {
        a.busy.fetch_add(1, Ordering::Relaxed);
        a.touch();
        Busy(a)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

fn idle_limit(inst: Option<&Instance>) -> Duration {
    match inst.map(|i| i.config().idle_close_ms) {
        Some(ms) if ms > 0 => Duration::from_millis(ms),
        _ => IDLE_TIMEOUT,
    }
}

async fn serve_http<I>(sim: Arc<Sim>, inst: Option<Arc<Instance>>, io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        origin: Instant::now(),
        last_ms: AtomicU64::new(0),
        busy: AtomicUsize::new(0),
    });
    let svc = {
        let (activity, inst) = (activity.clone(), inst.clone());
        service_fn(move |req| {
            let (sim, inst, activity) = (sim.clone(), inst.clone(), activity.clone());
            async move { handle(&sim, inst.as_deref(), &activity, req).await }
        })
    };
    let conn = http1::Builder::new()
        .max_header_size(MAX_HEAD)
        .header_read_timeout(None)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    loop {
        let limit = idle_limit(inst.as_deref());
        let wake = match activity.idle_for() {
            Some(idle) if idle >= limit => return,
            Some(idle) => limit - idle,
            None => limit,
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(wake) => {}
        }
    }
}

/// One request, from hyper's types to the handlers' and back.
async fn handle(
    sim: &Sim,
    inst: Option<&Instance>,
    activity: &Activity,
    req: hyper::Request<Incoming>,
) -> Result<Reply, Dropped> {
    activity.touch();
    let cfg = inst.map(Instance::config);
    // A refusing node is down for everything, control requests included, so that
    // pooled connections to it fail like they would against a dead ORS.
    if cfg.as_ref().is_some_and(|c| c.mode == Mode::Refuse) {
        return Err(Dropped);
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            let r = error(413, "request body larger than 16 MiB");
            // The rest of the body is not read: the connection cannot carry another request.
            return Ok(with_header(
                r,
                CONNECTION,
                HeaderValue::from_static("close"),
            ));
        }
        Err(BodyError::Failed) => return Err(Dropped),
    };
    let _busy = Busy::new(activity);
    let req = Request {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let outcome = match (inst, cfg) {
        _ if is_sim_path(req.path()) => Outcome::Reply(control::handle(sim, &req).await),
        (Some(i), Some(cfg)) => ors::handle(sim, i, &cfg, &req).await,
        _ => Outcome::Reply(error(404, "the control listener serves only /sim/...")),
    };
    match outcome {
        Outcome::Reply(r) => Ok(r),
        Outcome::Close => Err(Dropped),
        Outcome::Hang => {
            // hyper drops this future when the client closes (it watches for EOF while a
            // request is in progress), which ends the hang early.
            tokio::time::sleep(HANG_LIMIT).await;
            Err(Dropped)
        }
    }
}

fn is_sim_path(path: &str) -> bool {
    path == "/sim" || path.starts_with("/sim/")
}

enum BodyError {
    TooLarge,
    /// The client went away.
    Failed,
}

async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    if body.size_hint().lower() > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(body, MAX_BODY as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Failed),
    }
}
