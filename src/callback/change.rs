//! Changes to a callback record (§4 cancel, §5 reschedule and edits, §7.1 submission, §7.2
//! ORS reports) as pure code: [`apply`] checks a change against the state machine of
//! [`super::record`] and returns the record it leaves; [`claim`] is the scheduler's claim.
//! The stores write the result atomically with their indexes.

use jiff::Timestamp;

use super::record::{
    may_move, Actor, CallbackRecord, Claim, OrsRef, State, CUSTOMER_NUMBER, SUBMIT_FAILED,
};

/// A new desired time (§5): the times and bucket that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reschedule {
    /// `_new_desired_time`.
    pub desired: Timestamp,
    /// Its submit time.
    pub submit_at: Timestamp,
    /// Its expiration time (`_expiration_time` moves with `_desired_time`).
    pub expires: Timestamp,
    /// The bucket it books, or none.
    pub bucket: Option<i64>,
    /// The new bucket's capacity: refused ([`Rejection::BucketFull`]) when it is full.
    /// `None`: not checked. A move within the same bucket is never refused.
    pub capacity: Option<u32>,
}

/// A change of state, by whom it is made (§7.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Gateway: cancel (§4, §9): `COMPLETED` with this reason. From `SCHEDULED`, from
    /// `SUBMITTING` (the submitter then finds it cancelled, see `Submitted`), and from the
    /// active states once ORS was told.
    Cancel {
        /// `CANCELLED`, `CANCELLED_BY_ADMIN`, or the admin's reason.
        reason: String,
    },
    /// ORS: a state report (§7.2); a reason replaces the record's when given.
    Report {
        /// The reported state (a public one).
        state: State,
        /// `_callback_reason`.
        reason: Option<String>,
    },
    /// Gateway: a new desired time, only in `SCHEDULED` (§5).
    Reschedule(Reschedule),
    /// Gateway: `node`'s submission started an ORS session. `SUBMITTING` becomes `QUEUED`
    /// (a state ORS already reported stays). Refused when another node holds the claim
    /// ([`Rejection::NotClaimer`]: its lease ran out and another node took the record) or the
    /// record is completed, cancelled meanwhile (or already completed by ORS)
    /// ([`Rejection::InvalidState`]): the caller then cancels the session it started.
    Submitted {
        /// The node that claimed it.
        node: String,
        /// The session.
        ors: OrsRef,
    },
    /// Gateway: `node`'s attempt failed. Back to `SCHEDULED` until `retry_at`, or, once
    /// `attempts` reached `max_attempts`, `COMPLETED`/`SUBMIT_FAILED` (§7.1).
    SubmitFailed {
        /// The node that claimed it.
        node: String,
        /// When to try again.
        retry_at: Timestamp,
        /// `_max_ors_submit_attempts`.
        max_attempts: u32,
    },
    /// Gateway (scheduler): `COMPLETED`/`SUBMIT_FAILED` without a further attempt: too old at
    /// start-up (§7.1), or its claim ran out with every attempt spent.
    GiveUp,
}

/// One change to a record: a state change, key edits, or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    /// The state change, if any.
    pub change: Option<Change>,
    /// Lookup keys to set (`Some`) or remove (`None` or an empty value). `_customer_number`
    /// is not changed here.
    pub lookup: Vec<(String, Option<String>)>,
    /// Properties to set or remove, likewise.
    pub props: Vec<(String, Option<String>)>,
}

/// Why an [`Update`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not allowed in the record's state (or by that actor): 400
    /// `CallbackExceptionInvalidState`.
    InvalidState,
    /// A submission result from a node that does not hold the claim.
    NotClaimer,
    /// The new desired time's bucket is full: 400 `CallbackExceptionAvailability`.
    BucketFull,
}

