//! The [`CallbackStore`] on Redis (and Redis Cluster): per callback service `S`, these keys,
//! all with the hash tag `{cb:S}` so that one script sees them together (`P` is the prefix):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P cr{cb:S}<id>` | hash | a record (`codec.rs`), until its expiration + 7 days |
//! | `P ci{cb:S}` | sorted set, scores 0 | the index: one member per record and slice, `<slice prefix><desired ms, 13 digits><id>` (`store/callback/index.rs`) |
//! | `P cc{cb:S}` | hash | counts: `n<state code>` records per state, `b<bucket key>` records booked per bucket |
//! | `P cd{cb:S}` | sorted set | the due list: id by due time (submit time, next attempt, end of a claim) |
//! | `P ce{cb:S}` | sorted set | id by expiration time |
//! | `P co{cb:S}` | hash | shared options: `b<sha1>` packed list, `n<sha1>` records using it |
//! | `P ct{cb:S}` | sorted set | id by creation time, within the longest throttle window |
//! | `P cp{cb:S}<day>` | hash | creates per `<key>\0<value>` on that UTC day (number since 1970) |
//!
//! Every key of a service lives at least as long as its latest record plus 7 days.
//!
//! # Round trips
//! - `create`: one script call (checks, record, index, counts, throttles).
//! - `get`, `booked`: one call. `find` and cross-service `query`/`state_counts`: one call per
//!   service, sent together (one round trip).
//! - `update`, `abort`: a read and a compare-and-set (two; again when another write came
//!   between, which the compare-and-set detects by the record's version).
//! - `query` (per service): one script call that walks the smallest group of index slices.
//! - `claim_due`: one script call; records to give up or drop take one compare-and-set each,
//!   sent together. `purge_expired`: one call to list them, then their removals together.

mod args;
mod codec;
mod lua;

use async_trait::async_trait;
use jiff::Timestamp;
use redis::Value as RValue;
use uuid::Uuid;

use self::args::{bytes, customer_slice, items, record, Args, Keys};
use self::lua::SCRIPTS;
use super::conn::{damaged, OpError};
use super::RedisStore;
use crate::store::callback::index::room_needed;
use crate::store::callback::{
    abortable, apply, CallbackRecord, CallbackStore, Change, ClaimRequest, Claimed, CreateRefusal,
    Found, NewCallback, Query, Rejection, State, StateCounts, Update, Updated,
};
use crate::store::{StoreError, StoreResult};

/// Reads and compare-and-sets one change tries before it gives up (each retry means another
/// write to the same record came between its read and its write).
const CAS_TRIES: usize = 8;

const DAY_MS: i64 = 86_400_000;

/// What a compare-and-set found.
#[derive(Debug, PartialEq, Eq)]
enum Cas {
    Done,
    /// The record changed (or vanished) since it was read.
    Conflict,
    /// The bucket of a reschedule is full.
    Full,
}

fn busy() -> OpError {
    OpError::Store(StoreError::Unavailable(
        "redis: a callback record kept changing under a write".into(),
    ))
}

fn live(r: &CallbackRecord) -> bool {
    r.expires > Timestamp::now()
}

impl RedisStore {
    fn cb_keys(&self, service: &str) -> Keys {
        Keys::new(&self.prefix, service)
    }

    /// A live record.
    async fn read_cb(
        &self,
        k: &Keys,
        service: &str,
        id: Uuid,
    ) -> Result<Option<CallbackRecord>, OpError> {
        let v: RValue = self
            .invoke(SCRIPTS.get.key(k.record(id)).key(&k.options))
            .await?;
        let mut it = items(v)
            .ok_or_else(|| damaged("callback reply"))?
            .into_iter();
        let fields = it.next().unwrap_or(RValue::Nil);
        if matches!(&fields, RValue::Array(a) if a.is_empty()) || fields == RValue::Nil {
            return Ok(None);
        }
        let opts = it.next().and_then(bytes);
        let pairs = super::codec::hash_pairs(fields).ok_or_else(|| damaged("callback record"))?;
        let r = codec::parse(id, service, pairs, opts.as_deref())
            .ok_or_else(|| damaged("callback record"))?;
        Ok(Some(r).filter(live))
    }

