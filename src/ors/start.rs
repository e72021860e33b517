//! Background session starts for `_ors_start: async` (contract 6.1): the client gets its id at
//! once; the start is retried with backoff for up to `_ors_start_timeout_s`. The queue is
//! bounded twice: `start_queue_size` starts waiting or running (one more: 503, never
//! unbounded memory) and `start_concurrency` talking to ORS at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::warn;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::forward::Payload;
use super::session::StartError;
use super::Ors;
use crate::config::{OrsServiceConfig, ServiceConfig};
use crate::error::ApiError;
use crate::store::{OrsSession, ServiceRecord};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The bounds of background starts.
pub struct StartQueue {
    queued: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl StartQueue {
    /// A queue holding at most `size` starts, `concurrency` of them talking to ORS.
    pub fn new(size: usize, concurrency: usize) -> Self {
        StartQueue {
            queued: Arc::new(Semaphore::new(size.max(1))),
            running: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// A place in the queue, or 503 when it is full.
    pub fn reserve(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.queued.clone().try_acquire_owned().map_err(|_| {
            ApiError::Unavailable("too many ORS sessions are starting; try again".into())
        })
    }
}

/// Starts a session in the background and records the outcome in the store.
pub fn spawn(
    ors: Arc<Ors>,
    svc: Arc<ServiceConfig>,
    conf: OrsServiceConfig,
    record: ServiceRecord,
    payload: Payload,
    place: OwnedSemaphorePermit,
) {
    tokio::spawn(async move {
        let outcome = run(&ors, &svc, &conf, &payload).await;
        let session = match outcome {
            Ok(started) => OrsSession::Started {
                node: started.node,
                session_id: started.session_id,
            },
            Err(e) => {
                let e = e.into_api_error();
                warn!(
                    "async start of service {} ({}) failed: {e}",
                    record.id, svc.name
                );
                // Clients read this in the service's status: the message only.
                OrsSession::Failed(e.message().to_string())
            }
        };
        if let Err(e) = ors.store.set_ors_session(record.id, session).await {
            warn!("cannot record the ORS session of {}: {e:?}", record.id);
        }
        drop(place);
    });
}

async fn run(
    ors: &Ors,
    svc: &ServiceConfig,
    conf: &OrsServiceConfig,
    payload: &Payload,
) -> Result<super::session::Started, StartError> {
    // Checked: a configured timeout of centuries must not overflow the clock.
    let deadline = Instant::now()
        .checked_add(Duration::from_secs(conf.start_timeout_s))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
    let mut backoff = FIRST_BACKOFF;
    loop {
        let result = {
            let _turn = ors.starts.running.acquire().await;
            ors.start_session(svc, conf, payload).await
        };
        match result {
            Ok(started) => return Ok(started),
            // ORS answered and said no: asking again will not change its mind.
            Err(e @ StartError::Refused(_)) => return Err(e),
            Err(e) => {
                if Instant::now() + backoff >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
