//! Who may use the API, and how much: optional client credentials (`gms.api_auth`: an API key
//! header or basic auth), the internal operations' credentials or networks
//! (`gms.internal_auth`, `gms.internal_networks`), and the per-client-IP limits: writes
//! (`gms.limits.create_rate_per_ip`), upload bytes (`gms.limits.upload_bytes_per_ip_per_s`)
//! and failed matches (`gms.limits.failed_matches_per_ip`), so one client can neither drain
//! an access-number pool, nor fill the store at full speed, nor guess access codes.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use pingora_limits::rate::Rate;
use pingora_prometheus::prometheus::IntCounter;

use crate::config::{ApiAuth, InternalAccess, InternalAuth, Limits};
use crate::error::ApiError;
use crate::metrics::{RateLimit, RATE_LIMITED};

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

/// Whether a request's credentials are among `auth`'s: a listed API key in its header, or a
/// listed basic-auth user. Every candidate is compared, so timing does not tell which one
/// came close.
fn credentials_match(auth: &ApiAuth, api_key: Option<&str>, authorization: Option<&str>) -> bool {
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
    ok
}

/// Checks a client request's credentials against `gms.api_auth`.
pub fn check_api_auth(
    auth: &ApiAuth,
    api_key: Option<&str>,
    authorization: Option<&str>,
) -> Result<(), ApiError> {
    if credentials_match(auth, api_key, authorization) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("valid API credentials are required"))
    }
}

/// Checks a request to an internal operation (match-interaction, the IVR's call): a peer in
/// `gms.internal_networks`, or valid `gms.internal_auth` credentials (`internal_key`: the
/// value of its key header). With neither configured it is refused, never open, unless the
/// operator said `internal_auth: none`. 403 when only networks are configured and the peer
/// is in none of them (no credential could help), else 401.
pub fn check_internal(
    access: &InternalAccess,
    internal_key: Option<&str>,
    authorization: Option<&str>,
    client_ip: Option<IpAddr>,
) -> Result<(), ApiError> {
    let from_network = client_ip.is_some_and(|ip| access.networks.iter().any(|n| n.contains(&ip)));
    Err(match &access.auth {
        InternalAuth::Open => return Ok(()),
        _ if from_network => return Ok(()),
        InternalAuth::Credentials(auth) if credentials_match(auth, internal_key, authorization) => {
            return Ok(())
        }
        InternalAuth::Credentials(_) => ApiError::Unauthorized(
            "this operation is internal: valid internal credentials are required",
        ),
        InternalAuth::Unset if !access.networks.is_empty() => ApiError::Forbidden(
            "this operation is internal: the request comes from no internal network".into(),
        ),
        InternalAuth::Unset => ApiError::Unauthorized(
            "this operation is internal and no internal credentials are configured",
        ),
    })
}

/// Events per client IP in fixed windows, over every thread of the process (a count-min
/// sketch: addresses that share all their cells are over-counted, never under).
pub struct PerClient {
    rate: Rate,
    limit: isize,
    window: Duration,
    /// Its series of `gms_rate_limited_total{limit}`, resolved once.
    refused: IntCounter,
}

impl PerClient {
    /// At most `limit` events per client IP in each window of `window`.
    pub fn new(limit: u64, window: Duration, kind: RateLimit) -> Self {
        PerClient {
            rate: Rate::new_with_estimator_config(window, RATE_HASHES, RATE_SLOTS),
            limit: isize::try_from(limit).unwrap_or(isize::MAX),
            window,
            refused: RATE_LIMITED.with_label_values(&[kind.label()]),
        }
    }

    /// Counts `n` events from `ip`; 429 when that puts it over the limit in this window.
    pub fn admit(&self, ip: &IpAddr, n: u64) -> Result<(), ApiError> {
        let n = isize::try_from(n).unwrap_or(isize::MAX);
        if self.rate.observe(ip, n) > self.limit {
            return Err(self.refuse(ip));
        }
        Ok(())
    }

    /// 429 when `ip` has already had its `limit` events in this window; counts nothing (the
    /// events are counted after the fact, e.g. failed matches).
    pub fn check(&self, ip: &IpAddr) -> Result<(), ApiError> {
        if self.rate.observe(ip, 0) >= self.limit {
            return Err(self.refuse(ip));
        }
        Ok(())
    }

    /// The 429 with the whole seconds left in the window (at least 1) as `Retry-After`.
    fn refuse(&self, ip: &IpAddr) -> ApiError {
        self.refused.inc();
        let left = self
            .rate
            .rate_with(ip, |c| 1.0 - c.current_interval_fraction);
        let secs = (self.window.as_secs_f64() * left).ceil().max(1.0);
        ApiError::TooManyRequests(secs as u32)
    }
}

