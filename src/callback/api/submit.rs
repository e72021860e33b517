//! A callback's ORS session (contract `gms-callback.md` §7.1, §4): submitting is starting an
//! ORS session exactly as an ORS service's create does (the same client, node selection,
//! attempts and `_ors_forward`), then the start request (`start` by default for callbacks).
//! The result is written with [`Change::Submitted`] by the node that holds the claim; a
//! session the store will not take (the callback was cancelled meanwhile, or another node
//! took it over) is cancelled at once.

use std::time::Duration;

use log::{info, warn};

use super::{options, Service};
use crate::callback::change::{Change, Update};
use crate::callback::record::{CallbackRecord, OrsRef};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::gateway::Gateway;
use crate::ors::forward::{parameters_of, Payload, Scope};
use crate::ors::session::{StartError, Started};
use crate::params::Params;
use crate::store::callback::Updated;

/// How long a node's claim on a callback holds (§7.1, the store's lease): longer than a
/// submission can take, the session start and the start request each tried on
/// `max_ors_request_attempts` nodes within their timeouts, with room for the store's writes.
pub fn lease(config: &ApiConfig) -> Duration {
    let ors = &config.ors;
    let one_try = Duration::from_millis(ors.connect_timeout_ms + ors.socket_timeout_ms);
    one_try * ors.max_ors_request_attempts * 2 + Duration::from_secs(10)
}

/// Starts `record`'s ORS session: the session start with its options, then the start request
/// (whose reply an immediate create relays).
pub async fn start(
    gw: &Gateway,
    svc: &Service,
    record: &CallbackRecord,
) -> Result<Started, StartError> {
    let cb = &svc.callback;
    let params = options::submission(&svc.config, record);
    let payload =
        Payload::new(cb.ors.forward, Some(&cb.ors.src), &params).map_err(StartError::Failed)?;
    gw.ors.start_session(&svc.config, &cb.ors, &payload).await
}

/// Writes that `record`'s session started (SUBMITTING -> QUEUED). When the store refuses it
/// (cancelled meanwhile, or no longer this node's), the session is cancelled and the refusal
/// returned as it came.
pub async fn record_started(
    gw: &Gateway,
    svc: &Service,
    record: &CallbackRecord,
    started: &Started,
) -> Result<Updated, ApiError> {
    let ors = OrsRef {
        node: started.node.clone(),
        session: started.session_id.clone(),
    };
    let update = Update {
        change: Some(Change::Submitted {
            node: gw.node_id.clone(),
            ors: ors.clone(),
        }),
        ..Update::default()
    };
    let updated = gw
        .store
        .callbacks()
        .update(svc.name(), record.id, &update)
        .await?;
    match &updated {
        Updated::Done(r) => {
            crate::metrics::callback_submitted(svc.name());
            crate::metrics::callback_state(svc.name(), r.state);
        }
        refused => {
            info!(
                "callback {} of {}: its ORS session {} is not wanted any more ({refused:?}); cancelling it",
                record.id,
                svc.name(),
                ors.session
            );
            if let Err(e) = cancel_session(gw, svc, record, &ors).await {
                warn!(
                    "callback {}: cannot cancel ORS session {}: {e}",
                    record.id, ors.session
                );
            }
        }
    }
    Ok(updated)
}

/// Tells ORS to cancel a callback's session (§4): `request/cancel`; when ORS does not know it
/// (404), `terminate`. Any other answer of ORS counts as done; no answer is the error.
pub async fn cancel_session(
    gw: &Gateway,
    svc: &Service,
    record: &CallbackRecord,
    ors: &OrsRef,
) -> Result<(), ApiError> {
    let params = parameters_of(
        &svc.config,
        &Params::default(),
        record.id,
        record.data_id,
        Scope::Request,
    );
    let payload = Payload::new(svc.callback.ors.forward, None, &params)?;
    let reply = gw
        .ors
        .on_session(&svc.config, &ors.node, &ors.session, "cancel", &payload)
        .await?;
    if reply.status == 404 {
        gw.ors
            .terminate_session(&svc.config, &ors.node, &ors.session, &payload)
            .await?;
    } else if !(200..300).contains(&reply.status) {
        info!(
            "callback {}: ORS answered its cancel with HTTP {}",
            record.id, reply.status
        );
    }
    Ok(())
}
