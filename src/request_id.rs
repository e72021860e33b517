//! The id every request gets at the edge: sent back as `X-Request-Id` on every reply, written
//! in the access-log line and in every log line about the request's errors, so a client's
//! report can be matched with the log.

use std::fmt;

/// The response header that carries a request's id.
pub const HEADER: &str = "x-request-id";

/// A request id: 64 random bits, shown as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// A fresh random id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> RequestId {
        RequestId(rand::random())
    }

    /// The id as a header value.
    pub fn header_value(&self) -> http::HeaderValue {
        let mut buf = [0u8; 16];
        hex16(self.0, &mut buf);
        // Hex digits are always a valid header value.
        http::HeaderValue::from_bytes(&buf).unwrap_or_else(|_| http::HeaderValue::from_static("0"))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// `v` as 16 lower-case hex digits, without formatting machinery.
fn hex16(v: u64, out: &mut [u8; 16]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_sixteen_hex_digits_in_the_header_and_the_logs() {
        let id = RequestId(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(id.header_value(), "0123456789abcdef");
        assert_ne!(RequestId::new(), RequestId::new());
    }
}