    /// Writes `before` -> `after` if the record is still `before` (or absent, for none).
    async fn cas(
        &self,
        k: &Keys,
        before: Option<&CallbackRecord>,
        after: Option<&CallbackRecord>,
        room: Option<(i64, u32)>,
    ) -> Result<Cas, OpError> {
        let id = before.or(after).map_or(Uuid::nil(), |r| r.id);
        let script = if after.is_some() {
            &SCRIPTS.write
        } else {
            &SCRIPTS.remove
        };
        let mut a = Args::default();
        a.put(before.map(|r| r.version.to_string()).unwrap_or_default())
            .room(room)
            .change(before, after);
        let mut inv = k.invocation(script, id, None);
        inv.arg(a.0);
        let reply: String = self.invoke(&inv).await?;
        match reply.as_str() {
            "ok" => Ok(Cas::Done),
            "conflict" => Ok(Cas::Conflict),
            "full" => Ok(Cas::Full),
            _ => Err(damaged("callback write reply")),
        }
    }

    async fn query_one(&self, service: &str, q: &Query) -> Result<Found, OpError> {
        let k = self.cb_keys(service);
        let mut a = Args::default();
        a.put(k.base.clone()).query(q);
        let mut inv = SCRIPTS.query.key(&k.index);
        inv.key(&k.options).arg(a.0);
        let v: RValue = self.invoke(&inv).await?;
        let mut it = items(v).ok_or_else(|| damaged("query reply"))?.into_iter();
        let complete = it.next() == Some(RValue::Int(1));
        let mut records = Vec::new();
        while let (Some(id), Some(fields), opts) = (it.next(), it.next(), it.next()) {
            let r = record(service, id, fields, opts).ok_or_else(|| damaged("callback record"))?;
            if q.matches(&r) && live(&r) {
                records.push(r);
            }
        }
        Ok(Found { records, complete })
    }
}

#[async_trait]
impl CallbackStore for RedisStore {
    async fn create(
        &self,
        new: &NewCallback,
    ) -> StoreResult<Result<CallbackRecord, CreateRefusal>> {
        let rec = new.record.normalized();
        let k = self.cb_keys(&rec.service);
        let limits = &new.limits;
        let created = rec.created.as_millisecond();
        let day = created.div_euclid(DAY_MS);
        let (cn_lo, cn_hi) = customer_slice(&rec.customer_number);
        let params = limits.per_parameter.as_ref();
        let mut a = Args::default();
        a.room(new.capacity.and_then(|c| Some((rec.booked_bucket()?, c))))
            .put(limits.max_active.map(|m| m.to_string()).unwrap_or_default())
            .num(created)
            .list(
                limits
                    .throttles
                    .iter()
                    .flat_map(|t| [t.window.as_millis().to_string(), t.max.to_string()]),
            )
            .num((day + 2) * DAY_MS)
            .list(
                params
                    .into_iter()
                    .flat_map(|p| p.values.iter().map(|(k, v)| format!("{k}\0{v}"))),
            )
            .num(params.map_or(0, |p| p.max))
            .put(limits.in_queue.map(|m| m.to_string()).unwrap_or_default())
            .put(cn_lo)
            .put(cn_hi)
            .put(k.base.clone())
            .change(None, Some(&rec));
        let mut inv = k.invocation(&SCRIPTS.create, rec.id, Some(day));
        inv.arg(a.0);
        self.bounded(async {
            let reply: Vec<RValue> = self.invoke(&inv).await?;
            let mut it = reply.into_iter();
            let what = it.next().and_then(bytes).unwrap_or_default();
            let index = match it.next() {
                Some(RValue::Int(i)) => usize::try_from(i - 1).ok(),
                _ => None,
            };
            Ok(match (what.as_slice(), index) {
                // 'exists': this very create ran already (a resend after a dropped connection).
                (b"ok" | b"exists", _) => Ok(rec),
                (b"bucket", _) => Err(CreateRefusal::BucketFull),
                (b"queue", _) => Err(CreateRefusal::QueueFull),
                (b"duplicate", _) => Err(CreateRefusal::Duplicate),
                (b"throttle", Some(i)) if i < limits.throttles.len() => {
                    Err(CreateRefusal::Throttled {
                        index: i,
                        window: limits.throttles[i].window,
                    })
                }
                (b"param", Some(i)) => match params.and_then(|p| p.values.get(i)) {
                    Some((key, value)) => Err(CreateRefusal::ParameterLimit {
                        key: key.clone(),
                        value: value.clone(),
                    }),
                    None => return Err(damaged("create reply")),
                },
                _ => return Err(damaged("create reply")),
            })
        })
        .await
    }

