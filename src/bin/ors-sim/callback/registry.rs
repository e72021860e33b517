//! The callbacks the strategy runs: their progress through the steps, the timers that drive
//! them and the queue positions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::{report, CallbackConfig, Step, COMPLETED};
use crate::sessions::Bounded;
use crate::sim::{lock, now_ms};

/// Reports kept per callback for `/sim/callbacks`.
const MAX_REPORTS: usize = 32;

/// One state report as sent (or not).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub state: String,
    pub reason: Option<String>,
    pub at_ms: u64,
    /// The gateway's status code.
    pub status: Option<u16>,
    /// Why there is no status.
    pub error: Option<String>,
}

/// The submissions of one callback: ORS sessions started for it, start requests it took.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Starts {
    pub sessions: u64,
    pub requests: u64,
}

/// What `Callbacks::step` did.
pub enum StepResult {
    Taken(Report),
    /// The callback has ended (or no step is left to take).
    NoStepLeft,
    /// Another step came first (the timer's turn passed).
    Superseded,
}

#[derive(Serialize)]
struct Progress {
    state: String,
    reason: Option<String>,
    /// Index of the next step of the configuration.
    next_step: usize,
    ended: bool,
    reports: VecDeque<Report>,
    /// Changes with every step, so that a timer knows whether its step is still due.
    #[serde(skip)]
    generation: u64,
}

/// One callback, registered by its start request.
pub struct Callback {
    pub service_id: String,
    pub service_name: Option<String>,
    pub session: String,
    owner: Arc<str>,
    /// Registration order, for queue positions.
    seq: u64,
    progress: Mutex<Progress>,
    /// Held while a step is taken and reported, so that the reports of one callback go out
    /// one at a time, in order.
    turn: tokio::sync::Mutex<()>,
    /// Wakes the timer when the callback ends.
    ended: Notify,
}

impl Callback {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        lock(&self.progress)
    }

    fn is_queued(&self) -> bool {
        let p = self.progress();
        !p.ended && p.state == "QUEUED"
    }

    /// Stops the callback: no more steps on the timer.
    fn end(&self) {
        self.progress().ended = true;
        self.ended.notify_waiters();
    }

    /// The callback as `/sim/callbacks` shows it.
    pub fn view(&self) -> Value {
        let p = self.progress();
        let mut v = match serde_json::to_value(&*p) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        v.insert("service_name".into(), self.service_name.clone().into());
        v.insert("session".into(), self.session.clone().into());
        v.insert("owner".into(), Value::from(&*self.owner));
        Value::Object(v)
    }
}

/// The callback mode's configuration and callbacks.
pub struct Callbacks {
    config: RwLock<Option<Arc<CallbackConfig>>>,
    map: Mutex<Bounded<Arc<Callback>>>,
    seq: AtomicU64,
    /// Submissions seen per callback id (`GET /sim/starts`): a count past 1 is a callback
    /// submitted twice, which a test of the gateway's scheduler looks for.
    starts: Mutex<Bounded<Starts>>,
}

impl Callbacks {
    /// The registry, with the mode on when `config` is given; keeps at most `max` callbacks.
    pub fn new(config: Option<CallbackConfig>, max: usize) -> Callbacks {
        Callbacks {
            config: RwLock::new(config.map(Arc::new)),
            map: Mutex::new(Bounded::new(max)),
            seq: AtomicU64::new(0),
            starts: Mutex::new(Bounded::new(max)),
        }
    }