/// The per-client-IP limits of `gms.limits` (each `None` when turned off with 0).
pub struct ClientLimits {
    /// Service creates and storage writes per second.
    pub writes: Option<PerClient>,
    /// Request body bytes per second on those routes and on service requests.
    pub upload_bytes: Option<PerClient>,
    /// Failed matches per minute.
    pub failed_matches: Option<PerClient>,
}

impl ClientLimits {
    /// The limits `gms.limits` configures.
    pub fn new(limits: &Limits) -> Self {
        let per = |n: u64, window: Duration, kind| (n > 0).then(|| PerClient::new(n, window, kind));
        ClientLimits {
            writes: per(
                limits.create_rate_per_ip,
                Duration::from_secs(1),
                RateLimit::Writes,
            ),
            upload_bytes: per(
                limits.upload_bytes_per_ip_per_s,
                Duration::from_secs(1),
                RateLimit::UploadBytes,
            ),
            failed_matches: per(
                limits.failed_matches_per_ip,
                Duration::from_secs(60),
                RateLimit::FailedMatches,
            ),
        }
    }

    /// Counts a write (a create or a storage write) from `ip` against the write rate.
    pub fn admit_write(&self, ip: &IpAddr) -> Result<(), ApiError> {
        match &self.writes {
            Some(w) => w.admit(ip, 1),
            None => Ok(()),
        }
    }

    /// Counts `body_bytes` of a request body from `ip` against the upload byte rate; called
    /// for each piece of the body as it arrives, so an upload over the rate is refused before
    /// the rest of it is read.
    pub fn admit_upload(&self, ip: &IpAddr, body_bytes: u64) -> Result<(), ApiError> {
        match &self.upload_bytes {
            Some(u) if body_bytes > 0 => u.admit(ip, body_bytes),
            _ => Ok(()),
        }
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
            let l = PerClient::new(3, Duration::from_secs(1), RateLimit::Writes);
            let a = IpAddr::from([192, 0, 2, 10 + i]);
            let first: Vec<bool> = (0..3).map(|_| l.admit(&a, 1).is_ok()).collect();
            assert_eq!(first, [true, true, true]);
            assert!(l.admit(&b, 1).is_ok(), "another address has its own count");
            assert!(l.check(&b).is_ok(), "a check counts nothing");
            assert!(l.check(&b).is_ok());
            if l.admit(&a, 1) == Err(ApiError::TooManyRequests(1)) {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[test]
    fn retry_after_is_what_is_left_of_a_long_window() {
        let l = PerClient::new(1, Duration::from_secs(60), RateLimit::FailedMatches);
        let a = IpAddr::from([192, 0, 2, 1]);
        assert!(l.check(&a).is_ok());
        l.admit(&a, 1).unwrap();
        assert!(
            l.check(&a).is_err(),
            "the limit is reached: the next one is refused"
        );
        match l.admit(&a, 1) {
            Err(ApiError::TooManyRequests(s)) => assert!((1..=60).contains(&s), "{s}"),
            other => panic!("{other:?}"),
        }
        assert!(
            l.check(&a).is_err(),
            "still over: refused without counting more"
        );
    }

    fn internal(auth: InternalAuth, networks: &[&str]) -> InternalAccess {
        InternalAccess {
            auth,
            networks: networks
                .iter()
                .map(|n| crate::config::parse_network(n).unwrap())
                .collect(),
        }
    }

    #[test]
    fn internal_operations_need_a_credential_or_a_listed_network() {
        let lan: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        let status = |a: &InternalAccess, key, authz, ip| {
            check_internal(a, key, authz, Some(ip)).map_err(|e| e.status())
        };
        // Nothing configured: refused, never open.
        let none = internal(InternalAuth::Unset, &[]);
        assert_eq!(status(&none, None, None, lan), Err(401));
        // Only networks: 403 from elsewhere.
        let nets = internal(InternalAuth::Unset, &["10.0.0.0/8", "::1"]);
        assert_eq!(status(&nets, None, None, lan), Ok(()));
        assert_eq!(status(&nets, None, None, outside), Err(403));
        assert_eq!(status(&nets, None, None, "::1".parse().unwrap()), Ok(()));
        // Credentials, or a network.
        let both = internal(InternalAuth::Credentials(auth()), &["10.0.0.0/8"]);
        assert_eq!(
            status(&both, Some("0123456789abcdef"), None, outside),
            Ok(())
        );
        assert_eq!(
            status(&both, None, Some("Basic YXBwOnNlY3JldA=="), outside),
            Ok(())
        );
        assert_eq!(status(&both, Some("wrong"), None, outside), Err(401));
        assert_eq!(status(&both, None, None, lan), Ok(()));
        // Said open.
        let open = internal(InternalAuth::Open, &[]);
        assert_eq!(status(&open, None, None, outside), Ok(()));
    }
}
