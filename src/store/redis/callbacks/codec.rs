//! A callback record as a Redis hash: short field names, numbers in decimal (the scripts read
//! `v`, `s`, `dt`, `sa`, `na`, `lu`, `at`, `im`, `xt` and test `r`, `cn`, `k…`, `p…`).
//!
//! | field | holds |
//! |---|---|
//! | `v` | version |
//! | `s` | state code ([`State::code`]) |
//! | `r` | reason |
//! | `dt` `sa` `xt` `ct` `na` | desired, submit, expiration, creation, next attempt (epoch ms) |
//! | `cn` | customer number |
//! | `k<key>` `p<key>` | a lookup key's value, a property's value |
//! | `d` `u` | data id (32 hex digits), owner |
//! | `o` | SHA-1 of the packed merged options ([`pack_pairs`]), kept once per service (`lua.rs`) |
//! | `b` | bucket key |
//! | `on` `os` | ORS node and session |
//! | `at` | attempts |
//! | `cl` `lu` | claiming node and the end of its claim (ms) |
//! | `im` | `1`: created immediate |

use jiff::Timestamp;
use uuid::Uuid;

use crate::callback::record::{CallbackRecord, Claim, OrsRef, State};
use crate::store::callback::codec::{pack_pairs, unpack_pairs};

fn ms(t: Timestamp) -> Vec<u8> {
    t.as_millisecond().to_string().into_bytes()
}

/// The record's fields and values, flat (field, value, field, value, ...); the options go
/// apart ([`options_arg`]).
pub(super) fn fields(r: &CallbackRecord) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(40);
    let mut put = |f: &[u8], v: Vec<u8>| {
        out.push(f.to_vec());
        out.push(v);
    };
    put(b"v", r.version.to_string().into_bytes());
    put(b"s", vec![r.state.code()]);
    put(b"dt", ms(r.desired));
    put(b"sa", ms(r.submit_at));
    put(b"xt", ms(r.expires));
    put(b"ct", ms(r.created));
    put(b"cn", r.customer_number.clone().into_bytes());
    put(b"d", r.data_id.simple().to_string().into_bytes());
    put(b"at", r.attempts.to_string().into_bytes());
    if let Some(s) = &r.reason {
        put(b"r", s.clone().into_bytes());
    }
    if let Some(s) = &r.owner {
        put(b"u", s.clone().into_bytes());
    }
    if let Some(b) = r.bucket {
        put(b"b", b.to_string().into_bytes());
    }
    if let Some(o) = &r.ors {
        put(b"on", o.node.clone().into_bytes());
        put(b"os", o.session.clone().into_bytes());
    }
    if let Some(t) = r.next_attempt {
        put(b"na", ms(t));
    }
    if let Some(c) = &r.claim {
        put(b"cl", c.node.clone().into_bytes());
        put(b"lu", ms(c.until));
    }
    if r.immediate {
        put(b"im", b"1".to_vec());
    }
    for (k, v) in &r.lookup {
        put(&[b"k", k.as_bytes()].concat(), v.clone().into_bytes());
    }
    for (k, v) in &r.props {
        put(&[b"p", k.as_bytes()].concat(), v.clone().into_bytes());
    }
    out
}

/// The options argument of a write from `before` to `after`: `=` unchanged, empty for none,
/// else the packed list.
pub(super) fn options_arg(
    before: Option<&CallbackRecord>,
    after: Option<&CallbackRecord>,
) -> Vec<u8> {
    match (before, after) {
        (_, None) => Vec::new(),
        (Some(b), Some(a)) if b.options == a.options => b"=".to_vec(),
        (_, Some(a)) if a.options.is_empty() => Vec::new(),
        (_, Some(a)) => pack_pairs(&a.options),
    }
}

