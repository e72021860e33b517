//! Access-number pools (contract 5.1): the reservation rules as plain data structures, used by
//! the memory store under its lock. Exclusive numbers carry no code; shared numbers carry many
//! reservations, each with a distinct code; a number is never both at once.

use std::collections::HashMap;
use std::time::Instant;

use rand::Rng;
use uuid::Uuid;

use super::{
    Allocation, CodeSpace, MatchOutcome, MatchRequest, NumberUse, Reservation, ReservationRef,
    ReserveRequest, StoreError,
};

/// One reservation held on a number.
#[derive(Debug, Clone)]
struct Hold {
    service: Uuid,
    /// The phone that will call; empty when the app gave none.
    phone: Box<str>,
    expires: Instant,
}

impl Hold {
    fn live(&self, now: Instant) -> bool {
        self.expires > now
    }

    /// Whether a call from `phone` (when the caller knows it) may match: a reservation made
    /// without a phone matches on number and code only.
    fn phone_ok(&self, phone: Option<&str>) -> bool {
        self.phone.is_empty() || phone.is_none_or(|p| *self.phone == *p)
    }
}

/// What [`NumberState::take`] found for a call.
enum Take {
    /// This service's hold matched and was released; the packed code of a coded one.
    Taken(Uuid, Option<u64>),
    /// Nothing matched.
    Miss,
    /// No code, and several live coded holds to choose from.
    Ambiguous,
}

/// The reservations of one access number.
#[derive(Debug, Default)]
struct NumberState {
    exclusive: Option<Hold>,
    /// Keyed by [`pack_code`]: a code in 8 bytes instead of a heap string.
    coded: HashMap<u64, Hold, ahash::RandomState>,
    /// The latest expiry of a hold made on it: where a failure window opened now ends.
    latest: Option<Instant>,
    /// Failed matches in the current window, and when the window ends.
    failed: Option<(u32, Instant)>,
}

impl NumberState {
    fn exclusive_live(&self, now: Instant) -> bool {
        self.exclusive.as_ref().is_some_and(|h| h.live(now))
    }

    fn purge(&mut self, now: Instant) {
        if self.exclusive.as_ref().is_some_and(|h| !h.live(now)) {
            self.exclusive = None;
        }
        if !self.coded.is_empty() {
            self.coded.retain(|_, h| h.live(now));
        }
        if self.failed.is_some_and(|(_, until)| until <= now) {
            self.failed = None;
        }
    }

    fn is_empty(&self) -> bool {
        self.exclusive.is_none() && self.coded.is_empty() && self.failed.is_none()
    }

    /// Counts a failed match; the window opens with the first failure and ends with the
    /// latest live reservation. Without one there is nothing to guess: not counted.
    fn count_failure(&mut self, now: Instant) {
        match self.failed {
            Some((n, until)) if until > now => self.failed = Some((n.saturating_add(1), until)),
            _ => self.failed = self.latest.filter(|l| *l > now).map(|l| (1, l)),
        }
    }

    /// When a full failure window ends, if this number's is full.
    fn locked_until(&self, max_failed: u32, now: Instant) -> Option<Instant> {
        match self.failed {
            Some((n, until)) if max_failed > 0 && n >= max_failed && until > now => Some(until),
            _ => None,
        }
    }

    /// The live reservation a call matches, released (contract 5.3). Without a code, the
    /// number's only live reservation matches, unless the call requires a code.
    fn take(&mut self, call: &MatchRequest, now: Instant) -> Take {
        let phone = call.phone.as_deref();
        if self.exclusive_live(now) {
            if !self.exclusive.as_ref().is_some_and(|h| h.phone_ok(phone)) {
                return Take::Miss;
            }
            return self
                .exclusive
                .take()
                .map_or(Take::Miss, |h| Take::Taken(h.service, None));
        }
        let packed = match call.code.as_deref() {
            Some(code) => match pack_code(code) {
                Some(p) => p,
                None => return Take::Miss,
            },
            None if call.require_code => return Take::Miss,
            None => {
                let mut live = self.coded.iter().filter(|(_, h)| h.live(now));
                match (live.next(), live.next()) {
                    (Some((p, _)), None) => *p,
                    (Some(_), Some(_)) => return Take::Ambiguous,
                    (None, _) => return Take::Miss,
                }
            }
        };
        match self.coded.get(&packed) {
            Some(h) if h.live(now) && h.phone_ok(phone) => self
                .coded
                .remove(&packed)
                .map_or(Take::Miss, |h| Take::Taken(h.service, Some(packed))),
            _ => Take::Miss,
        }
    }
}

/// A reservation counted against its phone's limit: where to look to see it is still held.
#[derive(Debug)]
struct PhoneHold {
    number: Box<str>,
    code: Option<u64>,
    service: Uuid,
}

