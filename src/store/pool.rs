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
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    fn req(numbers: &[&str], code_len: Option<u8>, allocation: Allocation) -> ReserveRequest {
        ReserveRequest {
            group: "G".into(),
            numbers: Arc::from(numbers.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            code: code_len.map(CodeSpace::all),
            allocation,
            phone: Some("555".into()),
            ttl: Duration::from_secs(30),
            per_phone: 0,
        }
    }

    #[test]
    fn codes_pack_with_their_length() {
        assert_ne!(pack_code("0042"), pack_code("42"));
        assert_eq!(unpack_code(pack_code("0042").unwrap()), "0042");
        assert_eq!(pack_code("4a"), None);
        assert_eq!(pack_code(""), None);
        assert_eq!(pack_code("1234567890123"), None);
    }

    #[test]
    fn exclusive_numbers_run_out_then_free_on_expiry() {
        let mut p = Pools::default();
        let now = Instant::now();
        let r = req(&["1", "2"], None, Allocation::Random);
        let a = p.reserve(&r, Uuid::new_v4(), now).unwrap();
        let b = p.reserve(&r, Uuid::new_v4(), now).unwrap();
        assert_ne!(a.number, b.number);
        assert!(a.code.is_none());
        assert!(matches!(
            p.reserve(&r, Uuid::new_v4(), now),
            Err(StoreError::Exhausted(_))
        ));
        let later = now + Duration::from_secs(31);
        assert!(p.reserve(&r, Uuid::new_v4(), later).is_ok());
    }

    #[test]
    fn exclusive_and_coded_never_share_a_number() {
        let mut p = Pools::default();
        let now = Instant::now();
        p.reserve(
            &req(&["1"], Some(4), Allocation::Random),
            Uuid::new_v4(),
            now,
        )
        .unwrap();
        assert!(p
            .reserve(&req(&["1"], None, Allocation::Random), Uuid::new_v4(), now)
            .is_err());
        let mut p = Pools::default();
        p.reserve(&req(&["1"], None, Allocation::Random), Uuid::new_v4(), now)
            .unwrap();
        assert!(p
            .reserve(
                &req(&["1"], Some(4), Allocation::Random),
                Uuid::new_v4(),
                now
            )
            .is_err());
    }

    #[test]
    fn coded_reservations_fill_the_whole_code_space_distinctly() {
        let mut p = Pools::default();
        let now = Instant::now();
        let r = req(&["1"], Some(2), Allocation::Random);
        let mut seen = HashSet::new();
        for _ in 0..100 {
            let res = p.reserve(&r, Uuid::new_v4(), now).unwrap();
            assert!(seen.insert(res.code.unwrap()));
        }
        assert!(p.reserve(&r, Uuid::new_v4(), now).is_err());
    }

    #[test]
    fn round_robin_cycles_in_configured_order() {
        let mut p = Pools::default();
        let now = Instant::now();
        let r = req(&["1", "2", "3"], Some(4), Allocation::RoundRobin);
        let got: Vec<String> = (0..6)
            .map(|_| p.reserve(&r, Uuid::new_v4(), now).unwrap().number)
            .collect();
        assert_eq!(got, ["1", "2", "3", "1", "2", "3"]);
    }

    #[test]
    fn match_checks_code_and_phone_and_releases_once() {
        let mut p = Pools::default();
        let now = Instant::now();
        let svc = Uuid::new_v4();
        let res = p
            .reserve(&req(&["1"], Some(4), Allocation::Random), svc, now)
            .unwrap();
        let call = |code: Option<&str>, phone: Option<&str>| MatchRequest {
            number: "1".into(),
            code: code.map(str::to_string),
            phone: phone.map(str::to_string),
            max_failed: 0,
            require_code: true,
        };
        assert_eq!(p.take_match(&call(None, None), now), MatchOutcome::NoMatch);
        assert_eq!(
            p.take_match(&call(res.code.as_deref(), Some("666")), now),
            MatchOutcome::NoMatch
        );
        assert_eq!(
            p.take_match(&call(res.code.as_deref(), Some("555")), now),
            MatchOutcome::Matched(svc)
        );
        assert_eq!(
            p.take_match(&call(res.code.as_deref(), None), now),
            MatchOutcome::NoMatch
        );
    }

    #[test]
    fn without_a_code_only_a_numbers_single_reservation_matches() {
        let mut p = Pools::default();
        let now = Instant::now();
        let call = |require_code| MatchRequest {
            number: "1".into(),
            code: None,
            phone: None,
            max_failed: 1,
            require_code,
        };
        let coded = req(&["1"], Some(4), Allocation::Random);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        p.reserve(&coded, a, now).unwrap();
        // The strict rule: a code is required (and a call without one is a failed match).
        assert_eq!(p.take_match(&call(true), now), MatchOutcome::NoMatch);
        let mut p = Pools::default();
        p.reserve(&coded, a, now).unwrap();
        let second = p.reserve(&coded, b, now).unwrap();
        // Two to choose from: nothing taken, nothing counted (the limit of one failure would
        // lock the number otherwise).
        for _ in 0..3 {
            assert_eq!(p.take_match(&call(false), now), MatchOutcome::Ambiguous);
        }
        let b_call = MatchRequest {
            code: second.code.clone(),
            ..call(false)
        };
        assert_eq!(p.take_released(&b_call, now).0, MatchOutcome::Matched(b));
        // One left: it matches without its code, and its code comes back for the record.
        let (outcome, code) = p.take_released(&call(false), now);
        assert_eq!(outcome, MatchOutcome::Matched(a));
        assert!(code.is_some());
        assert_eq!(p.take_match(&call(false), now), MatchOutcome::NoMatch);
        // A reservation without a phone matches whatever phone the caller names.
        let mut anonymous = req(&["2"], None, Allocation::Random);
        anonymous.phone = None;
        p.reserve(&anonymous, a, now).unwrap();
        let from = MatchRequest {
            number: "2".into(),
            phone: Some("5550100".into()),
            ..call(false)
        };
        assert_eq!(p.take_match(&from, now), MatchOutcome::Matched(a));
    }

    #[test]
    fn failed_matches_lock_a_number_until_its_reservations_window_ends() {
        let mut p = Pools::default();
        let now = Instant::now();
        let svc = Uuid::new_v4();
        let r = req(&["1"], Some(4), Allocation::Random);
        let res = p.reserve(&r, svc, now).unwrap();
        let wrong = if res.code.as_deref() == Some("0000") {
            "0001"
        } else {
            "0000"
        };
        let call = |code: &str| MatchRequest {
            number: "1".into(),
            code: Some(code.to_string()),
            phone: None,
            max_failed: 3,
            require_code: false,
        };
        for _ in 0..3 {
            assert_eq!(p.take_match(&call(wrong), now), MatchOutcome::NoMatch);
        }
        // Full: the right code is refused too, until the reservation's TTL (30 s) is over.
        let right = res.code.clone().unwrap();
        let later = now + Duration::from_secs(10);
        assert_eq!(
            p.take_match(&call(&right), later),
            MatchOutcome::Locked(Duration::from_secs(20))
        );
        // The sweep keeps the window while it lasts, then drops the number.
        p.sweep(later, 10);
        assert!(p.numbers.contains_key("1"));
        let after = now + Duration::from_secs(31);
        p.sweep(after, 10);
        assert!(p.numbers.is_empty());
        // A number with no live reservation counts nothing; a number never reserved has no state.
        assert_eq!(p.take_match(&call(wrong), after), MatchOutcome::NoMatch);
        assert!(p.numbers.get("1").is_none_or(|s| s.failed.is_none()));
        let unknown = MatchRequest {
            number: "999".into(),
            ..call(wrong)
        };
        assert_eq!(p.take_match(&unknown, now), MatchOutcome::NoMatch);
        assert!(!p.numbers.contains_key("999"));
    }

    #[test]
    fn release_only_frees_the_services_own_hold() {
        let mut p = Pools::default();
        let now = Instant::now();
        let a = Uuid::new_v4();
        let res = p
            .reserve(&req(&["1"], None, Allocation::Random), a, now)
            .unwrap();
        let r = ReservationRef {
            number: res.number,
            code: None,
        };
        p.release(Uuid::new_v4(), &r);
        assert_eq!(p.hold_count(), 1);
        p.release(a, &r);
        assert_eq!(p.hold_count(), 0);
    }

    #[test]
    fn number_use_counts_live_holds_only() {
        let mut p = Pools::default();
        let now = Instant::now();
        let mut coded = req(&["1"], Some(4), Allocation::Random);
        for _ in 0..3 {
            p.reserve(&coded, Uuid::new_v4(), now).unwrap();
        }
        coded.ttl = Duration::from_secs(1);
        p.reserve(&coded, Uuid::new_v4(), now).unwrap();
        p.reserve(&req(&["2"], None, Allocation::Random), Uuid::new_v4(), now)
            .unwrap();
        let later = now + Duration::from_secs(2);
        assert_eq!(
            p.number_use("1", later),
            NumberUse {
                exclusive: false,
                coded: 3
            }
        );
        assert_eq!(
            p.number_use("2", later),
            NumberUse {
                exclusive: true,
                coded: 0
            }
        );
        assert_eq!(p.number_use("3", later), NumberUse::default());
        assert_eq!(
            p.number_use("2", now + Duration::from_secs(31)),
            NumberUse::default()
        );
    }

    fn limited(per_phone: u32) -> ReserveRequest {
        let mut r = req(&["1", "2", "3"], Some(4), Allocation::Random);
        r.per_phone = per_phone;
        r
    }

    fn refused(p: &mut Pools, r: &ReserveRequest, now: Instant) -> bool {
        matches!(
            p.reserve(r, Uuid::new_v4(), now),
            Err(StoreError::PhoneLimit(_))
        )
    }

    #[test]
    fn a_phone_holds_at_most_its_limit_until_one_ends() {
        let mut p = Pools::default();
        let now = Instant::now();
        let r = limited(2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ra = p.reserve(&r, a, now).unwrap();
        let rb = p.reserve(&r, b, now).unwrap();
        assert!(refused(&mut p, &r, now));
        // Another phone, and the same phone in another group, have their own limits.
        let other_phone = ReserveRequest {
            phone: Some("777".into()),
            ..limited(2)
        };
        let other_group = ReserveRequest {
            group: "H".into(),
            ..limited(2)
        };
        p.reserve(&other_phone, Uuid::new_v4(), now).unwrap();
        p.reserve(&other_group, Uuid::new_v4(), now).unwrap();
        // A release frees a place.
        p.release(
            a,
            &ReservationRef {
                number: ra.number,
                code: ra.code,
            },
        );
        p.reserve(&r, Uuid::new_v4(), now).unwrap();
        assert!(refused(&mut p, &r, now));
        // So does a call that matches.
        let call = MatchRequest {
            number: rb.number,
            code: rb.code,
            phone: None,
            max_failed: 0,
            require_code: false,
        };
        assert_eq!(p.take_match(&call, now), MatchOutcome::Matched(b));
        p.reserve(&r, Uuid::new_v4(), now).unwrap();
        assert!(refused(&mut p, &r, now));
        // And expiry.
        let later = now + Duration::from_secs(31);
        p.reserve(&r, Uuid::new_v4(), later).unwrap();
        p.reserve(&r, Uuid::new_v4(), later).unwrap();
        assert!(refused(&mut p, &r, later));
    }

    #[test]
    fn without_a_limit_nothing_is_counted() {
        let mut p = Pools::default();
        let now = Instant::now();
        for _ in 0..20 {
            p.reserve(&limited(0), Uuid::new_v4(), now).unwrap();
        }
        assert!(p.phones.is_empty());
        // Nor is a reservation made without a phone, under a limit.
        let anonymous = ReserveRequest {
            phone: None,
            ..limited(1)
        };
        for _ in 0..5 {
            p.reserve(&anonymous, Uuid::new_v4(), now).unwrap();
        }
        assert!(p.phones.is_empty());
    }

    #[test]
    fn sweep_drops_the_phone_entries_of_ended_reservations() {
        let mut p = Pools::default();
        let now = Instant::now();
        for k in 0..10 {
            let r = ReserveRequest {
                phone: Some(format!("p{k}")),
                ..limited(1)
            };
            p.reserve(&r, Uuid::new_v4(), now).unwrap();
        }
        assert_eq!(p.phones.len(), 10);
        // Each pass looks at up to 3 phones and drops every one it sees (all ended).
        let later = now + Duration::from_secs(60);
        for _ in 0..10 {
            p.sweep(later, 3);
        }
        assert!(p.phones.is_empty());
    }

    #[test]
    fn sweep_reclaims_expired_holds() {
        let mut p = Pools::default();
        let now = Instant::now();
        let r = req(&["1", "2", "3"], Some(4), Allocation::Random);
        for _ in 0..50 {
            p.reserve(&r, Uuid::new_v4(), now).unwrap();
        }
        let later = now + Duration::from_secs(60);
        for _ in 0..3 {
            p.sweep(later, 1);
        }
        assert_eq!(p.hold_count(), 0);
    }
}
