//! HTTP client helpers (ureq 2; 4xx/5xx are responses, not errors), the multipart builder
//! and test file bytes.

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

/// A whole response: status, headers, body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .max_idle_connections(0)
            .redirects(0)
            .build()
    })
}

/// Any request; `body` is `(content_type, bytes)`. Transport errors panic.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Resp {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some((ct, bytes)) => req.set("Content-Type", ct).send_bytes(bytes),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: transport error: {e}"),
    };
    let status = resp.status();
    let mut hdrs = Vec::new();
    for name in resp.headers_names() {
        for v in resp.all(&name) {
            hdrs.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    let mut body = Vec::new();
    resp.into_reader()
        .take(256 * 1024 * 1024)
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("{method} {url}: reading body: {e}"));
    Resp {
        status,
        headers: hdrs,
        body,
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", url, headers, None)
}

pub fn delete(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("DELETE", url, headers, None)
}

/// POST with no body at all.
pub fn post_empty(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("POST", url, headers, None)
}

/// POST `application/x-www-form-urlencoded`.
pub fn post_form(url: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
    let body = form_encode(fields);
    request(
        "POST",
        url,
        headers,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

/// POST `application/json`.
pub fn post_json(url: &str, json: &Value, headers: &[(&str, &str)]) -> Resp {
    let body = json.to_string();
    request(
        "POST",
        url,
        headers,
        Some(("application/json", body.as_bytes())),
    )
}

/// POST arbitrary bytes with a given content type.
pub fn post_raw(url: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
    request("POST", url, headers, Some((content_type, body)))
}

/// POST a multipart body.
pub fn post_multipart(url: &str, mp: &Multipart, headers: &[(&str, &str)]) -> Resp {
    let (ct, body) = mp.build();
    request("POST", url, headers, Some((&ct, &body)))
}

fn enc_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding (also usable as a query string).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc_component(k, &mut out);
        out.push('=');
        enc_component(v, &mut out);
    }
    out
}

/// The boundary of every [`Multipart`] body.
pub const BOUNDARY: &str = "----gmsGatewayTestBoundary7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body, built part by part.
#[derive(Default, Clone)]
pub struct Multipart {
    body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Multipart {
        Multipart::default()
    }

    /// A text part.
    pub fn text(self, name: &str, value: &str) -> Multipart {
        self.text_bytes(name, value.as_bytes())
    }

    /// A text part with arbitrary (possibly invalid UTF-8) bytes.
    pub fn text_bytes(mut self, name: &str, value: &[u8]) -> Multipart {
        self.check(value);
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        self.body.extend_from_slice(value);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file part (has a filename and a content type).
    pub fn file(
        mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Multipart {
        self.check(bytes);
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn check(&self, bytes: &[u8]) {
        assert!(
            !bytes
                .windows(BOUNDARY.len())
                .any(|w| w == BOUNDARY.as_bytes()),
            "part contains the boundary"
        );
    }

    /// `(content_type, body)`
    pub fn build(&self) -> (String, Vec<u8>) {
        let mut body = self.body.clone();
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={BOUNDARY}"), body)
    }
}

/// Deterministic pseudo-random bytes (all byte values occur), starting like a JPEG.
pub fn fake_jpeg(len: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u32 = 0x1234_5678;
    while out.len() < len {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        out.push((x >> 24) as u8);
    }
    out.truncate(len);
    out
}
