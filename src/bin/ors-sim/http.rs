//! The request and reply types the handlers work on, between hyper and them.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::Full;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;

/// A request with its whole body read.
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// The raw (still percent-encoded) path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The raw query, without `?` ("" when there is none).
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// A header's value as text, if it is.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A reply, always with its whole body.
pub type Reply = http::Response<Full<Bytes>>;

/// What to do with a request once handled.
pub enum Outcome {
    Reply(Reply),
    /// Drop the connection without a word (refuse mode).
    Close,
    /// Hold the connection unanswered (hang mode).
    Hang,
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static TEXT: HeaderValue = HeaderValue::from_static("text/plain");

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A reply without body or content type.
pub fn empty(code: u16) -> Reply {
    let mut r = Reply::new(Full::new(Bytes::new()));
    *r.status_mut() = status(code);
    r
}

/// A JSON reply with an already serialized body.
pub fn json_bytes(code: u16, body: Vec<u8>) -> Reply {
    let mut r = Reply::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status(code);
    r.headers_mut().insert(CONTENT_TYPE, JSON.clone());
    r
}

/// A JSON reply.
pub fn json<T: Serialize + ?Sized>(code: u16, v: &T) -> Reply {
    json_bytes(code, serde_json::to_vec(v).unwrap_or_default())
}

/// `{"error": msg}` with `code`.
pub fn error(code: u16, msg: &str) -> Reply {
    json(code, &json!({ "error": msg }))
}

/// A text/plain reply.
pub fn text(code: u16, s: String) -> Reply {
    let mut r = Reply::new(Full::new(Bytes::from(s)));
    *r.status_mut() = status(code);
    r.headers_mut().insert(CONTENT_TYPE, TEXT.clone());
    r
}

/// 405 with the `Allow` header.
pub fn method_not_allowed(allow: &'static str) -> Reply {
    with_header(
        error(405, "method not allowed"),
        ALLOW,
        HeaderValue::from_static(allow),
    )
}

/// 404 `{"error":"not found"}`.
pub fn not_found() -> Reply {
    error(404, "not found")
}

/// `r` with one more header.
pub fn with_header(mut r: Reply, name: HeaderName, value: HeaderValue) -> Reply {
    r.headers_mut().insert(name, value);
    r
}

/// Headers as a JSON object; repeated names are joined with ", " as HTTP allows, and a
/// value that is not UTF-8 is shown lossily.
pub struct HeadersJson<'a>(pub &'a HeaderMap);

impl Serialize for HeadersJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut values = self.0.get_all(name).iter();
            let first = values.next().map(lossy).unwrap_or_default();
            match values.next() {
                None => m.serialize_entry(name.as_str(), &first)?,
                Some(second) => {
                    let mut joined = first.into_owned();
                    for v in std::iter::once(second).chain(values) {
                        joined.push_str(", ");
                        joined.push_str(&lossy(v));
                    }
                    m.serialize_entry(name.as_str(), &joined)?
                }
            }
        }
        m.end()
    }
}

fn lossy(v: &HeaderValue) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(v.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_json() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("host", HeaderValue::from_static("h"));
        h.append("x-a", HeaderValue::from_static("2"));
        h.append("x-a", HeaderValue::from_static("3"));
        h.append("x-b", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let v = serde_json::to_value(HeadersJson(&h)).unwrap();
        assert_eq!(v["x-a"], "1, 2, 3");
        assert_eq!(v["host"], "h");
        assert_eq!(v["x-b"], "caf\u{fffd}");
    }

    #[test]
    fn replies() {
        let r = error(503, "x");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(method_not_allowed("GET").headers()[ALLOW], "GET");
        assert_eq!(text(200, "id".into()).headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(empty(307).status(), 307);
    }
}