/// Every reservation of every group, and each group's round-robin position.
#[derive(Debug, Default)]
pub struct Pools {
    numbers: HashMap<Box<str>, NumberState, ahash::RandomState>,
    next: HashMap<Box<str>, usize, ahash::RandomState>,
    sweep_cursor: usize,
    /// Keyed by group, NUL, phone; kept only for reservations made under a per-phone limit.
    /// Entries are checked against `numbers` when read, so a release, a match or an expiry
    /// needs no bookkeeping here.
    phones: HashMap<Box<str>, Vec<PhoneHold>, ahash::RandomState>,
    phones_cursor: usize,
}

/// Tidies up to `max` entries of `map` from `cursor` on (`tidy` says whether one is left
/// empty, and so removed) and moves `cursor` past them.
fn sweep_some<V>(
    map: &mut HashMap<Box<str>, V, ahash::RandomState>,
    cursor: &mut usize,
    max: usize,
    mut tidy: impl FnMut(&mut V) -> bool,
) {
    let len = map.len();
    if len == 0 {
        return;
    }
    let start = *cursor % len;
    let mut emptied: Vec<Box<str>> = Vec::new();
    for (k, v) in map.iter_mut().skip(start).take(max) {
        if tidy(v) {
            emptied.push(k.clone());
        }
    }
    *cursor = start + max;
    for k in emptied {
        map.remove(&k);
    }
}

/// The message of a create refused by the per-phone limit.
pub fn phone_limit_message(req: &ReserveRequest) -> String {
    format!(
        "phone number '{}' already holds {} live reservation(s) in resource group '{}', the most allowed",
        req.phone.as_deref().unwrap_or(""),
        req.per_phone,
        req.group
    )
}

/// The phone a reservation counts against under a per-phone limit: none without a limit or
/// without a phone.
fn limited_phone(req: &ReserveRequest) -> Option<&str> {
    req.phone
        .as_deref()
        .filter(|p| req.per_phone > 0 && !p.is_empty())
}

/// Whether `h` is still held, live, by its service.
fn still_held(
    numbers: &HashMap<Box<str>, NumberState, ahash::RandomState>,
    h: &PhoneHold,
    now: Instant,
) -> bool {
    let Some(st) = numbers.get(&h.number) else {
        return false;
    };
    let hold = match h.code {
        Some(p) => st.coded.get(&p),
        None => st.exclusive.as_ref(),
    };
    hold.is_some_and(|x| x.service == h.service && x.live(now))
}

/// A code of `len` digits as one integer; the length is kept so "0042" and "42" differ.
pub fn pack_code(code: &str) -> Option<u64> {
    if code.is_empty() || code.len() > 12 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = code.parse().ok()?;
    Some(v * 16 + code.len() as u64)
}

/// The code string of a packed code.
pub fn unpack_code(packed: u64) -> String {
    let len = (packed % 16) as usize;
    format!("{:0len$}", packed / 16)
}

impl Pools {
    /// Reserves a number (and a code) for `service` under the rules of contract 5.1.
    pub fn reserve(
        &mut self,
        req: &ReserveRequest,
        service: Uuid,
        now: Instant,
    ) -> Result<Reservation, StoreError> {
        let n = req.numbers.len();
        if n == 0 {
            return Err(StoreError::Exhausted(format!(
                "resource group '{}' has no numbers",
                req.group
            )));
        }
        let phone_key = if let Some(phone) = limited_phone(req) {
            let key: Box<str> = format!("{}\0{}", req.group, phone).into();
            let held = self.phones.get_mut(&key).map_or(0, |list| {
                list.retain(|h| still_held(&self.numbers, h, now));
                list.len()
            });
            if held >= req.per_phone as usize {
                return Err(StoreError::PhoneLimit(phone_limit_message(req)));
            }
            Some(key)
        } else {
            None
        };
        let start = match req.allocation {
            Allocation::Random => rand::thread_rng().gen_range(0..n),
            Allocation::RoundRobin => self.next.get(req.group.as_str()).copied().unwrap_or(0) % n,
        };
        // First pass trusts counts that may include expired holds; the second purges them.
        for purge in [false, true] {
            for k in 0..n {
                let i = (start + k) % n;
                let number = &req.numbers[i];
                // Look up before inserting: the entry API would allocate a key on every call.
                if !self.numbers.contains_key(number.as_str()) {
                    self.numbers
                        .insert(number.as_str().into(), NumberState::default());
                }
                let Some(st) = self.numbers.get_mut(number.as_str()) else {
                    continue;
                };
                if purge {
                    st.purge(now);
                }
                let hold = Hold {
                    service,
                    phone: req.phone.as_deref().unwrap_or("").into(),
                    expires: now + req.ttl,
                };
                let latest = st.latest.map_or(hold.expires, |l| l.max(hold.expires));
                let code = match &req.code {
                    None => {
                        if st.exclusive_live(now) {
                            continue;
                        }
                        if !st.coded.is_empty() {
                            st.coded.retain(|_, h| h.live(now));
                            if !st.coded.is_empty() {
                                continue;
                            }
                        }
                        st.exclusive = Some(hold);
                        None
                    }
                    Some(space) => {
                        if st.exclusive_live(now) || st.coded.len() as u64 >= space.count {
                            continue;
                        }
                        let packed = free_code(&st.coded, space, now);
                        st.coded.insert(packed, hold);
                        Some(unpack_code(packed))
                    }
                };
                st.latest = Some(latest);
                if let Some(key) = phone_key {
                    self.phones.entry(key).or_default().push(PhoneHold {
                        number: number.as_str().into(),
                        code: code.as_deref().and_then(pack_code),
                        service,
                    });
                }
                if req.allocation == Allocation::RoundRobin {
                    match self.next.get_mut(req.group.as_str()) {
                        Some(next) => *next = i + 1,
                        None => {
                            self.next.insert(req.group.as_str().into(), i + 1);
                        }
                    }
                }
                return Ok(Reservation {
                    number: number.clone(),
                    code,
                });
            }
        }
        Err(StoreError::Exhausted(format!(
            "no access number is free in resource group '{}'",
            req.group
        )))
    }

