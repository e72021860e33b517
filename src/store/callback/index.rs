//! What a record is found and counted by, the same on every store.
//!
//! - **Slices.** A service's index holds, per record, one entry in each of its slices: its
//!   public state, its reason (if any), `_customer_number`, and each other lookup key's value.
//!   An entry is the slice's prefix followed by a suffix that sorts by desired time then id,
//!   so a slice lists its records in the order queries answer in, and a desired-time range or a
//!   paging cursor is a range of the slice. (Redis keeps the entries as members of one sorted
//!   set read by lexical ranges; memory as one ordered set keyed by a hash of the prefix.)
//! - **Counts**: per state, and per bucket ([`CallbackRecord::booked_bucket`]).
//! - **Due list**: [`CallbackRecord::due_at`]; **expiry list**: `expires`.
//!
//! A change is written as the [`Delta`] between the entries of the record before and after.

use jiff::Timestamp;
use uuid::Uuid;

use super::{CallbackRecord, Change, State, Update};
use crate::callback::record::CUSTOMER_NUMBER;

/// The largest time an entry can hold (13 decimal digits of milliseconds, year 2286): later
/// desired times sort as this one.
pub const MAX_INDEX_MS: i64 = 9_999_999_999_999;

/// Length of an entry's suffix: 13 digits of desired time, 32 hex digits of id.
pub const SUFFIX_LEN: usize = 45;

/// One slice of a service's index: the records with one value of one filter key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slice {
    /// `_callback_state` (a public state: `Submitting` records are in `Scheduled`'s).
    State(State),
    /// `_callback_reason`.
    Reason(String),
    /// A lookup key (`_customer_number` or another of `_customer_lookup_keys`) and a value.
    Lookup(String, String),
}

impl Slice {
    /// The start of its entries: `s<state code>`, `r<reason>\0` or `k<key>\0<value>\0`.
    /// Keys and values never hold NUL (request bodies refuse it), so no prefix is the start
    /// of another's.
    pub fn prefix(&self) -> Vec<u8> {
        match self {
            Slice::State(s) => vec![b's', s.public().code()],
            Slice::Reason(r) => [b"r", r.as_bytes(), b"\0"].concat(),
            Slice::Lookup(k, v) => [b"k", k.as_bytes(), b"\0", v.as_bytes(), b"\0"].concat(),
        }
    }

    /// The slices of every public state: together they hold every record.
    pub fn all_states() -> Vec<Slice> {
        State::PUBLIC.into_iter().map(Slice::State).collect()
    }
}

/// A time as it sorts in the index: epoch milliseconds within 0..=[`MAX_INDEX_MS`].
pub fn index_ms(t: Timestamp) -> i64 {
    t.as_millisecond().clamp(0, MAX_INDEX_MS)
}

/// The suffix of an entry: desired time (13 digits) then id (32 hex digits).
pub fn suffix(desired_ms: i64, id: Uuid) -> String {
    format!("{:013}{}", desired_ms.clamp(0, MAX_INDEX_MS), id.simple())
}

/// The id at the end of an entry (or a suffix).
pub fn id_of(entry: &[u8]) -> Option<Uuid> {
    let hex = entry.get(entry.len().checked_sub(32)?..)?;
    Uuid::try_parse_ascii(hex).ok()
}

/// A slice's entries as `ZRANGEBYLEX` bounds: from `start` (a desired time in ms, and an id
/// the range starts after, or none) to `end` (a desired time in ms, inclusive; none: the
/// slice's end).
pub fn lex_range(
    prefix: &[u8],
    start: (i64, Option<Uuid>),
    end: Option<i64>,
) -> (Vec<u8>, Vec<u8>) {
    let bound = |open: u8, tail: &str| [&[open], prefix, tail.as_bytes()].concat();
    let lo = match start {
        (ms, Some(id)) => bound(b'(', &suffix(ms, id)),
        (ms, None) => bound(b'[', &format!("{:013}", ms.clamp(0, MAX_INDEX_MS))),
    };
    // Every suffix starts with a digit, and `~` sorts after all of them.
    let hi = match end {
        Some(ms) if ms < MAX_INDEX_MS => bound(b'(', &format!("{:013}", ms.max(-1) + 1)),
        _ => bound(b'[', "~"),
    };
    (lo, hi)
}

/// One entry of a record in one slice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The slice's prefix.
    pub prefix: Vec<u8>,
    /// The record's desired time ([`index_ms`]).
    pub desired: i64,
    /// The record.
    pub id: Uuid,
}

impl Entry {
    /// The whole entry: prefix and suffix.
    pub fn member(&self) -> Vec<u8> {
        let mut m = self.prefix.clone();
        m.extend_from_slice(suffix(self.desired, self.id).as_bytes());
        m
    }
}

