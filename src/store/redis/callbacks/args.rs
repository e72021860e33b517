//! The callback store's keys, the arguments its scripts take, and the replies they give.

use redis::{Script, ScriptInvocation, Value as RValue};
use uuid::Uuid;

use super::codec;
use crate::callback::record::CUSTOMER_NUMBER;
use crate::store::callback::index::{self, lex_range, Counter, Slice};
use crate::store::callback::query::{Field, Operand, Query, Source, Term};
use crate::store::callback::{CallbackRecord, State, SCAN_LIMIT};
use crate::store::redis::codec::hash_pairs;

/// How long a record (and its service's keys) is kept after its expiration time if no
/// scheduler pass removes it first: the safety net for a service dropped from the
/// configuration, or a fleet stopped for days.
const GRACE_MS: i64 = 7 * 86_400_000;

/// The keys of one callback service: `{cb:<service>}` is their hash tag (a `}` in the name
/// only shortens the tag; every key of the service still has the same one).
pub(super) struct Keys {
    /// `P cr{cb:S}`: record keys are this and the id (32 hex digits).
    pub(super) base: String,
    pub(super) index: String,
    pub(super) counts: String,
    pub(super) due: String,
    pub(super) expiry: String,
    pub(super) options: String,
    pub(super) throttle: String,
    /// `P cp{cb:S}`: the per-parameter counts of a day are this and the day number.
    day_base: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, service: &str) -> Keys {
        let key = |kind: &str| format!("{prefix}{kind}{{cb:{service}}}");
        Keys {
            base: key("cr"),
            index: key("ci"),
            counts: key("cc"),
            due: key("cd"),
            expiry: key("ce"),
            options: key("co"),
            throttle: key("ct"),
            day_base: key("cp"),
        }
    }

    pub(super) fn record(&self, id: Uuid) -> String {
        format!("{}{}", self.base, id.simple())
    }

    pub(super) fn day(&self, day: i64) -> String {
        format!("{}{day}", self.day_base)
    }

    /// A call of `script` on record `id` with the keys a write takes (record, index, counts,
    /// due, expiry, options), and with a create's or an abort's (throttle, the `day`'s
    /// parameter counts) when `day` is given.
    pub(super) fn invocation<'a>(
        &self,
        script: &'a Script,
        id: Uuid,
        day: Option<i64>,
    ) -> ScriptInvocation<'a> {
        let mut inv = script.key(self.record(id));
        inv.key(&self.index)
            .key(&self.counts)
            .key(&self.due)
            .key(&self.expiry)
            .key(&self.options);
        if let Some(day) = day {
            inv.key(&self.throttle).key(self.day(day));
        }
        inv
    }
}

/// The counts hash's field of a counter: `n<state code>` or `b<bucket key>`.
pub(super) fn counter_field(c: Counter) -> Vec<u8> {
    match c {
        Counter::State(s) => vec![b'n', s.code()],
        Counter::Bucket(b) => format!("b{b}").into_bytes(),
    }
}

/// Arguments built in order.
#[derive(Default)]
pub(super) struct Args(pub(super) Vec<Vec<u8>>);

impl Args {
    pub(super) fn put(&mut self, a: impl Into<Vec<u8>>) -> &mut Self {
        self.0.push(a.into());
        self
    }

    pub(super) fn num(&mut self, n: impl ToString) -> &mut Self {
        self.put(n.to_string())
    }

    /// A count, then the items.
    pub(super) fn list<I: Into<Vec<u8>>>(
        &mut self,
        items: impl IntoIterator<Item = I>,
    ) -> &mut Self {
        let at = self.0.len();
        self.0.push(Vec::new());
        self.0.extend(items.into_iter().map(Into::into));
        self.0[at] = (self.0.len() - at - 1).to_string().into_bytes();
        self
    }

    /// `bucket counter, capacity` of a room check, or unchecked.
    pub(super) fn room(&mut self, room: Option<(i64, u32)>) -> &mut Self {
        match room {
            Some((bucket, cap)) => self.put(counter_field(Counter::Bucket(bucket))).num(cap),
            None => self.put("").put("0"),
        }
    }

    /// The arguments of the scripts' `write_record`: the change from `before` to `after`.
    pub(super) fn change(
        &mut self,
        before: Option<&CallbackRecord>,
        after: Option<&CallbackRecord>,
    ) -> &mut Self {
        let id = before.or(after).map_or(Uuid::nil(), |r| r.id);
        let d = index::delta(before, after);
        let keep = after.map_or(0, |r| r.expires.as_millisecond().saturating_add(GRACE_MS));
        self.put(id.simple().to_string())
            .num(keep)
            .put(if after.is_none() { "1" } else { "0" })
            .put(codec::options_arg(before, after))
            .list(after.map(codec::fields).unwrap_or_default())
            .list(d.remove.iter().map(index::Entry::member))
            .list(d.add.iter().map(index::Entry::member));
        let deltas: Vec<Vec<u8>> = d
            .counts
            .iter()
            .flat_map(|(c, by)| [counter_field(*c), by.to_string().into_bytes()])
            .collect();
        self.list(deltas)
            .put(d.due.map(|t| t.to_string()).unwrap_or_default())
            .put(d.expires.map(|t| t.to_string()).unwrap_or_default())
    }

