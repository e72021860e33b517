//! A callback record as bytes: the memory store's packed form (one buffer per record, a few
//! hundred bytes; the benchmark reports memory per scheduled callback), and key/value lists
//! (the merged options, on every store).
//!
//! Numbers are LEB128 varints (signed ones zigzag); strings are a varint length and UTF-8;
//! times are milliseconds, the later ones as differences from the desired time (small).

use jiff::Timestamp;
use uuid::Uuid;

use super::{CallbackRecord, State};
use crate::callback::record::{Claim, OrsRef};

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn pairs(&mut self, pairs: &[(String, String)]) {
        self.uint(pairs.len() as u64);
        for (k, v) in pairs {
            self.str(k);
            self.str(v);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn int(&mut self) -> Option<i64> {
        let u = self.uint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn str(&mut self) -> Option<String> {
        let n = usize::try_from(self.uint()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = usize::try_from(self.uint()?).ok()?;
        // Each pair takes at least two bytes: a damaged count cannot make a huge allocation.
        let mut out = Vec::with_capacity(n.min(self.bytes.len() / 2));
        for _ in 0..n {
            out.push((self.str()?, self.str()?));
        }
        Some(out)
    }
}

/// Key/value pairs as bytes.
pub fn pack_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.pairs(pairs);
    w.0
}

/// The pairs of [`pack_pairs`]; `None` when damaged.
pub fn unpack_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut r = Reader { bytes, pos: 0 };
    let pairs = r.pairs()?;
    (r.pos == bytes.len()).then_some(pairs)
}

const REASON: u8 = 1;
const OWNER: u8 = 2;
const BUCKET: u8 = 4;
const NEXT_ATTEMPT: u8 = 8;
const CLAIM: u8 = 16;
const ORS: u8 = 32;
const IMMEDIATE: u8 = 64;

/// A record without its id, service and options (the memory store keeps those apart).
pub fn pack(r: &CallbackRecord) -> Box<[u8]> {
    let desired = r.desired.as_millisecond();
    let since = |t: Timestamp| t.as_millisecond() - desired;
    let mut flags = 0;
    for (set, bit) in [
        (r.reason.is_some(), REASON),
        (r.owner.is_some(), OWNER),
        (r.bucket.is_some(), BUCKET),
        (r.next_attempt.is_some(), NEXT_ATTEMPT),
        (r.claim.is_some(), CLAIM),
        (r.ors.is_some(), ORS),
        (r.immediate, IMMEDIATE),
    ] {
        if set {
            flags |= bit;
        }
    }
    let mut w = Writer(Vec::with_capacity(64 + r.customer_number.len()));
    w.0.push(flags);
    w.0.push(r.state.code());
    w.uint(r.version);
    w.uint(u64::from(r.attempts));
    w.int(desired);
    w.int(since(r.submit_at));
    w.int(since(r.expires));
    w.int(since(r.created));
    w.str(&r.customer_number);
    w.0.extend_from_slice(r.data_id.as_bytes());
    if let Some(s) = &r.reason {
        w.str(s);
    }
    if let Some(s) = &r.owner {
        w.str(s);
    }
    if let Some(b) = r.bucket {
        w.int(b - desired);
    }
    if let Some(t) = r.next_attempt {
        w.int(since(t));
    }
    if let Some(c) = &r.claim {
        w.str(&c.node);
        w.int(since(c.until));
    }
    if let Some(o) = &r.ors {
        w.str(&o.node);
        w.str(&o.session);
    }
    w.pairs(&r.lookup);
    w.pairs(&r.props);
    w.0.into_boxed_slice()
}

/// The record of [`pack`], given what it leaves out; `None` when damaged.
pub fn unpack(
    bytes: &[u8],
    id: Uuid,
    service: &str,
    options: Vec<(String, String)>,
) -> Option<CallbackRecord> {
    let mut r = Reader { bytes, pos: 0 };
    let flags = r.byte()?;
    let state = State::from_code(r.byte()?)?;
    let version = r.uint()?;
    let attempts = u32::try_from(r.uint()?).ok()?;
    let desired = r.int()?;
    let time = |ms: i64| Timestamp::from_millisecond(ms).ok();
    let at = |r: &mut Reader| time(desired.checked_add(r.int()?)?);
    let submit_at = at(&mut r)?;
    let expires = at(&mut r)?;
    let created = at(&mut r)?;
    let customer_number = r.str()?;
    let data_id = Uuid::from_slice(r.take(16)?).ok()?;
    let has = |bit| flags & bit != 0;
    let reason = if has(REASON) { Some(r.str()?) } else { None };
    let owner = if has(OWNER) { Some(r.str()?) } else { None };
    let bucket = if has(BUCKET) {
        Some(desired.checked_add(r.int()?)?)
    } else {
        None
    };
    let next_attempt = if has(NEXT_ATTEMPT) {
        Some(at(&mut r)?)
    } else {
        None
    };
    let claim = if has(CLAIM) {
        Some(Claim {
            node: r.str()?,
            until: at(&mut r)?,
        })
    } else {
        None
    };
    let ors = if has(ORS) {
        Some(OrsRef {
            node: r.str()?,
            session: r.str()?,
        })
    } else {
        None
    };
    let lookup = r.pairs()?;
    let props = r.pairs()?;
    if r.pos != bytes.len() {
        return None;
    }
    Some(CallbackRecord {
        id,
        service: service.to_string(),
        state,
        reason,
        desired: time(desired)?,
        submit_at,
        expires,
        created,
        customer_number,
        lookup,
        props,
        data_id,
        owner,
        options,
        bucket,
        ors,
        attempts,
        next_attempt,
        claim,
        immediate: has(IMMEDIATE),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CallbackRecord {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut r = CallbackRecord::new(
            "cb",
            "+1 555 123",
            t("2026-03-02T14:30:00.123Z"),
            t("2026-03-03T14:30:00Z"),
            t("2026-03-02T10:00:00Z"),
        )
        .immediate("node-1", t("2026-03-02T10:01:00Z"));
        r.submit_at = t("2026-03-02T14:28:00Z");
        r.reason = Some("é".into());
        r.owner = Some("alice".into());
        r.bucket = Some(t("2026-03-02T14:30:00Z").as_millisecond());
        r.next_attempt = Some(t("2026-03-02T14:28:10Z"));
        r.ors = Some(OrsRef {
            node: "http://ors:1".into(),
            session: "S-1".into(),
        });
        r.lookup = vec![("CB_SUB".into(), "42".into())];
        r.props = vec![("_vq".into(), String::new())];
        r.version = 300;
        r.attempts = 2;
        r
    }

    #[test]
    fn records_round_trip() {
        let mut r = full();
        r.options = vec![("_target".into(), "T".into())];
        let packed = pack(&r);
        assert_eq!(
            unpack(&packed, r.id, "cb", r.options.clone()).as_ref(),
            Some(&r)
        );
        let plain = CallbackRecord::new("s", "1", r.desired, r.desired, r.desired);
        let p = pack(&plain);
        assert!(p.len() < 40, "{} bytes", p.len());
        assert_eq!(unpack(&p, plain.id, "s", vec![]), Some(plain));
        for cut in 0..packed.len() {
            assert_eq!(unpack(&packed[..cut], r.id, "cb", vec![]), None);
        }
    }

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![
            ("a".to_string(), "".to_string()),
            ("_x".to_string(), "é".repeat(100)),
        ];
        assert_eq!(unpack_pairs(&pack_pairs(&pairs)), Some(pairs));
        assert_eq!(unpack_pairs(&[5, 1]), None);
        assert_eq!(unpack_pairs(&[0, 0]), None, "trailing bytes");
    }
}
