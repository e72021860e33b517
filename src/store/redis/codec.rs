//! How records are written in Redis: user values, service records and status entries as hash
//! fields and strings (the layout is in `keys.rs`), and the script arguments that carry them.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use redis::Value as RValue;
use uuid::Uuid;

use crate::store::{DataRecord, OrsSession, ReservationRef, ServiceRecord, StatusEntry};
use crate::value::{Fields, FileValue, Value};

pub(super) fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

pub(super) fn owner_args(owner: Option<&str>) -> (&'static str, &str) {
    match owner {
        Some(o) => ("1", o),
        None => ("0", ""),
    }
}

/// One user value as a hash field value.
fn encode_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Text(s) => {
            let mut out = Vec::with_capacity(1 + s.len());
            out.push(b't');
            out.extend_from_slice(s.as_bytes());
            out
        }
        Value::File(f) => {
            let mut out =
                Vec::with_capacity(9 + f.filename.len() + f.content_type.len() + f.bytes.len());
            out.push(b'f');
            for s in [f.filename.as_bytes(), f.content_type.as_bytes()] {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s);
            }
            out.extend_from_slice(&f.bytes);
            out
        }
    }
}

fn decode_value(b: Vec<u8>) -> Option<Value> {
    match b.first()? {
        b't' => {
            let mut b = b;
            b.remove(0);
            String::from_utf8(b).ok().map(Value::Text)
        }
        b'f' => {
            let all = Bytes::from(b);
            let mut pos = 1;
            let mut text = || -> Option<String> {
                let len = u32::from_le_bytes(all.get(pos..pos + 4)?.try_into().ok()?) as usize;
                let s = all.get(pos + 4..pos + 4 + len)?;
                pos += 4 + len;
                String::from_utf8(s.to_vec()).ok()
            };
            let filename = text()?;
            let content_type = text()?;
            Some(Value::File(FileValue {
                filename,
                content_type,
                bytes: all.slice(pos..),
            }))
        }
        _ => None,
    }
}

pub(super) fn field_args(fields: &Fields) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(1 + 2 * fields.len());
    out.push(fields.len().to_string().into_bytes());
    for (k, v) in fields {
        out.push(k.clone().into_bytes());
        out.push(encode_value(v));
    }
    out
}

pub(super) fn encode_ors(s: &OrsSession) -> Vec<u8> {
    match s {
        OrsSession::Started { node, session_id } => {
            format!("s{}:{node}{session_id}", node.len()).into_bytes()
        }
        OrsSession::Pending => b"p".to_vec(),
        OrsSession::Failed(m) => format!("f{m}").into_bytes(),
    }
}

fn decode_ors(b: &[u8]) -> Option<OrsSession> {
    let s = std::str::from_utf8(b).ok()?;
    match s.as_bytes().first()? {
        b'p' => Some(OrsSession::Pending),
        b'f' => Some(OrsSession::Failed(s[1..].to_string())),
        b's' => {
            let (len, rest) = s[1..].split_once(':')?;
            let len: usize = len.parse().ok()?;
            Some(OrsSession::Started {
                node: rest.get(..len)?.to_string(),
                session_id: rest.get(len..)?.to_string(),
            })
        }
        _ => None,
    }
}

fn res_field(r: &ReservationRef) -> Vec<u8> {
    let mut f = Vec::with_capacity(2 + r.number.len() + 12);
    f.push(b'r');
    f.extend_from_slice(r.number.as_bytes());
    if let Some(c) = &r.code {
        f.push(0);
        f.extend_from_slice(c.as_bytes());
    }
    f
}

