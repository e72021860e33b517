//! A compact byte encoding of user-data fields: one buffer per record instead of two heap
//! strings per field, which is most of what a live service costs in memory. Files stay
//! zero-copy on the way out (`Bytes::slice` of the buffer).
//!
//! Layout, repeated per field: `kind: u8` (0 text, 1 file), then length-prefixed (`u32` LE)
//! byte strings: key, and value (text) or filename, content type, bytes (file).

use bytes::{BufMut, Bytes, BytesMut};

use crate::value::{Fields, FileValue, Value};

const TEXT: u8 = 0;
const FILE: u8 = 1;

fn put(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u32_le(b.len() as u32);
    buf.put_slice(b);
}

/// Encodes fields into one buffer.
pub fn encode(fields: &Fields) -> Bytes {
    let size: usize = fields
        .iter()
        .map(|(k, v)| {
            1 + 4
                + k.len()
                + match v {
                    Value::Text(s) => 4 + s.len(),
                    Value::File(f) => 12 + f.filename.len() + f.content_type.len() + f.bytes.len(),
                }
        })
        .sum();
    let mut buf = BytesMut::with_capacity(size);
    for (k, v) in fields {
        match v {
            Value::Text(s) => {
                buf.put_u8(TEXT);
                put(&mut buf, k.as_bytes());
                put(&mut buf, s.as_bytes());
            }
            Value::File(f) => {
                buf.put_u8(FILE);
                put(&mut buf, k.as_bytes());
                put(&mut buf, f.filename.as_bytes());
                put(&mut buf, f.content_type.as_bytes());
                put(&mut buf, &f.bytes);
            }
        }
    }
    buf.freeze()
}

struct Reader<'a> {
    all: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self) -> Option<Bytes> {
        let len_end = self.pos.checked_add(4)?;
        let len = u32::from_le_bytes(self.all.get(self.pos..len_end)?.try_into().ok()?) as usize;
        let end = len_end.checked_add(len)?;
        if end > self.all.len() {
            return None;
        }
        self.pos = end;
        Some(self.all.slice(len_end..end))
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

/// Decodes what [`encode`] wrote; `None` for a damaged buffer.
pub fn decode(all: &Bytes) -> Option<Fields> {
    let mut r = Reader { all, pos: 0 };
    let mut out = Vec::new();
    while r.pos < all.len() {
        let kind = all[r.pos];
        r.pos += 1;
        let key = r.text()?;
        let value = match kind {
            TEXT => Value::Text(r.text()?),
            FILE => Value::File(FileValue {
                filename: r.text()?,
                content_type: r.text()?,
                bytes: r.bytes()?,
            }),
            _ => return None,
        };
        out.push((key, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_text_and_files() {
        let fields: Fields = vec![
            ("a".into(), Value::Text("é 1".into())),
            (
                "pic".into(),
                Value::File(FileValue {
                    filename: "f.jpg".into(),
                    content_type: "image/jpeg".into(),
                    bytes: Bytes::from_static(b"\x00\xff"),
                }),
            ),
            ("empty".into(), Value::Text(String::new())),
        ];
        let b = encode(&fields);
        assert_eq!(decode(&b), Some(fields));
        assert_eq!(decode(&Bytes::new()), Some(vec![]));
    }

    #[test]
    fn damaged_buffers_decode_to_none() {
        let b = encode(&vec![("a".into(), Value::Text("xyz".into()))]);
        assert_eq!(decode(&b.slice(..b.len() - 1)), None);
        assert_eq!(decode(&Bytes::from_static(&[7, 0, 0, 0, 0])), None);
    }
}
