//! Queries over callback records (§6.1 by properties, §9 admin queues and reports) and how
//! they are answered from the index without a scan of all records.
//!
//! A [`Query`] is filters (`key=value` or `key=!value`) joined by `AND` or `OR`, plus the
//! admin's states, a desired-time range, a paging cursor and a limit. Every store answers it
//! the same way, per service:
//! 1. [`Query::plan`] names groups of sources (index slices, or one id); every matching record
//!    is in each group. A positive filter on an indexed key is a group of one slice, a negated
//!    state the other states, the admin's states their slices, an `OR` of indexed filters
//!    the union of theirs. With no group, every state's slices together (all records).
//! 2. The store walks the group with the fewest entries in desired-time order (a merge of its
//!    slices, restricted to the time range and after the cursor), tests each record with
//!    [`Query::matches`], and stops at `limit` matches.
//!
//! **Bounds.** A query by customer number (or any indexed value) reads that value's slice
//! only: O(log n + its records). A walk examines at most [`SCAN_LIMIT`] records per service: a
//! query that no index narrows (only negated filters other than states, an `OR` with a
//! negation, only properties) answers from the first [`SCAN_LIMIT`] records by desired time,
//! and [`Found::complete`] is false when it stopped there. A negated state is exact (`!COMPLETED`
//! walks the other states' slices), so the common "my open callbacks" needs no bound.

use jiff::Timestamp;
use uuid::Uuid;

use super::index::{index_ms, Slice};
use super::{CallbackRecord, State, SCAN_LIMIT};

/// The key a filter tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `_id` (indexed: the record itself).
    Id,
    /// `_callback_state`, by wire name (indexed).
    State,
    /// `_callback_reason` (indexed).
    Reason,
    /// A lookup key: `_customer_number` or one of `_customer_lookup_keys` (indexed).
    Lookup(String),
    /// A property ([`CallbackRecord::props`]), e.g. a `filter-keys` option (not indexed).
    Prop(String),
}

/// One filter: `field=value`, or `field=!value` (`negate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// What it tests.
    pub field: Field,
    /// The value (without the `!`).
    pub value: String,
    /// `!value`: the record's value is not this (or it has none).
    pub negate: bool,
}

impl Term {
    /// `field=value`.
    pub fn is(field: Field, value: &str) -> Term {
        Term {
            field,
            value: value.to_string(),
            negate: false,
        }
    }

    /// `field=!value`.
    pub fn not(field: Field, value: &str) -> Term {
        Term {
            negate: true,
            ..Term::is(field, value)
        }
    }

    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &CallbackRecord) -> bool {
        let v = self.value.as_str();
        let equal = match &self.field {
            Field::Id => Uuid::try_parse(v).is_ok_and(|id| id == record.id),
            Field::State => record.state.name() == v,
            Field::Reason => record.reason.as_deref() == Some(v),
            Field::Lookup(k) => record.lookup_value(k) == Some(v),
            Field::Prop(k) => record.prop(k) == Some(v),
        };
        equal != self.negate
    }

    /// Where every record this filter passes is found, if the index knows.
    fn sources(&self) -> Option<Vec<Source>> {
        let state = State::parse(&self.value);
        match (&self.field, self.negate) {
            (Field::Id, false) => {
                Some(Uuid::try_parse(&self.value).map_or(vec![], |id| vec![Source::Id(id)]))
            }
            (Field::State, false) => {
                Some(state.map_or(vec![], |s| vec![Source::Slice(Slice::State(s))]))
            }
            (Field::State, true) => Some(
                State::PUBLIC
                    .into_iter()
                    .filter(|s| Some(*s) != state)
                    .map(|s| Source::Slice(Slice::State(s)))
                    .collect(),
            ),
            (Field::Reason, false) => Some(vec![Source::Slice(Slice::Reason(self.value.clone()))]),
            (Field::Lookup(k), false) => Some(vec![Source::Slice(Slice::Lookup(
                k.clone(),
                self.value.clone(),
            ))]),
            _ => None,
        }
    }
}

/// How filters combine (`operand`, §6.1; default `AND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Operand {
    /// Every filter passes.
    #[default]
    And,
    /// At least one filter passes.
    Or,
}

/// A query (module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The filters (none: every record, within the other bounds).
    pub terms: Vec<Term>,
    /// How `terms` combine.
    pub operand: Operand,
    /// And the record's public state is one of these (the admin's `states`; `Submitting`
    /// counts as `Scheduled`); empty: any.
    pub states: Vec<State>,
    /// And its desired time is at or after this.
    pub from: Option<Timestamp>,
    /// And at or before this.
    pub to: Option<Timestamp>,
    /// And it sorts after this (desired time, id): the last record of the previous page.
    pub after: Option<(Timestamp, Uuid)>,
    /// At most this many records.
    pub limit: usize,
}