/// The service record's hash fields, reservations included.
pub(super) fn service_fields(r: &ServiceRecord) -> Vec<Vec<u8>> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"n".to_vec(), r.service.clone().into_bytes()),
        (
            b"d".to_vec(),
            r.data_id.hyphenated().to_string().into_bytes(),
        ),
        (b"st".to_vec(), ms(r.service_ttl).to_string().into_bytes()),
        (b"dt".to_vec(), ms(r.data_ttl).to_string().into_bytes()),
    ];
    if let Some(o) = &r.owner {
        pairs.push((b"u".to_vec(), o.clone().into_bytes()));
    }
    if let Some(s) = &r.ors {
        pairs.push((b"o".to_vec(), encode_ors(s)));
    }
    for res in &r.reservations {
        pairs.push((res_field(res), b"1".to_vec()));
    }
    let mut out = Vec::with_capacity(1 + 2 * pairs.len());
    out.push(pairs.len().to_string().into_bytes());
    for (k, v) in pairs {
        out.push(k);
        out.push(v);
    }
    out
}

/// Flattens a hash reply (RESP2 array of pairs or RESP3 map) into pairs of byte strings.
pub(super) fn hash_pairs(v: RValue) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn bytes(v: RValue) -> Option<Vec<u8>> {
        match v {
            RValue::BulkString(b) => Some(b),
            RValue::SimpleString(s) => Some(s.into_bytes()),
            RValue::Int(i) => Some(i.to_string().into_bytes()),
            _ => None,
        }
    }
    match v {
        RValue::Nil => Some(Vec::new()),
        RValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let Some(k) = it.next() {
                out.push((bytes(k)?, bytes(it.next()?)?));
            }
            Some(out)
        }
        RValue::Map(items) => items
            .into_iter()
            .map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
            .collect(),
        _ => None,
    }
}

pub(super) fn parse_service(id: Uuid, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<ServiceRecord> {
    let mut rec = ServiceRecord {
        id,
        service: String::new(),
        data_id: Uuid::nil(),
        owner: None,
        service_ttl: Duration::ZERO,
        data_ttl: Duration::ZERO,
        ors: None,
        reservations: Vec::new(),
    };
    let text = |v: Vec<u8>| String::from_utf8(v).ok();
    let millis = |v: Vec<u8>| -> Option<Duration> {
        Some(Duration::from_millis(
            std::str::from_utf8(&v).ok()?.parse().ok()?,
        ))
    };
    let mut have_data = false;
    for (k, v) in pairs {
        match k.as_slice() {
            b"n" => rec.service = text(v)?,
            b"d" => {
                rec.data_id = Uuid::try_parse_ascii(&v).ok()?;
                have_data = true;
            }
            b"u" => rec.owner = Some(text(v)?),
            b"st" => rec.service_ttl = millis(v)?,
            b"dt" => rec.data_ttl = millis(v)?,
            b"o" => rec.ors = Some(decode_ors(&v)?),
            [b'r', rest @ ..] => {
                let rest = std::str::from_utf8(rest).ok()?;
                rec.reservations.push(match rest.rsplit_once('\0') {
                    Some((number, code)) => ReservationRef {
                        number: number.to_string(),
                        code: Some(code.to_string()),
                    },
                    None => ReservationRef {
                        number: rest.to_string(),
                        code: None,
                    },
                });
            }
            _ => {}
        }
    }
    have_data.then_some(rec)
}

pub(super) fn parse_data(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<DataRecord> {
    let mut owner = None;
    let mut order: Vec<u8> = Vec::new();
    let mut values: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        match k.as_slice() {
            b"\0o" => owner = Some(String::from_utf8(v).ok()?),
            b"\0k" => order = v,
            _ => {
                values.insert(k, v);
            }
        }
    }
    let mut fields: Fields = Vec::with_capacity(values.len());
    for key in order.split(|b| *b == 0) {
        if let Some(v) = values.remove(key) {
            fields.push((String::from_utf8(key.to_vec()).ok()?, decode_value(v)?));
        }
    }
    // Fields missing from the order list (never written so): after the ordered ones.
    let mut rest: Vec<_> = values.into_iter().collect();
    rest.sort();
    for (k, v) in rest {
        fields.push((String::from_utf8(k).ok()?, decode_value(v)?));
    }
    Some(DataRecord { owner, fields })
}

pub(super) fn encode_status(e: &StatusEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + e.body.len());
    out.extend_from_slice(&e.stored_at_ms.to_le_bytes());
    out.extend_from_slice(&e.fresh_ms.to_le_bytes());
    out.extend_from_slice(&e.body);
    out
}

