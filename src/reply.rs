//! What a handler answers: status, content type, extra headers and a body, always sent with a
//! Content-Length (Pingora closes the connection otherwise).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

/// `application/json` content type.
pub const JSON: &str = "application/json";
/// UTF-8 text content type.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// The `Content-Security-Policy` of every stored value served back: the bytes load nothing,
/// run nothing, and a browser that renders them anyway puts them in an opaque origin (issue 15
/// item 2: the web tier shares the API's host and port).
pub const STORED_CSP: &str = "default-src 'none'; sandbox";

/// A complete HTTP reply built by the gateway itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Content-Type header value (static for the gateway's own types: no copy per reply).
    pub content_type: Cow<'static, str>,
    /// Extra headers (`Age`, `Content-Disposition`, ...).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
    /// For the access log: which service the reply is about and where it was served.
    pub trace: Option<Box<Trace>>,
}

/// What the access log tells about a service request beyond its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The configured service name.
    pub service: String,
    /// The service's id (new, for a create).
    pub id: uuid::Uuid,
    /// The ORS node the request went to, if any.
    pub upstream: Option<String>,
}

impl Reply {
    /// A reply with the given parts and no extra headers.
    pub fn new(
        status: u16,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Bytes>,
    ) -> Reply {
        Reply {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
            trace: None,
        }
    }

    /// 200 with a value serialized as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Reply {
        // Serializing our own reply types cannot fail: they hold only strings, numbers and maps.
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Reply::new(200, JSON, body)
    }

    /// 200 with JSON bytes the caller already has.
    pub fn json_bytes(body: Bytes) -> Reply {
        Reply::new(200, JSON, body)
    }

    /// 200 with UTF-8 text.
    pub fn text(body: impl Into<String>) -> Reply {
        Reply::new(200, TEXT, body.into())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Marks a reply whose body holds what a client stored (a value, a file, or a JSON object
    /// of them): never sniffed into another type (`X-Content-Type-Options: nosniff`), never
    /// run in the API's origin ([`STORED_CSP`]). Every route that serves stored bytes ends
    /// here, so they all carry the same headers.
    pub fn stored_content(self) -> Reply {
        self.with_header("X-Content-Type-Options", "nosniff")
            .with_header("Content-Security-Policy", STORED_CSP)
    }

    /// Notes, for the access log, the service a reply is about and the ORS node that served it.
    pub fn traced(mut self, service: &str, id: uuid::Uuid, upstream: Option<&str>) -> Reply {
        self.trace = Some(Box::new(Trace {
            service: service.to_string(),
            id,
            upstream: upstream.map(str::to_string),
        }));
        self
    }

    /// Replaces the status code.
    pub fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    /// The whole reply as HTTP/1.1 bytes with `Connection: close`, for the few answers the
    /// gateway writes below Pingora (a connection it is about to drop).
    pub fn to_http1_close(&self) -> Vec<u8> {
        let reason = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Writes a flat JSON object of string values straight into its bytes, in insertion order:
/// replies built this way skip the intermediate `serde_json::Map` (a tree, re-sorted).
#[derive(Debug)]
pub struct JsonObject {
    buf: Vec<u8>,
}

impl Default for JsonObject {
    fn default() -> Self {
        JsonObject::with_capacity(128)
    }
}

impl JsonObject {
    /// An empty object with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        let mut buf = Vec::with_capacity(n);
        buf.push(b'{');
        JsonObject { buf }
    }

    /// Adds `"key":"value"` (both escaped as JSON strings).
    pub fn field(&mut self, key: &str, value: &str) -> &mut Self {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, key);
        self.buf.push(b':');
        let _ = serde_json::to_writer(&mut self.buf, value);
        self
    }

    /// 200 with the finished object.
    pub fn reply(self) -> Reply {
        Reply::json_bytes(Bytes::from(self.finish()))
    }

    /// The finished object's bytes (to go into a larger document, e.g. an array).
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// 200 with a JSON array of finished objects ([`JsonObject::finish`]).
pub fn json_array(items: impl IntoIterator<Item = Vec<u8>>) -> Reply {
    let mut buf = vec![b'['];
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(&item);
    }
    buf.push(b']');
    Reply::json_bytes(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_object_escapes_and_keeps_order() {
        let mut o = JsonObject::default();
        o.field("b", "1").field("a", "say \"hi\"\n");
        let r = o.reply();
        assert_eq!(&r.body[..], br#"{"b":"1","a":"say \"hi\"\n"}"#);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["a"], "say \"hi\"\n");
        assert_eq!(&JsonObject::default().reply().body[..], b"{}");
    }
}