impl Query {
    /// A query of `terms` joined by `operand`, at most `limit` records.
    pub fn new(terms: Vec<Term>, operand: Operand, limit: usize) -> Query {
        Query {
            terms,
            operand,
            states: Vec::new(),
            from: None,
            to: None,
            after: None,
            limit,
        }
    }

    /// Whether `record` is an answer (filters, states, range and cursor).
    pub fn matches(&self, record: &CallbackRecord) -> bool {
        let key = sort_key(record);
        let public = record.state.public();
        let states = self.states.is_empty() || self.states.iter().any(|s| s.public() == public);
        let from = self.from.is_none_or(|t| key.0 >= index_ms(t));
        let to = self.to.is_none_or(|t| key.0 <= index_ms(t));
        let after = self.after.is_none_or(|(t, id)| key > (index_ms(t), id));
        let terms = match self.operand {
            Operand::And => self.terms.iter().all(|t| t.matches(record)),
            Operand::Or => self.terms.is_empty() || self.terms.iter().any(|t| t.matches(record)),
        };
        states && from && to && after && terms
    }

    /// The groups of sources of the module doc: each holds every answer; walk the smallest.
    pub fn plan(&self) -> Vec<Vec<Source>> {
        let mut groups: Vec<Vec<Source>> = Vec::new();
        match self.operand {
            Operand::And => groups.extend(self.terms.iter().filter_map(Term::sources)),
            Operand::Or if !self.terms.is_empty() => {
                let all: Option<Vec<Vec<Source>>> = self.terms.iter().map(Term::sources).collect();
                if let Some(all) = all {
                    groups.push(union(all.into_iter().flatten()));
                }
            }
            Operand::Or => {}
        }
        if !self.states.is_empty() {
            let states = self.states.iter();
            groups.push(union(
                states.map(|s| Source::Slice(Slice::State(s.public()))),
            ));
        }
        if groups.is_empty() {
            groups.push(Slice::all_states().into_iter().map(Source::Slice).collect());
        }
        groups
    }

    /// The first bound of a walk: (desired ms, exclusive id) from `from` and `after`.
    pub fn start(&self) -> (i64, Option<Uuid>) {
        let from = self.from.map_or(0, index_ms);
        match self.after {
            Some((t, id)) if index_ms(t) >= from => (index_ms(t), Some(id)),
            _ => (from, None),
        }
    }

    /// The last desired time a walk reads (ms, inclusive).
    pub fn end(&self) -> Option<i64> {
        self.to.map(index_ms)
    }
}

/// Where candidates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A slice of the index.
    Slice(Slice),
    /// One record.
    Id(Uuid),
}