    /// The query script's arguments after the record-key base (see `lua.rs`).
    pub(super) fn query(&mut self, q: &Query) -> &mut Self {
        self.num(q.limit).num(SCAN_LIMIT).put(match q.operand {
            Operand::And => "a",
            Operand::Or => "o",
        });
        // The admin's states: one test on the state code.
        if q.states.is_empty() {
            self.num(0);
        } else {
            let codes = State::ALL
                .into_iter()
                .filter(|s| q.states.iter().any(|w| w.public() == s.public()))
                .map(|s| vec![s.code()]);
            self.num(1).put("s").put("0").list(codes);
        }
        self.num(q.terms.len());
        for t in &q.terms {
            self.test(t);
        }
        let groups = q.plan();
        self.num(groups.len());
        for g in &groups {
            self.num(g.len());
            for src in g {
                match src {
                    Source::Id(id) => self.put("i").put(id.simple().to_string()),
                    Source::Slice(s) => {
                        let prefix = s.prefix();
                        let (lo, hi) = lex_range(&prefix, q.start(), q.end());
                        self.put("l").num(prefix.len()).put(lo).put(hi)
                    }
                };
            }
        }
        self
    }

    /// One filter as a test on a record hash field (see `codec.rs`).
    fn test(&mut self, t: &Term) {
        let v = t.value.as_str();
        let (field, values): (Vec<u8>, Vec<Vec<u8>>) = match &t.field {
            Field::Id => (
                Vec::new(),
                Uuid::try_parse(v)
                    .map(|id| vec![id.simple().to_string().into_bytes()])
                    .unwrap_or_default(),
            ),
            Field::State => (
                b"s".to_vec(),
                State::ALL
                    .into_iter()
                    .filter(|s| s.name() == v)
                    .map(|s| vec![s.code()])
                    .collect(),
            ),
            Field::Reason => (b"r".to_vec(), vec![v.into()]),
            Field::Lookup(k) if k == CUSTOMER_NUMBER => (b"cn".to_vec(), vec![v.into()]),
            Field::Lookup(k) => ([b"k", k.as_bytes()].concat(), vec![v.into()]),
            Field::Prop(k) => ([b"p", k.as_bytes()].concat(), vec![v.into()]),
        };
        self.put(field)
            .put(if t.negate { "1" } else { "0" })
            .list(values);
    }
}

/// The lexical bounds of a customer number's slice (the create's in-queue check).
pub(super) fn customer_slice(customer_number: &str) -> (Vec<u8>, Vec<u8>) {
    let s = Slice::Lookup(CUSTOMER_NUMBER.into(), customer_number.into());
    lex_range(&s.prefix(), (0, None), None)
}

/// A string reply's bytes (`None` for nil or another type).
pub(super) fn bytes(v: RValue) -> Option<Vec<u8>> {
    match v {
        RValue::BulkString(b) => Some(b),
        RValue::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// A reply's items (`None` when it is not an array).
pub(super) fn items(v: RValue) -> Option<Vec<RValue>> {
    match v {
        RValue::Array(a) => Some(a),
        RValue::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// A record from a script's reply: its id (32 hex digits), fields and options.
pub(super) fn record(
    service: &str,
    id: RValue,
    fields: RValue,
    options: Option<RValue>,
) -> Option<CallbackRecord> {
    let id = Uuid::try_parse_ascii(&bytes(id)?).ok()?;
    let options = options.and_then(bytes);
    codec::parse(id, service, hash_pairs(fields)?, options.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_keys_share_one_tag() {
        for name in ["cb", "a}b", "{x}", "é"] {
            let k = Keys::new("gms:", name);
            let all = [
                k.base.clone(),
                k.index.clone(),
                k.counts.clone(),
                k.due.clone(),
                k.expiry.clone(),
                k.options.clone(),
                k.throttle.clone(),
                k.day(20_000),
                k.record(Uuid::new_v4()),
            ];
            let tag = |key: &str| {
                let open = key.find('{').unwrap();
                let close = open + key[open..].find('}').unwrap();
                key[open + 1..close].to_string()
            };
            assert!(all.iter().all(|key| tag(key) == tag(&all[0])), "{all:?}");
            assert!(!tag(&all[0]).is_empty());
        }
        assert_eq!(Keys::new("gms:", "cb").index, "gms:ci{cb:cb}");
    }

    #[test]
    fn lists_carry_their_count() {
        let mut a = Args::default();
        a.put("x").list(["a", "b"]).list(Vec::<Vec<u8>>::new());
        assert_eq!(
            a.0,
            vec![
                b"x".to_vec(),
                b"2".to_vec(),
                b"a".to_vec(),
                b"b".to_vec(),
                b"0".to_vec()
            ]
        );
        assert_eq!(counter_field(Counter::State(State::Queued)), b"nQ");
        assert_eq!(counter_field(Counter::Bucket(-5)), b"b-5");
    }
}