/// Something a service counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Records in a state.
    State(State),
    /// Records booked in a bucket.
    Bucket(i64),
}

/// Where one record stands in its service's index, counts and lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries {
    /// Its index entries.
    pub entries: Vec<Entry>,
    /// What it counts in.
    pub counters: Vec<Counter>,
    /// Its due time, ms.
    pub due: Option<i64>,
    /// Its expiration time, ms.
    pub expires: i64,
}

/// The slices `record` is in.
pub fn slices(record: &CallbackRecord) -> Vec<Slice> {
    let mut out = vec![Slice::State(record.state.public())];
    if let Some(r) = &record.reason {
        out.push(Slice::Reason(r.clone()));
    }
    let lookups = std::iter::once((CUSTOMER_NUMBER, record.customer_number.as_str()))
        .chain(record.lookup.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in lookups {
        let slice = Slice::Lookup(k.to_string(), v.to_string());
        if !v.is_empty() && !out.contains(&slice) {
            out.push(slice);
        }
    }
    out
}

/// Where `record` stands.
pub fn entries(record: &CallbackRecord) -> Entries {
    let desired = index_ms(record.desired);
    let mut counters = vec![Counter::State(record.state)];
    if let Some(b) = record.booked_bucket() {
        counters.push(Counter::Bucket(b));
    }
    Entries {
        entries: slices(record)
            .iter()
            .map(|s| Entry {
                prefix: s.prefix(),
                desired,
                id: record.id,
            })
            .collect(),
        counters,
        due: record.due_at().map(|t| t.as_millisecond()),
        expires: record.expires.as_millisecond(),
    }
}

/// What changes when a record goes from `before` to `after` (`None`: absent).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delta {
    /// Entries to remove.
    pub remove: Vec<Entry>,
    /// Entries to add.
    pub add: Vec<Entry>,
    /// Counters to move, by how much.
    pub counts: Vec<(Counter, i64)>,
    /// The new due time (`None`: not due).
    pub due: Option<i64>,
    /// The new expiration time (`None`: the record is gone).
    pub expires: Option<i64>,
}

/// The [`Delta`] from `before` to `after`.
pub fn delta(before: Option<&CallbackRecord>, after: Option<&CallbackRecord>) -> Delta {
    let old = before.map(entries);
    let new = after.map(entries);
    let none: &[Entry] = &[];
    let old_entries = old.as_ref().map_or(none, |e| &e.entries);
    let new_entries = new.as_ref().map_or(none, |e| &e.entries);
    let mut counts: Vec<(Counter, i64)> = Vec::new();
    let mut count = |c: Counter, by: i64| match counts.iter_mut().find(|(k, _)| *k == c) {
        Some((_, n)) => *n += by,
        None => counts.push((c, by)),
    };
    for c in old.iter().flat_map(|e| &e.counters) {
        count(*c, -1);
    }
    for c in new.iter().flat_map(|e| &e.counters) {
        count(*c, 1);
    }
    counts.retain(|(_, n)| *n != 0);
    Delta {
        remove: old_entries
            .iter()
            .filter(|e| !new_entries.contains(e))
            .cloned()
            .collect(),
        add: new_entries
            .iter()
            .filter(|e| !old_entries.contains(e))
            .cloned()
            .collect(),
        counts,
        due: new.as_ref().and_then(|e| e.due),
        expires: new.as_ref().map(|e| e.expires),
    }
}

