//! The status cache (contract 6.3): mobile apps poll `status` every second or two; ORS sees at
//! most one `request/status` per service per `_status_ttl_ms`.
//!
//! Entries live in the [`Store`](crate::store::Store) (so nodes sharing a store share them).
//! A miss starts one fetch per service on this node; every request that misses meanwhile
//! awaits that same fetch (a `Shared` future, so it completes even if the client that
//! started it goes away). Only 2xx JSON replies are cached; when ORS fails, a stale entry is
//! served with an `Age` header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};
use uuid::Uuid;

use super::client::OrsReply;
use super::forward::{self, Payload, Scope};
use super::session::relay;
use super::Ors;
use crate::clock::unix_ms;
use crate::config::{OrsServiceConfig, ServiceConfig};
use crate::error::ApiError;
use crate::metrics::STATUS_OUTCOMES;
use crate::params::Params;
use crate::reply::Reply;
use crate::store::{OrsSession, ServiceRecord, StatusEntry};

/// What one fetch produced, shared by every request that waited for it.
#[derive(Debug, Clone)]
enum Fetched {
    /// A 2xx JSON status, now cached.
    Cached(StatusEntry),
    /// ORS's own non-2xx answer (e.g. 404 for a session it no longer knows): relayed, not cached.
    Answer(OrsReply),
}

type Flight = Shared<BoxFuture<'static, Result<Fetched, ApiError>>>;

/// The fetches in progress on this node, by service id.
#[derive(Default)]
pub struct StatusFlights {
    inflight: Mutex<HashMap<Uuid, Flight>>,
}

impl StatusFlights {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Flight>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn age_s(entry: &StatusEntry, now_ms: u64) -> u64 {
    now_ms.saturating_sub(entry.stored_at_ms) / 1000
}

fn json(body: &'static str) -> Reply {
    Reply::json_bytes(bytes::Bytes::from_static(body.as_bytes()))
}

/// Answers `POST {root}/service/{id}/status` for an ORS service, given its cached status as
/// the store read it with the record (`Store::get_service_and_status`).
pub async fn status(
    ors: &Arc<Ors>,
    svc: &Arc<ServiceConfig>,
    conf: &OrsServiceConfig,
    record: ServiceRecord,
    cached: Option<StatusEntry>,
) -> Result<Reply, ApiError> {
    match &record.ors {
        Some(OrsSession::Pending) => return Ok(json(r#"{"status":"pending"}"#)),
        Some(OrsSession::Failed(m)) => {
            return Ok(Reply::json(
                &serde_json::json!({ "status": "failed", "message": m }),
            ));
        }
        _ => {}
    }
    let now = unix_ms();
    if let Some(e) = &cached {
        if now < e.stored_at_ms.saturating_add(e.fresh_ms) {
            STATUS_OUTCOMES.hit.inc();
            return Ok(Reply::json_bytes(e.body.clone()));
        }
    }
    match fetch_once(ors, svc, conf, record).await {
        Ok(Fetched::Cached(e)) => Ok(Reply::json_bytes(e.body)),
        Ok(Fetched::Answer(r)) => Ok(relay(r)),
        Err(err) => match cached {
            Some(stale) => {
                STATUS_OUTCOMES.stale.inc();
                Ok(Reply::json_bytes(stale.body.clone())
                    .with_header("Age", age_s(&stale, unix_ms()).to_string()))
            }
            None => Err(err),
        },
    }
}

/// Joins the fetch in progress for this service, or starts it.
async fn fetch_once(
    ors: &Arc<Ors>,
    svc: &Arc<ServiceConfig>,
    conf: &OrsServiceConfig,
    record: ServiceRecord,
) -> Result<Fetched, ApiError> {
    let id = record.id;
    let flight = {
        let mut map = ors.status.lock();
        match map.get(&id) {
            Some(f) => {
                STATUS_OUTCOMES.coalesced.inc();
                f.clone()
            }
            None => {
                STATUS_OUTCOMES.fetch.inc();
                let (ors2, svc2, ttl) = (ors.clone(), svc.clone(), conf.status_ttl_ms);
                let f = async move {
                    let result = fetch(&ors2, &svc2, ttl, &record).await;
                    ors2.status.lock().remove(&record.id);
                    result
                }
                .boxed()
                .shared();
                map.insert(id, f.clone());
                f
            }
        }
    };
    flight.await
}

async fn fetch(
    ors: &Ors,
    svc: &ServiceConfig,
    fresh_ms: u64,
    record: &ServiceRecord,
) -> Result<Fetched, ApiError> {
    let conf = match &svc.kind {
        crate::config::ServiceKind::Ors(c) => c,
        _ => {
            return Err(ApiError::Internal(
                "status fetch for a non-ORS service".into(),
            ))
        }
    };
    let params = forward::parameters(svc, &Params::default(), record, Scope::Request);
    let payload = Payload::new(conf.forward, None, &params)?;
    let reply = ors.request(svc, record, "status", &payload).await?;
    if !(200..300).contains(&reply.status) {
        return Ok(Fetched::Answer(reply));
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&reply.body).is_err() {
        return Err(ApiError::ors_failed(
            "ORS request failed: the status reply is not JSON.",
            "",
        ));
    }
    let entry = StatusEntry {
        body: reply.body,
        stored_at_ms: unix_ms(),
        fresh_ms,
    };
    ors.store
        .put_status(record.id, entry.clone(), record.service_ttl)
        .await?;
    // A poll that reached ORS is a use of the service: renew it (cache hits do not write).
    ors.store.touch_service(record).await?;
    Ok(Fetched::Cached(entry))
}