    /// The configuration; None while the mode is off.
    pub fn config(&self) -> Option<Arc<CallbackConfig>> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration (None turns the mode off).
    pub fn set_config(&self, config: Option<CallbackConfig>) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config.map(Arc::new);
    }

    /// The callback with this id.
    pub fn get(&self, service_id: &str) -> Option<Arc<Callback>> {
        lock(&self.map).map.get(service_id).cloned()
    }

    /// Registers the callback of session `session` (in state QUEUED) unless it has one
    /// already, and starts its timer when steps run on their own. A callback submitted
    /// again (a new session) replaces the old one.
    pub fn register(
        self: &Arc<Self>,
        service_id: String,
        service_name: Option<String>,
        session: &str,
        owner: Arc<str>,
    ) {
        let mut map = lock(&self.map);
        if let Some(cb) = map.map.get(&service_id) {
            if cb.session == session && !cb.progress().ended {
                return;
            }
        }
        let cb = Arc::new(Callback {
            service_id: service_id.clone(),
            service_name,
            session: session.to_string(),
            owner,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            progress: Mutex::new(Progress {
                state: "QUEUED".into(),
                reason: None,
                next_step: 0,
                ended: false,
                reports: VecDeque::new(),
                generation: 0,
            }),
            turn: tokio::sync::Mutex::new(()),
            ended: Notify::new(),
        });
        for old in map.insert(service_id, cb.clone()) {
            old.end();
        }
        drop(map);
        if self.config().is_some_and(|c| c.auto) {
            tokio::spawn(run_timer(self.clone(), cb));
        }
    }

    /// Counts a session start (`request`: false) or a start request (true) for callback
    /// `service_id`.
    pub fn count_start(&self, service_id: &str, request: bool) {
        let mut starts = lock(&self.starts);
        let mut n = starts.map.get(service_id).copied().unwrap_or_default();
        if request {
            n.requests += 1;
        } else {
            n.sessions += 1;
        }
        starts.insert(service_id.to_string(), n);
    }

    /// The submissions seen per callback id since the last [`Callbacks::clear_starts`].
    pub fn starts(&self) -> Value {
        let starts = lock(&self.starts);
        serde_json::to_value(&starts.map).unwrap_or_default()
    }

    /// Forgets the start counts.
    pub fn clear_starts(&self) {
        lock(&self.starts).clear();
    }

    /// Ends the callback `service_id` if it belongs to session `session`.
    pub fn end_session(&self, service_id: &str, session: &str) {
        if let Some(cb) = self.get(service_id).filter(|cb| cb.session == session) {
            cb.end();
        }
    }

    /// Forgets every callback.
    pub fn clear(&self) {
        let all: Vec<Arc<Callback>> = {
            let mut map = lock(&self.map);
            let all = map.map.values().cloned().collect();
            map.clear();
            all
        };
        all.iter().for_each(|cb| cb.end());
    }

    /// Every callback's view, by id.
    pub fn views(&self) -> Value {
        let all: Vec<Arc<Callback>> = lock(&self.map).map.values().cloned().collect();
        let m: Map<String, Value> = all
            .iter()
            .map(|cb| (cb.service_id.clone(), cb.view()))
            .collect();
        Value::Object(m)
    }

    /// `(position, waiting)`: the callback's rank among those still QUEUED, by registration
    /// (0 when it is not queued), and how many are.
    pub fn position(&self, cb: &Callback) -> (u64, u64) {
        let map = lock(&self.map);
        let (mut ahead, mut waiting) = (0, 0);
        for other in map.map.values().filter(|o| o.is_queued()) {
            waiting += 1;
            if other.seq < cb.seq {
                ahead += 1;
            }
        }
        let position = if cb.is_queued() { ahead + 1 } else { 0 };
        (position, waiting)
    }

    /// Takes a step of `cb` and reports it: `explicit`, or else the next configured one.
    /// With `generation`, only if no other step was taken since it was read.
    pub async fn step(
        &self,
        cb: &Callback,
        explicit: Option<Step>,
        generation: Option<u64>,
    ) -> StepResult {
        let _turn = cb.turn.lock().await;
        let cfg = self.config();
        let step = {
            let mut p = cb.progress();
            if generation.is_some_and(|g| g != p.generation) {
                return StepResult::Superseded;
            }
            let steps = cfg.as_deref().map_or(&[][..], |c| &c.steps[..]);
            let step = match explicit {
                Some(s) => {
                    // A state of the script taken by hand continues the script after it.
                    if let Some(i) = steps.iter().position(|x| x.state == s.state) {
                        p.next_step = i + 1;
                    }
                    s
                }
                None => match steps.get(p.next_step).filter(|_| !p.ended) {
                    Some(s) => {
                        p.next_step += 1;
                        s.clone()
                    }
                    None => return StepResult::NoStepLeft,
                },
            };
            p.generation += 1;
            p.state = step.state.clone();
            p.reason = step.reason.clone();
            step
        };
        if step.state == COMPLETED {
            cb.end();
        }
        let sent = match &cfg {
            Some(c) => report::send(c, cb, &step).await,
            None => Err("callback mode is off: not reported".to_string()),
        };
        let (status, error) = match sent {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        let r = Report {
            state: step.state,
            reason: step.reason,
            at_ms: now_ms(),
            status,
            error,
        };
        let mut p = cb.progress();
        if p.reports.len() >= MAX_REPORTS {
            p.reports.pop_front();
        }
        p.reports.push_back(r.clone());
        StepResult::Taken(r)
    }
}

/// Takes the configured steps of `cb` one after another, each `delay_ms` after the one
/// before, until the callback ends, the steps run out or the mode stops being `auto`.
async fn run_timer(callbacks: Arc<Callbacks>, cb: Arc<Callback>) {
    loop {
        let ended = cb.ended.notified();
        let Some(cfg) = callbacks.config().filter(|c| c.auto) else {
            return;
        };
        let (delay, generation) = {
            let p = cb.progress();
            match cfg.steps.get(p.next_step) {
                Some(s) if !p.ended => (s.delay_ms, p.generation),
                _ => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
            _ = ended => return,
        }
        // A step taken by hand meanwhile restarts the wait for the one after it.
        let _ = callbacks.step(&cb, None, Some(generation)).await;
    }
}
