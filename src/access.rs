//! Who may use the client API: optional credentials (`gms.api_auth`: an API key header or
//! basic auth) and the per-client-IP rate limit on creates (`gms.limits.create_rate_per_ip`),
//! so one client cannot drain an access-number pool.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use pingora_limits::rate::Rate;

use crate::config::ApiAuth;
use crate::error::ApiError;

/// Count-min sketch width of the rate estimator: wide enough that tens of thousands of client
/// addresses a second rarely share all their cells (a shared cell over-counts, never under).
const RATE_SLOTS: usize = 1 << 16;
/// Rows (hashes) of the rate estimator.
const RATE_HASHES: usize = 4;

/// The decoded `user:password` bytes of a basic `Authorization` header (empty when absent or
/// malformed, which matches no credentials).
pub fn basic_credentials(authorization: Option<&str>) -> Vec<u8> {
    authorization
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .unwrap_or_default()
}

/// Compares secrets without an early exit, so timing does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// Checks a client request's credentials against `gms.api_auth`: a listed API key in the
/// configured header, or a listed basic-auth user. Every candidate is compared, so timing
/// does not tell which one came close.
pub fn check_api_auth(
    auth: &ApiAuth,
    api_key: Option<&str>,
    authorization: Option<&str>,
) -> Result<(), ApiError> {
    let mut ok = false;
    if let Some(key) = api_key {
        for k in &auth.keys {
            ok |= constant_time_eq(key.as_bytes(), k.as_bytes());
        }
    }
    if !auth.users.is_empty() {
        let given = basic_credentials(authorization);
        for (user, password) in &auth.users {
            ok |= constant_time_eq(&given, format!("{user}:{password}").as_bytes());
        }
    }
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("valid API credentials are required"))
    }
}

/// Creates per client IP per second, over every thread of the process.
pub struct CreateLimiter {
    rate: Rate,
    per_second: isize,
}

impl CreateLimiter {
    /// A limiter admitting `per_second` creates per client IP in each one-second window.
    pub fn new(per_second: u64) -> Self {
        CreateLimiter {
            rate: Rate::new_with_estimator_config(Duration::from_secs(1), RATE_HASHES, RATE_SLOTS),
            per_second: isize::try_from(per_second).unwrap_or(isize::MAX),
        }
    }

    /// Counts one create from `ip`; 429 when it is over the limit in the current window.
    pub fn admit(&self, ip: &IpAddr) -> Result<(), ApiError> {
        if self.rate.observe(ip, 1) > self.per_second {
            crate::metrics::RATE_LIMITED.inc();
            return Err(ApiError::TooManyRequests(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"admin:pw", b"admin:pw"));
        assert!(!constant_time_eq(b"admin:pw", b"admin:pX"));
        assert!(!constant_time_eq(b"admin:p", b"admin:pw"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    fn auth() -> ApiAuth {
        ApiAuth {
            header: http::HeaderName::from_static("x-api-key"),
            keys: vec!["0123456789abcdef".into()],
            users: vec![("app".into(), "secret".into())],
        }
    }

    #[test]
    fn api_key_or_basic_user_admits() {
        let a = auth();
        assert!(check_api_auth(&a, Some("0123456789abcdef"), None).is_ok());
        // "app:secret"
        assert!(check_api_auth(&a, None, Some("Basic YXBwOnNlY3JldA==")).is_ok());
        assert_eq!(
            check_api_auth(&a, Some("0123456789abcdeX"), Some("Basic YXBwOnNlY3JldB==")),
            Err(ApiError::Unauthorized("valid API credentials are required"))
        );
        assert!(check_api_auth(&a, None, None).is_err());
    }

    #[test]
    fn the_limiter_admits_up_to_its_rate_per_address() {
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        // A one-second window can roll over between two calls, which admits more: so each try
        // is four calls in a row on a fresh address, and one try in five must see the refusal.
        let mut refused = false;
        for i in 0..5u8 {
            let l = CreateLimiter::new(3);
            let a = IpAddr::from([192, 0, 2, 10 + i]);
            let first: Vec<bool> = (0..3).map(|_| l.admit(&a).is_ok()).collect();
            assert_eq!(first, [true, true, true]);
            assert!(l.admit(&b).is_ok(), "another address has its own count");
            if l.admit(&a) == Err(ApiError::TooManyRequests(1)) {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }
}