    async fn abort(&self, new: &NewCallback) -> StoreResult<bool> {
        let r = &new.record;
        let k = self.cb_keys(&r.service);
        let day = r.created.as_millisecond().div_euclid(DAY_MS);
        let params: Vec<String> = new
            .limits
            .per_parameter
            .iter()
            .flat_map(|p| p.values.iter().map(|(k, v)| format!("{k}\0{v}")))
            .collect();
        self.bounded(async {
            for _ in 0..CAS_TRIES {
                let Some(cur) = self.read_cb(&k, &r.service, r.id).await? else {
                    return Ok(false);
                };
                if !abortable(&cur, new) {
                    return Ok(false);
                }
                let mut a = Args::default();
                a.num(cur.version)
                    .list(params.iter().map(String::as_str))
                    .change(Some(&cur), None);
                let mut inv = k.invocation(&SCRIPTS.abort, r.id, Some(day));
                inv.arg(a.0);
                let reply: String = self.invoke(&inv).await?;
                if reply == "ok" {
                    return Ok(true);
                }
            }
            Err(busy())
        })
        .await
    }

    async fn get(&self, service: &str, id: Uuid) -> StoreResult<Option<CallbackRecord>> {
        let k = self.cb_keys(service);
        self.bounded(self.read_cb(&k, service, id)).await
    }

