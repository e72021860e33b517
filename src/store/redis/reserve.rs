//! Reservations on Redis: which of a group's number keys a reservation script is given (a
//! window first, the whole group when the window has no room), and what it answered.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::Rng;
use redis::Value as RValue;
use uuid::Uuid;

use super::codec::ms;
use super::conn::{damaged, OpError};
use super::keys::GroupKeys;
use super::RedisStore;
use crate::store::pool::phone_limit_message;
use crate::store::{Allocation, Reservation, ReservationRef, ReserveRequest, StoreError};

/// Random candidate codes sent with each coded reservation (the script walks on from the
/// first when all are taken).
const CODE_CANDIDATES: usize = 8;

/// Numbers a reservation first tries: every number is a key the script must be given, and a
/// group of 1,000 made each create send 1,000 keys (5,600 creates/s instead of tens of
/// thousands). Random allocation tries them from a random number on; round robin from where
/// this node last saw the group's position, which other nodes may have moved on by less than
/// this. Only when the window has no room (or round robin's position lies outside it) is the
/// script given the whole group, which finds any free number or says the group is exhausted.
/// The round-robin window never starts past the position: a guess that also counted this
/// node's reservations in flight was measured worse (one miss put the windows after it past
/// the position too, and misses cascaded into whole-group calls under load).
const RESERVE_WINDOW: usize = 16;

impl RedisStore {
    /// Runs a script that reserves (`run` gets its reservation keys and arguments) and reads
    /// the reservation it made: over a window of the group's numbers first when the group is
    /// large, over the whole group when the window had no room.
    pub(super) async fn reserving<F, Fut>(
        &self,
        req: &ReserveRequest,
        service: Uuid,
        mut run: F,
    ) -> Result<Reservation, OpError>
    where
        F: FnMut(Vec<String>, Vec<Vec<u8>>) -> Fut,
        Fut: Future<Output = Result<RValue, OpError>>,
    {
        let owned;
        let g = match self.groups.get(&req.group) {
            Some(g) if Arc::ptr_eq(&g.numbers, &req.numbers) || *g.numbers == *req.numbers => g,
            _ => {
                // A group the store was not built with: same layout, computed now.
                owned = GroupKeys::new(&self.prefix, &req.group, req.numbers.clone());
                &owned
            }
        };
        let n = g.numbers.len();
        let rr = req.allocation == Allocation::RoundRobin;
        for window in [n > RESERVE_WINDOW, false] {
            let (keys, args, first) = reserve_args(g, req, service, window);
            let given = keys.len() - 2;
            match parse_reservation(run(keys, args).await?) {
                Some(ReserveReply::PhoneLimit) => {
                    return Err(OpError::Store(StoreError::PhoneLimit(phone_limit_message(
                        req,
                    ))))
                }
                Some(ReserveReply::Made(i, code)) if i < given => {
                    let at = (first + i) % n;
                    if rr {
                        g.rr_next.store((at + 1) % n, Ordering::Relaxed);
                    }
                    return Ok(Reservation {
                        number: g.numbers[at].clone(),
                        code,
                    });
                }
                Some(ReserveReply::NoRoom) if window => continue,
                Some(ReserveReply::NoRoom) => return Err(OpError::Store(exhausted(&req.group))),
                Some(ReserveReply::Made(..)) | None => return Err(damaged("reservation reply")),
            }
        }
        Err(OpError::Store(exhausted(&req.group)))
    }

    /// The reservation script alone (Redis Cluster creates, reservations added later).
    pub(super) async fn reserve_only(
        &self,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
    ) -> Result<RValue, OpError> {
        let mut inv = self.scripts.reserve.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        inv.arg(args);
        self.invoke(&inv).await
    }

