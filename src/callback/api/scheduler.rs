//! The scheduler (contract `gms-callback.md` §7.1): every `gms.callback.queue-polling-rate`,
//! on every node, for each callback service: claim the records that are due (their desired
//! time less `_request_execution_time_buffer`, or their next attempt), submit them to ORS at
//! once (a claim is one batch of `submit_concurrency`), record each outcome, then purge the
//! expired records.
//!
//! **Exactly once among live nodes**: the store's claim is atomic, so a record is claimed by
//! one node; that node's lease ([`submit::lease`]) outlasts everything a submission may take,
//! and every submission of a batch starts right after its claim. **At least once when a node
//! dies** mid-submission: its claims run out and the next pass (any node's) takes them again;
//! a session the dead node had started meanwhile is the rare duplicate (the store's module doc
//! says why that beats losing the callback). A failed attempt is retried `submit_retry_s`
//! later, up to `_max_ors_submit_attempts`, then the callback is `COMPLETED`/`SUBMIT_FAILED`.
//!
//! The first pass after start-up recovers: records due within `_queue_poll_period_recovery`
//! are submitted, older ones given up.

use futures::future::join_all;
use log::{info, warn};
use tokio::time::MissedTickBehavior;

use super::{now, signed, submit, Service};
use crate::callback::change::{Change, Update};
use crate::callback::record::{CallbackRecord, State};
use crate::gateway::Gateway;
use crate::store::callback::{ClaimRequest, Updated};

/// Claims one pass makes per service at most (each up to `submit_concurrency` records), so a
/// pass ends even while records keep coming due.
const MAX_BATCHES_PER_PASS: usize = 1000;
/// Expired records purged per store call, and calls per pass at most.
const PURGE_BATCH: usize = 500;
const MAX_PURGES_PER_PASS: usize = 100;

/// Runs the passes until the task is dropped (the server stops).
pub async fn run(gw: &Gateway) {
    let services = &gw.config.callback.services;
    if services.is_empty() {
        return;
    }
    let mut interval = tokio::time::interval(gw.config.callback.polling);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut recovery = true;
    loop {
        interval.tick().await;
        for name in services {
            if let Ok(svc) = Service::named(gw, name) {
                pass(gw, &svc, recovery).await;
            }
        }
        recovery = false;
    }
}

/// One pass over one service; `recovery`: the first after start-up. Returns how many callbacks
/// this node submitted.
pub async fn pass(gw: &Gateway, svc: &Service, recovery: bool) -> usize {
    let submitted = submit_due(gw, svc, recovery, MAX_BATCHES_PER_PASS).await;
    purge(gw, svc).await;
    submitted
}

/// One claim of the service's due records, submitted now: what a request that made a callback
/// due at once (a reschedule into the buffer) runs before its reply.
pub async fn submit_now(gw: &Gateway, svc: &Service) -> usize {
    submit_due(gw, svc, false, 1).await
}

/// Claims and submits due records, at most `batches` claims.
async fn submit_due(gw: &Gateway, svc: &Service, recovery: bool, batches: usize) -> usize {
    let store = gw.store.callbacks();
    let cb = &svc.callback;
    let name = svc.name();
    let claim = ClaimRequest {
        node: gw.node_id.clone(),
        batch: gw.config.callback.submit_concurrency,
        lease: submit::lease(&gw.config),
        max_attempts: cb.max_attempts,
        recovery: recovery.then_some(cb.recovery),
    };
    let mut submitted = 0;
    for _ in 0..batches {
        let claimed = match store.claim_due(name, &claim).await {
            Ok(c) => c,
            Err(e) => {
                warn!("callback scheduler: cannot claim the due callbacks of {name}: {e:?}");
                break;
            }
        };
        for id in &claimed.failed {
            warn!(
                "callback {id} of {name}: SUBMIT_FAILED (no attempt left, or too old at start-up)"
            );
            crate::metrics::callback_submit_failed(name, true);
            crate::metrics::callback_state(name, State::Completed);
        }
        for id in &claimed.dropped {
            info!("callback {id} of {name}: its creating node died before ORS answered; removed");
        }
        let outcomes = join_all(claimed.records.iter().map(|r| submit_one(gw, svc, r))).await;
        submitted += outcomes.into_iter().filter(|done| *done).count();
        if !claimed.more {
            break;
        }
    }
    submitted
}

/// Removes the service's expired records, in bounded batches.
async fn purge(gw: &Gateway, svc: &Service) {
    let (store, name) = (gw.store.callbacks(), svc.name());
    for _ in 0..MAX_PURGES_PER_PASS {
        match store.purge_expired(name, PURGE_BATCH).await {
            Ok(n) if n == PURGE_BATCH => continue,
            Ok(_) => break,
            Err(e) => {
                warn!("callback scheduler: cannot purge the expired callbacks of {name}: {e:?}");
                break;
            }
        }
    }
}

/// Submits one claimed record and writes the outcome; true when it is now QUEUED.
async fn submit_one(gw: &Gateway, svc: &Service, record: &CallbackRecord) -> bool {
    let name = svc.name();
    let error = match submit::start(gw, svc, record).await {
        Ok(started) => {
            return match submit::record_started(gw, svc, record, &started).await {
                Ok(Updated::Done(_)) => true,
                Ok(_) => false,
                Err(e) => {
                    warn!(
                        "callback {} of {name}: cannot record its ORS session: {e}",
                        record.id
                    );
                    false
                }
            };
        }
        Err(e) => e.into_api_error(),
    };
    let retry = signed(gw.config.callback.submit_retry);
    let update = Update {
        change: Some(Change::SubmitFailed {
            node: gw.node_id.clone(),
            retry_at: now().saturating_add(retry).unwrap_or_else(|_| now()),
            max_attempts: svc.callback.max_attempts,
        }),
        ..Update::default()
    };
    match gw.store.callbacks().update(name, record.id, &update).await {
        Ok(Updated::Done(r)) if r.state == State::Completed => {
            warn!(
                "callback {} of {name}: SUBMIT_FAILED after {} attempts: {error}",
                record.id, r.attempts
            );
            crate::metrics::callback_submit_failed(name, true);
            crate::metrics::callback_state(name, State::Completed);
        }
        Ok(Updated::Done(r)) => {
            info!(
                "callback {} of {name}: attempt {} failed ({error}); next in {:?}",
                record.id, r.attempts, gw.config.callback.submit_retry
            );
            crate::metrics::callback_submit_failed(name, false);
        }
        Ok(other) => info!(
            "callback {} of {name}: attempt failed ({error}) and the record moved on: {other:?}",
            record.id
        ),
        Err(e) => warn!(
            "callback {} of {name}: cannot record a failed attempt: {e:?}",
            record.id
        ),
    }
    false
}