    async fn find(&self, services: &[&str], id: Uuid) -> StoreResult<Option<CallbackRecord>> {
        let keys: Vec<Keys> = services.iter().map(|s| self.cb_keys(s)).collect();
        self.bounded(async {
            let reads = services
                .iter()
                .zip(&keys)
                .map(|(s, k)| self.read_cb(k, s, id));
            for r in futures::future::join_all(reads).await {
                if let Some(found) = r? {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn update(&self, service: &str, id: Uuid, update: &Update) -> StoreResult<Updated> {
        let k = self.cb_keys(service);
        self.bounded(async {
            for _ in 0..CAS_TRIES {
                let Some(cur) = self.read_cb(&k, service, id).await? else {
                    return Ok(Updated::NotFound);
                };
                let next = match apply(&cur, update) {
                    Ok(next) => next,
                    Err(why) => return Ok(Updated::Refused(why, cur)),
                };
                let room = room_needed(&cur, &next, update);
                match self.cas(&k, Some(&cur), Some(&next), room).await? {
                    Cas::Done => return Ok(Updated::Done(next)),
                    Cas::Full => return Ok(Updated::Refused(Rejection::BucketFull, cur)),
                    Cas::Conflict => {}
                }
            }
            Err(busy())
        })
        .await
    }

    async fn query(&self, services: &[&str], query: &Query) -> StoreResult<Found> {
        self.bounded(async {
            let parts =
                futures::future::join_all(services.iter().map(|s| self.query_one(s, query)));
            let parts: Result<Vec<Found>, OpError> = parts.await.into_iter().collect();
            Ok(Found::merge(parts?, query.limit))
        })
        .await
    }

    async fn booked(&self, service: &str, buckets: &[i64]) -> StoreResult<Vec<u32>> {
        if buckets.is_empty() {
            return Ok(Vec::new());
        }
        let k = self.cb_keys(service);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&k.counts);
        for b in buckets {
            cmd.arg(format!("b{b}"));
        }
        self.bounded(async {
            let counts: Vec<Option<u32>> = self.read(&cmd).await?;
            Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
        })
        .await
    }

    async fn state_counts(&self, services: &[&str]) -> StoreResult<Vec<StateCounts>> {
        let cmds: Vec<redis::Cmd> = services
            .iter()
            .map(|s| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(self.cb_keys(s).counts);
                for st in State::ALL {
                    cmd.arg([b'n', st.code()].as_slice());
                }
                cmd
            })
            .collect();
        self.bounded(async {
            let reads = cmds.iter().map(|c| self.read::<Vec<Option<u64>>>(c));
            let mut out = Vec::with_capacity(cmds.len());
            for r in futures::future::join_all(reads).await {
                let mut counts = StateCounts::default();
                for (slot, n) in counts.counts.iter_mut().zip(r?) {
                    *slot = n.unwrap_or_default();
                }
                out.push(counts);
            }
            Ok(out)
        })
        .await
    }

    async fn claim_due(&self, service: &str, claim: &ClaimRequest) -> StoreResult<Claimed> {
        let k = self.cb_keys(service);
        let mut a = Args::default();
        a.put(k.base.clone())
            .put(claim.node.clone())
            .num(claim.lease.as_millis().max(1))
            .num(claim.batch)
            .num(claim.max_attempts)
            .put(
                claim
                    .recovery
                    .map(|r| r.as_millis().to_string())
                    .unwrap_or_default(),
            );
        let mut inv = SCRIPTS.claim.key(&k.due);
        inv.key(&k.counts).key(&k.options).arg(a.0);
        self.bounded(async {
            let v: RValue = self.invoke(&inv).await?;
            let mut it = items(v).ok_or_else(|| damaged("claim reply"))?.into_iter();
            let mut out = Claimed {
                more: it.next() == Some(RValue::Int(1)),
                ..Claimed::default()
            };
            let mut settle = Vec::new();
            while let (Some(kind), Some(id), Some(fields), opts) =
                (it.next(), it.next(), it.next(), it.next())
            {
                let kind = bytes(kind).unwrap_or_default();
                let r =
                    record(service, id, fields, opts).ok_or_else(|| damaged("callback record"))?;
                match kind.as_slice() {
                    b"c" => out.records.push(r),
                    b"f" | b"d" | b"x" => settle.push((kind, r)),
                    _ => return Err(damaged("claim reply")),
                }
            }
            // Give up, drop and purge by compare-and-set: another node's pass may be doing the
            // same; one of them wins, the other finds the record changed.
            let give_up = Update {
                change: Some(Change::GiveUp),
                ..Update::default()
            };
            let k = &k;
            let writes = settle.iter().filter_map(|(kind, r)| {
                // A give-up is a change (none when the record no longer allows it); a drop or
                // purge a removal.
                let after = match kind.as_slice() {
                    b"f" => Some(apply(r, &give_up).ok()?),
                    _ => None,
                };
                Some(async move { (kind, r.id, self.cas(k, Some(r), after.as_ref(), None).await) })
            });
            for (kind, id, done) in futures::future::join_all(writes).await {
                if done? == Cas::Done {
                    match kind.as_slice() {
                        b"f" => out.failed.push(id),
                        b"d" => out.dropped.push(id),
                        _ => {}
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn purge_expired(&self, service: &str, max: usize) -> StoreResult<usize> {
        let k = self.cb_keys(service);
        let mut inv = SCRIPTS.expired.key(&k.expiry);
        inv.key(&k.due).arg(&k.base).arg(max);
        self.bounded(async {
            let v: RValue = self.invoke(&inv).await?;
            let mut it = items(v)
                .ok_or_else(|| damaged("expired reply"))?
                .into_iter();
            let mut expired = Vec::new();
            while let (Some(id), Some(fields)) = (it.next(), it.next()) {
                expired.push(
                    record(service, id, fields, None).ok_or_else(|| damaged("callback record"))?,
                );
            }
            let removals = expired.iter().map(|r| self.cas(&k, Some(r), None, None));
            let mut removed = 0;
            for done in futures::future::join_all(removals).await {
                if done? == Cas::Done {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}