pub(super) fn decode_status(b: Vec<u8>) -> Option<StatusEntry> {
    if b.len() < 16 {
        return None;
    }
    let stored_at_ms = u64::from_le_bytes(b[0..8].try_into().ok()?);
    let fresh_ms = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let all = Bytes::from(b);
    Some(StatusEntry {
        body: all.slice(16..),
        stored_at_ms,
        fresh_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Text(String::new()),
            Value::Text("é 1\n".into()),
            Value::File(FileValue {
                filename: "a b.jpg".into(),
                content_type: "image/jpeg".into(),
                bytes: Bytes::from_static(b"\x00\xff\x00"),
            }),
            Value::File(FileValue {
                filename: String::new(),
                content_type: String::new(),
                bytes: Bytes::new(),
            }),
        ] {
            assert_eq!(decode_value(encode_value(&v)), Some(v));
        }
        assert_eq!(decode_value(b"f\x09\x00\x00\x00ab".to_vec()), None);
        assert_eq!(decode_value(Vec::new()), None);
    }

    #[test]
    fn ors_sessions_round_trip() {
        for s in [
            OrsSession::Pending,
            OrsSession::Failed("no: node".into()),
            OrsSession::Started {
                node: "http://127.0.0.1:7210".into(),
                session_id: "a:b\0c".into(),
            },
        ] {
            assert_eq!(decode_ors(&encode_ors(&s)), Some(s));
        }
    }

    #[test]
    fn service_records_round_trip_through_hash_fields() {
        let rec = ServiceRecord {
            id: Uuid::new_v4(),
            service: "request-interaction".into(),
            data_id: Uuid::new_v4(),
            owner: Some("alice".into()),
            service_ttl: Duration::from_secs(3600),
            data_ttl: Duration::from_secs(30),
            ors: Some(OrsSession::Pending),
            reservations: vec![
                ReservationRef {
                    number: "8003449999".into(),
                    code: Some("0042".into()),
                },
                ReservationRef {
                    number: "8005550001".into(),
                    code: None,
                },
            ],
        };
        let mut args = service_fields(&rec).into_iter();
        let n: usize = String::from_utf8(args.next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let mut pairs = Vec::new();
        for _ in 0..n {
            pairs.push((args.next().unwrap(), args.next().unwrap()));
        }
        assert_eq!(parse_service(rec.id, pairs), Some(rec));
    }

    #[test]
    fn data_keeps_key_order_and_owner() {
        let pairs = vec![
            (b"b".to_vec(), b"t2".to_vec()),
            (b"\0o".to_vec(), b"bob".to_vec()),
            (b"a".to_vec(), b"t1".to_vec()),
            (b"\0k".to_vec(), b"b\0a\0".to_vec()),
        ];
        let d = parse_data(pairs).unwrap();
        assert_eq!(d.owner.as_deref(), Some("bob"));
        assert_eq!(
            d.fields,
            vec![
                ("b".to_string(), Value::Text("2".into())),
                ("a".to_string(), Value::Text("1".into()))
            ]
        );
    }

    #[test]
    fn status_round_trips() {
        let e = StatusEntry {
            body: Bytes::from_static(b"{\"status\":\"x\"}"),
            stored_at_ms: 1_700_000_000_123,
            fresh_ms: 1000,
        };
        assert_eq!(decode_status(encode_status(&e)), Some(e));
        assert_eq!(decode_status(vec![1, 2]), None);
    }
}