/// The bucket `update` must find room in, and its capacity: a reschedule with a capacity into
/// a bucket that `before` did not book already (moving within a bucket takes no new slot).
pub fn room_needed(
    before: &CallbackRecord,
    after: &CallbackRecord,
    update: &Update,
) -> Option<(i64, u32)> {
    let Some(Change::Reschedule(r)) = &update.change else {
        return None;
    };
    let bucket = after.booked_bucket()?;
    let capacity = r.capacity?;
    (before.booked_bucket() != Some(bucket)).then_some((bucket, capacity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::change::{apply, Reschedule};
    use crate::callback::record::fixtures::{at, scheduled};
    use crate::callback::record::CANCELLED;

    fn record() -> CallbackRecord {
        let mut r = scheduled();
        r.customer_number = "555".into();
        r.lookup = vec![
            ("CB_SUB".into(), "x".into()),
            ("EMPTY".into(), String::new()),
        ];
        r
    }

    #[test]
    fn entries_sort_by_desired_time_then_id() {
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let early = suffix(1_000, a);
        let late = suffix(20_000, b);
        assert_eq!(early.len(), SUFFIX_LEN);
        assert!(early < late);
        assert!(suffix(5, b) < suffix(5, a));
        assert_eq!(suffix(-5, a), suffix(0, a));
        assert_eq!(id_of(late.as_bytes()), Some(b));
        assert_eq!(index_ms(at("2400-01-01T00:00:00Z")), MAX_INDEX_MS);
    }

    #[test]
    fn lexical_ranges_cut_a_slice_by_time() {
        let p = Slice::State(State::Queued).prefix();
        let member = |ms, id| [p.clone(), suffix(ms, id).into_bytes()].concat();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let inside = |m: &[u8], (lo, hi): &(Vec<u8>, Vec<u8>)| {
            let above = if lo[0] == b'(' {
                m > &lo[1..]
            } else {
                m >= &lo[1..]
            };
            let below = if hi[0] == b'(' {
                m < &hi[1..]
            } else {
                m <= &hi[1..]
            };
            above && below
        };
        let r = lex_range(&p, (1000, None), Some(2000));
        assert!(inside(&member(1000, a), &r) && inside(&member(2000, b), &r));
        assert!(!inside(&member(999, b), &r) && !inside(&member(2001, a), &r));
        let r = lex_range(&p, (1000, Some(a)), None);
        assert!(!inside(&member(1000, a), &r) && inside(&member(1000, b), &r));
        assert!(inside(&member(MAX_INDEX_MS, b), &r));
        let r = lex_range(&p, (0, None), Some(MAX_INDEX_MS));
        assert!(inside(&member(MAX_INDEX_MS, b), &r));
    }

    #[test]
    fn prefixes_never_start_one_another() {
        let p = [
            Slice::State(State::Queued).prefix(),
            Slice::Reason("A".into()).prefix(),
            Slice::Reason("AB".into()).prefix(),
            Slice::Lookup("k".into(), "v".into()).prefix(),
            Slice::Lookup("k".into(), "vv".into()).prefix(),
            Slice::Lookup("kv".into(), String::new()).prefix(),
        ];
        for (i, a) in p.iter().enumerate() {
            for (j, b) in p.iter().enumerate() {
                assert!(i == j || !b.starts_with(a), "{a:?} starts {b:?}");
            }
        }
        assert_eq!(
            Slice::State(State::Submitting).prefix(),
            Slice::State(State::Scheduled).prefix()
        );
    }

    #[test]
    fn a_record_is_in_its_state_reason_and_lookup_slices() {
        let r = record();
        assert_eq!(
            slices(&r),
            vec![
                Slice::State(State::Scheduled),
                Slice::Lookup(CUSTOMER_NUMBER.into(), "555".into()),
                Slice::Lookup("CB_SUB".into(), "x".into()),
            ]
        );
        let e = entries(&r);
        assert_eq!(
            e.counters,
            vec![
                Counter::State(State::Scheduled),
                Counter::Bucket(r.bucket.unwrap())
            ]
        );
        assert_eq!(e.due, Some(r.desired.as_millisecond()));
    }

    #[test]
    fn deltas_move_what_changed_only() {
        let r = record();
        let created = delta(None, Some(&r));
        assert_eq!(created.add.len(), 3);
        assert_eq!(created.counts.len(), 2);

        let cancel = Update {
            change: Some(Change::Cancel {
                reason: CANCELLED.into(),
            }),
            ..Update::default()
        };
        let done = apply(&r, &cancel).unwrap();
        let d = delta(Some(&r), Some(&done));
        assert_eq!(d.remove.len(), 1, "the state entry");
        assert_eq!(d.add.len(), 2, "state and reason");
        assert_eq!(
            d.counts,
            vec![
                (Counter::State(State::Scheduled), -1),
                (Counter::Bucket(r.bucket.unwrap()), -1),
                (Counter::State(State::Completed), 1),
            ]
        );
        assert_eq!((d.due, d.expires), (None, Some(r.expires.as_millisecond())));

        let moved = Update {
            change: Some(Change::Reschedule(Reschedule {
                desired: at("2026-03-02T15:00:00Z"),
                submit_at: at("2026-03-02T14:58:00Z"),
                expires: at("2026-03-03T15:00:00Z"),
                bucket: Some(at("2026-03-02T15:00:00Z").as_millisecond()),
                capacity: None,
            })),
            ..Update::default()
        };
        let later = apply(&r, &moved).unwrap();
        let d = delta(Some(&r), Some(&later));
        assert_eq!(
            (d.remove.len(), d.add.len()),
            (3, 3),
            "every entry sorts anew"
        );
        assert_eq!(
            d.counts.len(),
            2,
            "one bucket down, one up; the state stays"
        );

        let gone = delta(Some(&r), None);
        assert_eq!((gone.remove.len(), gone.add.len()), (3, 0));
        assert_eq!((gone.due, gone.expires), (None, None));
    }
}
