//! What a handler answers: status, content type, extra headers and a body, always sent with a
//! Content-Length (Pingora closes the connection otherwise).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

/// `application/json` content type.
pub const JSON: &str = "application/json";
/// UTF-8 text content type.
pub const TEXT: &str = "text/plain; charset=utf-8";

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

    /// Replaces the status code.
    pub fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }
}