/// The record after `update`, its version bumped, [`CallbackRecord::normalized`]; or why not.
/// A completed record takes no change at all (§4, §5: 400).
pub fn apply(record: &CallbackRecord, update: &Update) -> Result<CallbackRecord, Rejection> {
    if record.state.is_final() {
        return Err(Rejection::InvalidState);
    }
    let mut next = record.clone();
    if let Some(change) = &update.change {
        change_state(&mut next, change)?;
    }
    edit(&mut next.lookup, &update.lookup, true);
    edit(&mut next.props, &update.props, false);
    next.version += 1;
    Ok(next.normalized())
}

fn change_state(next: &mut CallbackRecord, change: &Change) -> Result<(), Rejection> {
    let from = next.state;
    let allowed = |to, by| {
        if may_move(from, to, by) {
            Ok(())
        } else {
            Err(Rejection::InvalidState)
        }
    };
    match change {
        Change::Cancel { reason } => {
            allowed(State::Completed, Actor::Gateway)?;
            complete(next, reason);
        }
        Change::Report { state, reason } => {
            if *state == State::Submitting {
                return Err(Rejection::InvalidState);
            }
            allowed(*state, Actor::Ors)?;
            if let Some(r) = reason {
                next.reason = Some(r.clone());
            }
            next.state = *state;
            if state.is_final() {
                next.claim = None;
                next.next_attempt = None;
            }
        }
        Change::Reschedule(r) => {
            if from != State::Scheduled {
                return Err(Rejection::InvalidState);
            }
            next.desired = r.desired;
            next.submit_at = r.submit_at;
            next.expires = r.expires;
            next.bucket = r.bucket;
            next.attempts = 0;
            next.next_attempt = None;
        }
        Change::Submitted { node, ors } => {
            claimed_by(next, node)?;
            match from {
                State::Submitting => next.state = State::Queued,
                // ORS reported before the gateway wrote the session down.
                State::Queued | State::Routing | State::Processing | State::Paused
                    if next.ors.is_none() => {}
                _ => return Err(Rejection::InvalidState),
            }
            next.ors = Some(ors.clone());
            next.claim = None;
            next.next_attempt = None;
        }
        Change::SubmitFailed {
            node,
            retry_at,
            max_attempts,
        } => {
            if from != State::Submitting {
                return Err(Rejection::InvalidState);
            }
            claimed_by(next, node)?;
            if next.attempts >= *max_attempts {
                complete(next, SUBMIT_FAILED);
            } else {
                next.state = State::Scheduled;
                next.claim = None;
                next.next_attempt = Some(*retry_at);
            }
        }
        Change::GiveUp => {
            if !matches!(from, State::Scheduled | State::Submitting) {
                return Err(Rejection::InvalidState);
            }
            complete(next, SUBMIT_FAILED);
        }
    }
    Ok(())
}

/// The scheduler's claim (§7.1): `record` (`Scheduled`, or `Submitting` under a claim that
/// ran out) becomes `Submitting`, held by `node` until `until`, one more attempt counted.
pub fn claim(record: &CallbackRecord, node: &str, until: Timestamp) -> CallbackRecord {
    let mut next = record.clone();
    next.state = State::Submitting;
    next.claim = Some(Claim {
        node: node.to_string(),
        until,
    });
    next.attempts += 1;
    next.version += 1;
    next
}

fn claimed_by(record: &CallbackRecord, node: &str) -> Result<(), Rejection> {
    match &record.claim {
        Some(c) if c.node == node => Ok(()),
        Some(_) => Err(Rejection::NotClaimer),
        None if record.state == State::Submitting => Err(Rejection::NotClaimer),
        None => Err(Rejection::InvalidState),
    }
}

fn complete(record: &mut CallbackRecord, reason: &str) {
    record.state = State::Completed;
    record.reason = Some(reason.to_string());
    record.claim = None;
    record.next_attempt = None;
}