/// The record in a hash's fields and its packed options; `None` when a field is missing or
/// damaged.
pub(super) fn parse(
    id: Uuid,
    service: &str,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    options: Option<&[u8]>,
) -> Option<CallbackRecord> {
    let text = |v: Vec<u8>| String::from_utf8(v).ok();
    let int = |v: &[u8]| -> Option<i64> { std::str::from_utf8(v).ok()?.parse().ok() };
    let time = |v: &[u8]| Timestamp::from_millisecond(int(v)?).ok();
    let mut r = CallbackRecord::new(
        service,
        "",
        Timestamp::UNIX_EPOCH,
        Timestamp::UNIX_EPOCH,
        Timestamp::UNIX_EPOCH,
    );
    r.id = id;
    let (mut desired, mut expires, mut state, mut claim_node, mut claim_until) =
        (None, None, None, None, None);
    let (mut ors_node, mut ors_session) = (None, None);
    for (f, v) in pairs {
        match f.as_slice() {
            b"v" => r.version = u64::try_from(int(&v)?).ok()?,
            b"s" => state = Some(State::from_code(*v.first()?)?),
            b"r" => r.reason = Some(text(v)?),
            b"dt" => desired = Some(time(&v)?),
            b"sa" => r.submit_at = time(&v)?,
            b"xt" => expires = Some(time(&v)?),
            b"ct" => r.created = time(&v)?,
            b"cn" => r.customer_number = text(v)?,
            b"d" => r.data_id = Uuid::try_parse_ascii(&v).ok()?,
            b"u" => r.owner = Some(text(v)?),
            b"b" => r.bucket = Some(int(&v)?),
            b"on" => ors_node = Some(text(v)?),
            b"os" => ors_session = Some(text(v)?),
            b"at" => r.attempts = u32::try_from(int(&v)?).ok()?,
            b"na" => r.next_attempt = Some(time(&v)?),
            b"cl" => claim_node = Some(text(v)?),
            b"lu" => claim_until = Some(time(&v)?),
            b"im" => r.immediate = v == b"1",
            [b'k', key @ ..] => r.lookup.push((text(key.to_vec())?, text(v)?)),
            [b'p', key @ ..] => r.props.push((text(key.to_vec())?, text(v)?)),
            _ => {}
        }
    }
    if let Some(o) = options {
        r.options = unpack_pairs(o)?;
    }
    r.state = state?;
    r.desired = desired?;
    r.expires = expires?;
    if let (Some(node), Some(until)) = (claim_node, claim_until) {
        r.claim = Some(Claim { node, until });
    }
    if let (Some(node), Some(session)) = (ors_node, ors_session) {
        r.ors = Some(OrsRef { node, session });
    }
    // Hash fields come back in any order (Redis keeps insertion order for small hashes only);
    // records keep these sorted by key.
    r.lookup.sort();
    r.props.sort();
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(flat: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        flat.chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect()
    }

    #[test]
    fn records_round_trip_through_hash_fields() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut r = CallbackRecord::new(
            "cb",
            "555",
            t("2026-03-02T14:30:00.123Z"),
            t("2026-03-03T14:30:00Z"),
            t("2026-03-02T10:00:00Z"),
        )
        .immediate("n1", t("2026-03-02T10:01:00Z"));
        r.reason = Some("R".into());
        r.owner = Some("alice".into());
        r.options = vec![("_target".into(), "T".into())];
        r.bucket = Some(5);
        r.ors = Some(OrsRef {
            node: "http://o".into(),
            session: "s".into(),
        });
        r.next_attempt = Some(t("2026-03-02T10:00:10Z"));
        r.lookup = vec![("A".into(), "1".into()), ("B".into(), "2".into())];
        r.props = vec![("_vq".into(), "x".into())];
        r.version = 7;
        let mut p = pairs(fields(&r));
        p.reverse();
        let o = options_arg(None, Some(&r));
        assert_eq!(parse(r.id, "cb", p, Some(&o)), Some(r.clone()));
        assert_eq!(options_arg(Some(&r), Some(&r)), b"=");
        assert_eq!(options_arg(Some(&r), None), b"");
        let plain = CallbackRecord::new("cb", "1", r.desired, r.expires, r.created);
        assert_eq!(options_arg(None, Some(&plain)), b"");
        assert_eq!(
            parse(plain.id, "cb", pairs(fields(&plain)), None),
            Some(plain)
        );
        let mut broken = pairs(fields(&r));
        broken.retain(|(f, _)| f != b"s");
        assert_eq!(parse(r.id, "cb", broken, None), None);
        assert_eq!(parse(r.id, "cb", pairs(fields(&r)), Some(b"\x05")), None);
    }
}
