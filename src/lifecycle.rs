//! The process's life around Pingora's server: what starts once it serves, and the drain
//! when it is being replaced or stopped.
//!
//! Start: Pingora daemonizes (`-d`) inside `run_forever`, after the services were built, and a
//! fork keeps only the forking thread. So the gateway's own threads (the memory store's
//! sweeper, the access-log writer) start here, in a background service, which runs after the
//! fork.
//!
//! Drain: on a graceful upgrade (SIGQUIT) Pingora hands the listening sockets to the new
//! process and keeps accepting for 5 more seconds (`CLOSE_TIMEOUT` in pingora-core's server);
//! then it stops accepting and at once closes every keep-alive connection that waits for its
//! next request. A client that sends on such a connection just then gets no answer (the usual
//! keep-alive race). Pingora turns keep-alive off only for requests read after that moment, so
//! the gateway does it earlier: from the first upgrade phase on, each reply carries
//! `Connection: close` and busy clients move to new connections during those 5 seconds, before
//! Pingora closes the idle ones. SIGTERM drains too (Pingora closes idle connections at once
//! then; the flag covers requests still in flight).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use log::info;
use pingora::server::{ExecutionPhase, ShutdownWatch};
use pingora::services::background::BackgroundService;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Whether this process is draining; cheap to clone and to read on every request.
#[derive(Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    /// True once an upgrade or a shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        if !self.0.swap(true, Ordering::Relaxed) {
            info!("draining: replies now close their connections");
        }
    }
}

/// Does this phase mean the process will stop serving soon?
fn drains(phase: &ExecutionPhase) -> bool {
    matches!(
        phase,
        ExecutionPhase::GracefulUpgradeTransferringFds
            | ExecutionPhase::GracefulUpgradeCloseTimeout
            | ExecutionPhase::GracefulTerminate
            | ExecutionPhase::ShutdownStarted
            | ExecutionPhase::ShutdownGracePeriod
            | ExecutionPhase::ShutdownRuntimes
            | ExecutionPhase::Terminated
    )
}

/// Work to run once the process serves (after a daemon's fork).
pub type OnStart = Box<dyn FnOnce() + Send>;

/// A background service: runs the start work, then follows Pingora's execution phases (from
/// `Server::watch_execution_phase`) and starts the drain at the first one that ends serving.
pub struct Lifecycle {
    drain: Drain,
    on_start: Mutex<Option<OnStart>>,
    phases: Mutex<Option<Receiver<ExecutionPhase>>>,
}

impl Lifecycle {
    /// Runs `on_start` once serving, then watches `phases` for `drain`.
    pub fn new(drain: Drain, phases: Receiver<ExecutionPhase>, on_start: OnStart) -> Self {
        Lifecycle {
            drain,
            on_start: Mutex::new(Some(on_start)),
            phases: Mutex::new(Some(phases)),
        }
    }
}

/// Takes a value out of a `Mutex<Option<_>>` (the service's start runs once).
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().ok().and_then(|mut s| s.take())
}

#[async_trait]
impl BackgroundService for Lifecycle {
    /// Runs until the drain starts or the phase channel closes. Pingora's shutdown watch is not
    /// awaited: the phases that matter come before it.
    async fn start(&self, _shutdown: ShutdownWatch) {
        if let Some(on_start) = take(&self.on_start) {
            on_start();
        }
        let Some(mut phases) = take(&self.phases) else {
            return;
        };
        loop {
            match phases.recv().await {
                Ok(phase) if drains(&phase) => return self.drain.start(),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn upgrade_and_shutdown_phases_drain_running_does_not() {
        assert!(!drains(&ExecutionPhase::Running));
        assert!(!drains(&ExecutionPhase::BootstrapComplete));
        assert!(drains(&ExecutionPhase::GracefulUpgradeTransferringFds));
        assert!(drains(&ExecutionPhase::GracefulTerminate));
    }

    #[tokio::test]
    async fn the_service_runs_the_start_work_once_and_drains_at_an_upgrade() {
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let drain = Drain::default();
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        let life = Lifecycle::new(
            drain.clone(),
            rx,
            Box::new(move || {
                s.fetch_add(1, Ordering::Relaxed);
            }),
        );
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tx.send(ExecutionPhase::Running).unwrap();
        tx.send(ExecutionPhase::GracefulUpgradeTransferringFds)
            .unwrap();
        life.start(stop_rx.clone()).await;
        assert!(drain.is_draining());
        // A second start (never done by Pingora) does nothing.
        life.start(stop_rx).await;
        assert_eq!(started.load(Ordering::Relaxed), 1);
    }
}