/// The sources, each once.
fn union(sources: impl Iterator<Item = Source>) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::new();
    for s in sources {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// How answers are ordered: desired time (as indexed), then id.
pub fn sort_key(record: &CallbackRecord) -> (i64, Uuid) {
    (index_ms(record.desired), record.id)
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    /// The matching records, by desired time then id, at most the query's limit.
    pub records: Vec<CallbackRecord>,
    /// False when a walk stopped at [`SCAN_LIMIT`] records before reaching the limit: more
    /// records may match.
    pub complete: bool,
}

impl Found {
    /// Merges the answers of several services into one, in order, at most `limit`.
    pub fn merge(parts: Vec<Found>, limit: usize) -> Found {
        let complete = parts.iter().all(|f| f.complete);
        let mut records: Vec<CallbackRecord> = parts.into_iter().flat_map(|f| f.records).collect();
        records.sort_by_key(sort_key);
        records.truncate(limit);
        Found { records, complete }
    }
}

/// Walks candidates in order (already merged and deduplicated), keeping matches: at most
/// `query.limit`, examining at most [`SCAN_LIMIT`].
pub fn walk(query: &Query, candidates: impl Iterator<Item = CallbackRecord>) -> Found {
    let mut records = Vec::new();
    let mut examined = 0;
    let mut candidates = candidates.peekable();
    while records.len() < query.limit {
        if examined == SCAN_LIMIT {
            return Found {
                records,
                complete: candidates.peek().is_none(),
            };
        }
        let Some(r) = candidates.next() else { break };
        examined += 1;
        if query.matches(&r) {
            records.push(r);
        }
    }
    Found {
        records,
        complete: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::record::CUSTOMER_NUMBER;

    fn rec(n: &str, state: State, minute: i64) -> CallbackRecord {
        let t = Timestamp::from_second(1_772_400_000 + minute * 60).unwrap();
        let mut r = CallbackRecord::new("cb", n, t, t, t);
        r.state = state;
        r
    }

    fn cn(v: &str) -> Term {
        Term::is(Field::Lookup(CUSTOMER_NUMBER.into()), v)
    }

    #[test]
    fn filters_match_values_and_negations() {
        let mut r = rec("555", State::Submitting, 0);
        r.props = vec![("_vq".into(), "VQ".into())];
        assert!(Term::is(Field::State, "SCHEDULED").matches(&r));
        assert!(Term::not(Field::State, "COMPLETED").matches(&r));
        assert!(cn("555").matches(&r) && !cn("556").matches(&r));
        assert!(
            Term::not(Field::Reason, "CANCELLED").matches(&r),
            "no reason: not it"
        );
        assert!(Term::is(Field::Prop("_vq".into()), "VQ").matches(&r));
        assert!(Term::is(Field::Id, &r.id.hyphenated().to_string()).matches(&r));
        assert!(Term::is(Field::Id, &r.id.simple().to_string().to_uppercase()).matches(&r));
        assert!(!Term::is(Field::Id, "nope").matches(&r));
        let q = Query::new(vec![cn("1"), cn("555")], Operand::Or, 10);
        assert!(q.matches(&r));
        let q = Query::new(vec![cn("1"), cn("555")], Operand::And, 10);
        assert!(!q.matches(&r));
        let mut q = Query::new(vec![], Operand::And, 10);
        q.states = vec![State::Queued];
        assert!(!q.matches(&r));
        q.states = vec![State::Scheduled];
        assert!(q.matches(&r));
    }

    #[test]
    fn plans_read_indexes_where_they_can() {
        let slice = |s: Slice| Source::Slice(s);
        let q = Query::new(
            vec![cn("5"), Term::not(Field::Reason, "X")],
            Operand::And,
            10,
        );
        assert_eq!(
            q.plan(),
            vec![vec![slice(Slice::Lookup(
                CUSTOMER_NUMBER.into(),
                "5".into()
            ))]]
        );
        let q = Query::new(vec![Term::not(Field::State, "COMPLETED")], Operand::And, 10);
        assert_eq!(q.plan()[0].len(), 5);
        let q = Query::new(vec![cn("5"), Term::is(Field::Reason, "X")], Operand::Or, 10);
        assert_eq!(q.plan().len(), 1);
        assert_eq!(q.plan()[0].len(), 2);
        // Only negations (other than states): every record, bounded.
        let q = Query::new(
            vec![cn("5"), Term::not(Field::Reason, "X")],
            Operand::Or,
            10,
        );
        assert_eq!(
            q.plan(),
            vec![Slice::all_states()
                .into_iter()
                .map(Source::Slice)
                .collect::<Vec<_>>()]
        );
        let q = Query::new(vec![Term::is(Field::State, "NOPE")], Operand::And, 10);
        assert_eq!(q.plan(), vec![vec![]], "an unknown state matches nothing");
        let id = Uuid::new_v4();
        let q = Query::new(vec![Term::is(Field::Id, &id.to_string())], Operand::And, 10);
        assert_eq!(q.plan(), vec![vec![Source::Id(id)]]);
    }

    #[test]
    fn ranges_and_cursors_bound_a_walk() {
        let a = rec("1", State::Scheduled, 0);
        let b = rec("1", State::Scheduled, 10);
        let mut q = Query::new(vec![], Operand::And, 10);
        q.after = Some((a.desired, a.id));
        assert!(!q.matches(&a) && q.matches(&b));
        assert_eq!(q.start(), (index_ms(a.desired), Some(a.id)));
        q.from = Some(b.desired);
        assert_eq!(q.start(), (index_ms(b.desired), None));
        q.to = Some(a.desired);
        assert!(!q.matches(&b));
        assert_eq!(q.end(), Some(index_ms(a.desired)));
    }

    #[test]
    fn walks_stop_at_the_limit_or_the_scan_bound() {
        let q = Query::new(vec![cn("2")], Operand::And, 2);
        let all = (0..5).map(|i| rec(if i % 2 == 0 { "2" } else { "3" }, State::Scheduled, i));
        let found = walk(&q, all);
        assert_eq!(found.records.len(), 2);
        assert!(found.complete);
        let many = (0..SCAN_LIMIT as i64 + 1).map(|i| rec("3", State::Scheduled, i));
        let found = walk(&q, many);
        assert_eq!((found.records.len(), found.complete), (0, false));
        let merged = Found::merge(
            vec![
                Found {
                    records: vec![rec("1", State::Scheduled, 5)],
                    complete: true,
                },
                Found {
                    records: vec![rec("1", State::Scheduled, 1), rec("1", State::Scheduled, 9)],
                    complete: true,
                },
            ],
            2,
        );
        assert_eq!(merged.records.len(), 2);
        assert!(merged.records[0].desired < merged.records[1].desired);
    }
}