    /// Releases holds a service had (each only if the service still holds it).
    pub(super) async fn release_all(
        &self,
        service: Uuid,
        refs: &[ReservationRef],
    ) -> Result<(), OpError> {
        let sid = service.hyphenated().to_string();
        let calls = refs.iter().filter_map(|r| {
            let keys = self.number_keys.get(&r.number)?;
            let sid = sid.clone();
            Some(async move {
                self.invoke::<i64>(
                    self.scripts
                        .release
                        .key(&keys.holds)
                        .key(&*keys.phones)
                        .arg(r.code.as_deref().unwrap_or(""))
                        .arg(sid)
                        .arg(&r.number),
                )
                .await
            })
        });
        for r in futures::future::join_all(calls).await {
            r?;
        }
        Ok(())
    }
}

fn exhausted(group: &str) -> StoreError {
    StoreError::Exhausted(format!(
        "no access number is free in resource group '{group}'"
    ))
}

/// The keys and arguments of the reservation part of a script, and the index in the group of
/// the first number they name: [`RESERVE_WINDOW`] numbers when `window` (from a random one,
/// or from round robin's expected position), else the whole group.
fn reserve_args(
    g: &GroupKeys,
    req: &ReserveRequest,
    service: Uuid,
    window: bool,
) -> (Vec<String>, Vec<Vec<u8>>, usize) {
    let n = g.numbers.len().max(1);
    let rr = req.allocation == Allocation::RoundRobin;
    let start = if rr && window {
        g.rr_next.load(Ordering::Relaxed) % n
    } else {
        rand::thread_rng().gen_range(0..n)
    };
    let mut keys = vec![g.rr.clone(), g.phones.to_string()];
    let first = if window {
        keys.extend((0..RESERVE_WINDOW.min(n)).map(|j| g.number_keys[(start + j) % n].clone()));
        start
    } else {
        keys.extend(g.number_keys.iter().cloned());
        0
    };
    let (code_len, low, count) = req.code.map_or((0, 0, 0), |c| (c.len, c.low, c.count));
    let mut args: Vec<Vec<u8>> = vec![
        code_len.to_string().into_bytes(),
        low.to_string().into_bytes(),
        count.to_string().into_bytes(),
        if rr { b"1".to_vec() } else { b"0".to_vec() },
        start.to_string().into_bytes(),
        g.numbers.len().to_string().into_bytes(),
        service.hyphenated().to_string().into_bytes(),
        req.phone.as_deref().unwrap_or("").as_bytes().to_vec(),
        ms(req.ttl).to_string().into_bytes(),
        g.base.len().to_string().into_bytes(),
        req.per_phone.to_string().into_bytes(),
    ];
    match &req.code {
        Some(space) => {
            args.push(CODE_CANDIDATES.to_string().into_bytes());
            for _ in 0..CODE_CANDIDATES {
                args.push(crate::ids::access_code(space).into_bytes());
            }
        }
        None => args.push(b"0".to_vec()),
    }
    (keys, args, first)
}

/// What a reservation script answered.
enum ReserveReply {
    /// Reserved: the index of the number among the number keys given, and the code.
    Made(usize, Option<String>),
    /// The numbers given had no room.
    NoRoom,
    /// The phone already holds its limit of live reservations in the group.
    PhoneLimit,
}

/// Reads a reservation script's reply; `None` for a reply of another shape.
fn parse_reservation(v: RValue) -> Option<ReserveReply> {
    match v {
        RValue::Nil => Some(ReserveReply::NoRoom),
        RValue::BulkString(b) if b == b"phone-limit" => Some(ReserveReply::PhoneLimit),
        RValue::Array(items) if items.len() == 3 => {
            let mut it = items.into_iter();
            let idx = match it.next()? {
                RValue::Int(i) => usize::try_from(i).ok()?,
                _ => return None,
            };
            let code = match it.next()? {
                RValue::BulkString(b) => String::from_utf8(b).ok()?,
                _ => return None,
            };
            Some(ReserveReply::Made(idx, (!code.is_empty()).then_some(code)))
        }
        _ => None,
    }
}