/// Sets or removes keys, keeping them sorted by key; `_customer_number` is left alone in
/// `lookup`.
fn edit(pairs: &mut Vec<(String, String)>, edits: &[(String, Option<String>)], lookup: bool) {
    for (key, value) in edits {
        if lookup && key == CUSTOMER_NUMBER {
            continue;
        }
        let value = value.as_deref().filter(|v| !v.is_empty());
        match (pairs.iter().position(|(k, _)| k == key), value) {
            (Some(i), Some(v)) => pairs[i].1 = v.to_string(),
            (Some(i), None) => {
                pairs.remove(i);
            }
            (None, Some(v)) => {
                let at = pairs.partition_point(|(k, _)| k < key);
                pairs.insert(at, (key.clone(), v.to_string()));
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::record::fixtures::{at, scheduled};
    use crate::callback::record::{CANCELLED, CANCELLED_BY_ADMIN};
    use State::*;

    fn claimed(node: &str) -> CallbackRecord {
        let mut r = scheduled();
        r.state = Submitting;
        r.attempts = 1;
        r.claim = Some(Claim {
            node: node.into(),
            until: at("2026-03-02T14:29:00Z"),
        });
        r
    }

    fn change(c: Change) -> Update {
        Update {
            change: Some(c),
            ..Update::default()
        }
    }

    fn session() -> OrsRef {
        OrsRef {
            node: "http://ors1".into(),
            session: "s1".into(),
        }
    }

    #[test]
    fn cancel_completes_from_scheduled_and_active_states_only() {
        let r = apply(
            &scheduled(),
            &change(Change::Cancel {
                reason: CANCELLED.into(),
            }),
        )
        .unwrap();
        assert_eq!((r.state, r.reason.as_deref()), (Completed, Some(CANCELLED)));
        assert_eq!(r.version, 1);
        assert_eq!(r.booked_bucket(), None, "a cancel gives the slot back");
        assert_eq!(r.due_at(), None);
        let again = apply(
            &r,
            &change(Change::Cancel {
                reason: CANCELLED.into(),
            }),
        );
        assert_eq!(again, Err(Rejection::InvalidState));
        let mut queued = scheduled();
        queued.state = Routing;
        let r = apply(
            &queued,
            &change(Change::Cancel {
                reason: CANCELLED_BY_ADMIN.into(),
            }),
        )
        .unwrap();
        assert_eq!(r.state, Completed);
    }

    #[test]
    fn ors_reports_follow_the_table_and_keep_the_bucket_unless_cancelled() {
        let mut r = scheduled();
        r.state = Queued;
        let report = |state, reason: Option<&str>| {
            change(Change::Report {
                state,
                reason: reason.map(str::to_string),
            })
        };
        assert_eq!(
            apply(&r, &report(Processing, None)),
            Err(Rejection::InvalidState)
        );
        let r = apply(&r, &report(Routing, None)).unwrap();
        let r = apply(&r, &report(Processing, None)).unwrap();
        let done = apply(&r, &report(Completed, Some("AGENT_CONNECTED"))).unwrap();
        assert_eq!(done.reason.as_deref(), Some("AGENT_CONNECTED"));
        assert_eq!(done.booked_bucket(), done.bucket, "handled: still booked");
        let cancelled = apply(&r, &report(Completed, Some(CANCELLED))).unwrap();
        assert_eq!(cancelled.booked_bucket(), None);
        assert_eq!(
            apply(&scheduled(), &report(Queued, None)),
            Err(Rejection::InvalidState),
            "ORS knows nothing of a record never submitted"
        );
        assert_eq!(
            apply(&r, &report(Submitting, None)),
            Err(Rejection::InvalidState)
        );
    }

    #[test]
    fn reschedule_only_while_scheduled_and_resets_attempts() {
        let mut r = scheduled();
        r.attempts = 2;
        r.next_attempt = Some(at("2026-03-02T14:29:00Z"));
        let moved = Reschedule {
            desired: at("2026-03-04T09:00:00Z"),
            submit_at: at("2026-03-04T08:58:00Z"),
            expires: at("2026-03-05T09:00:00Z"),
            bucket: Some(at("2026-03-04T09:00:00Z").as_millisecond()),
            capacity: Some(5),
        };
        let next = apply(&r, &change(Change::Reschedule(moved.clone()))).unwrap();
        assert_eq!(next.desired, moved.desired);
        assert_eq!(next.expires, moved.expires);
        assert_eq!(next.bucket, moved.bucket);
        assert_eq!((next.attempts, next.next_attempt), (0, None));
        assert_eq!(next.due_at(), Some(moved.submit_at));
        assert_eq!(
            apply(&claimed("a"), &change(Change::Reschedule(moved))),
            Err(Rejection::InvalidState),
            "too late: it is being submitted"
        );
    }

    #[test]
    fn only_the_claimer_records_a_submission() {
        let r = claimed("a");
        let by = |node: &str| {
            change(Change::Submitted {
                node: node.into(),
                ors: session(),
            })
        };
        assert_eq!(apply(&r, &by("b")), Err(Rejection::NotClaimer));
        let q = apply(&r, &by("a")).unwrap();
        assert_eq!(
            (q.state, &q.claim, &q.ors),
            (Queued, &None, &Some(session()))
        );
        assert_eq!(apply(&q, &by("a")), Err(Rejection::InvalidState));

        // ORS reported first: the state stays, the session is written down.
        let early = apply(
            &r,
            &change(Change::Report {
                state: Routing,
                reason: None,
            }),
        )
        .unwrap();
        assert_eq!(early.claim, r.claim, "the claim waits for the session");
        let q = apply(&early, &by("a")).unwrap();
        assert_eq!((q.state, q.ors.is_some()), (Routing, true));

        // Cancelled while being submitted: the submitter learns it.
        let cancelled = apply(
            &r,
            &change(Change::Cancel {
                reason: CANCELLED.into(),
            }),
        )
        .unwrap();
        assert_eq!(apply(&cancelled, &by("a")), Err(Rejection::InvalidState));
    }

    #[test]
    fn failed_attempts_retry_until_the_last() {
        let fail = |node: &str| {
            change(Change::SubmitFailed {
                node: node.into(),
                retry_at: at("2026-03-02T14:28:10Z"),
                max_attempts: 2,
            })
        };
        let r = claimed("a");
        assert_eq!(apply(&r, &fail("b")), Err(Rejection::NotClaimer));
        let retry = apply(&r, &fail("a")).unwrap();
        assert_eq!(retry.state, Scheduled);
        assert_eq!(retry.due_at(), Some(at("2026-03-02T14:28:10Z")));
        let mut second = retry.clone();
        second.state = Submitting;
        second.attempts = 2;
        second.claim = r.claim.clone();
        let failed = apply(&second, &fail("a")).unwrap();
        assert_eq!(
            (failed.state, failed.reason.as_deref()),
            (Completed, Some(SUBMIT_FAILED))
        );
        assert_eq!(failed.booked_bucket(), None);
        assert_eq!(
            apply(&scheduled(), &fail("a")),
            Err(Rejection::InvalidState)
        );
        let given_up = apply(&scheduled(), &change(Change::GiveUp)).unwrap();
        assert_eq!(given_up.reason.as_deref(), Some(SUBMIT_FAILED));
    }

    #[test]
    fn edits_set_and_remove_keys_but_not_the_customer_number() {
        let mut r = scheduled();
        r.lookup = vec![("CB_SUB".into(), "1".into())];
        let next = apply(
            &r,
            &Update {
                change: None,
                lookup: vec![
                    ("CB_SUB".into(), Some(String::new())),
                    ("CB_OTHER".into(), Some("x".into())),
                    (CUSTOMER_NUMBER.into(), Some("999".into())),
                ],
                props: vec![("_vq".into(), Some("VQ1".into()))],
            },
        )
        .unwrap();
        assert_eq!(next.lookup, vec![("CB_OTHER".to_string(), "x".to_string())]);
        assert_eq!(next.lookup_value(CUSTOMER_NUMBER), Some("5551234"));
        assert_eq!(next.prop("_vq"), Some("VQ1"));
        let mut done = r.clone();
        done.state = Completed;
        assert_eq!(
            apply(&done, &Update::default()),
            Err(Rejection::InvalidState)
        );
    }
}