    /// Releases a reservation if `service` still holds it.
    pub fn release(&mut self, service: Uuid, r: &ReservationRef) {
        let Some(st) = self.numbers.get_mut(r.number.as_str()) else {
            return;
        };
        match r.code.as_deref().and_then(pack_code) {
            Some(p) => {
                if st.coded.get(&p).is_some_and(|h| h.service == service) {
                    st.coded.remove(&p);
                }
            }
            None => {
                if st.exclusive.as_ref().is_some_and(|h| h.service == service) {
                    st.exclusive = None;
                }
            }
        }
    }

    /// [`Self::take_released`]'s outcome alone.
    #[cfg(test)]
    pub fn take_match(&mut self, call: &MatchRequest, now: Instant) -> MatchOutcome {
        self.take_released(call, now).0
    }

    /// Finds the live reservation a call matches and releases it, or counts the failure
    /// against the number (see [`MatchOutcome`]); with the packed code of the coded hold it
    /// released (the store drops that reservation from its service's record). A number never
    /// reserved has no state and gets none: unknown numbers cannot grow the pools.
    pub fn take_released(
        &mut self,
        call: &MatchRequest,
        now: Instant,
    ) -> (MatchOutcome, Option<u64>) {
        let Some(st) = self.numbers.get_mut(call.number.as_str()) else {
            return (MatchOutcome::NoMatch, None);
        };
        if let Some(until) = st.locked_until(call.max_failed, now) {
            return (MatchOutcome::Locked(until - now), None);
        }
        match st.take(call, now) {
            Take::Taken(service, code) => (MatchOutcome::Matched(service), code),
            Take::Ambiguous => (MatchOutcome::Ambiguous, None),
            Take::Miss => {
                st.count_failure(now);
                (MatchOutcome::NoMatch, None)
            }
        }
    }

    /// Drops expired holds on up to `max_numbers` numbers, and the entries of ended
    /// reservations on as many phones, resuming where the last call ended, so a sweep never
    /// holds the lock for long however large the pools are.
    pub fn sweep(&mut self, now: Instant, max_numbers: usize) {
        sweep_some(
            &mut self.numbers,
            &mut self.sweep_cursor,
            max_numbers,
            |st| {
                st.purge(now);
                st.is_empty()
            },
        );
        let numbers = &self.numbers;
        sweep_some(
            &mut self.phones,
            &mut self.phones_cursor,
            max_numbers,
            |list| {
                list.retain(|h| still_held(numbers, h, now));
                list.is_empty()
            },
        );
    }

    /// The live reservations on `number` (metrics); O(its holds).
    pub fn number_use(&self, number: &str, now: Instant) -> NumberUse {
        match self.numbers.get(number) {
            None => NumberUse::default(),
            Some(st) => NumberUse {
                exclusive: st.exclusive_live(now),
                coded: st.coded.values().filter(|h| h.live(now)).count() as u64,
            },
        }
    }

    /// How many live-or-not-yet-swept holds exist (for tests).
    #[cfg(test)]
    pub fn hold_count(&self) -> usize {
        self.numbers
            .values()
            .map(|s| s.coded.len() + usize::from(s.exclusive.is_some()))
            .sum()
    }
}

/// A code of `space` not held (live) on this number, packed; assumes fewer holds than codes.
fn free_code(
    coded: &HashMap<u64, Hold, ahash::RandomState>,
    space: &CodeSpace,
    now: Instant,
) -> u64 {
    let pack = |v: u64| v * 16 + u64::from(space.len);
    let free = |v: u64| coded.get(&pack(v)).is_none_or(|h| !h.live(now));
    for _ in 0..32 {
        let v = space.random();
        if free(v) {
            return pack(v);
        }
    }
    // A crowded code space: walk from a random point; among holds+1 consecutive codes one is free.
    let v0 = space.random();
    let v = (0..=coded.len() as u64)
        .map(|k| space.after(v0, k))
        .find(|&v| free(v))
        .unwrap_or(v0);
    pack(v)
}

#[cfg(test)]
mod tests;
