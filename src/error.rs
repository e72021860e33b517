//! The one error type of the API and its one mapping to HTTP status and GMS's error JSON
//! `{"exception": ..., "message": ..., "request_id": ...}` (contract section 3; `request_id`
//! is ours, beside GMS's two fields, so `message` stays GMS's text).
//!
//! Every error reply names its request id (also the `X-Request-Id` header). Errors that carry
//! internal detail (addresses, library text: [`ApiError::detail`]) show the client a short
//! fixed message; the detail goes to the log with the same id ([`ApiError::to_reply_for`], the
//! one place an error becomes a reply).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::reply::{Reply, JSON};
use crate::request_id::RequestId;
use crate::store::StoreError;

/// Everything that can go wrong while answering an API request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400: a missing or malformed parameter or body, or a request the service does not allow.
    BadRequest(String),
    /// 401: admin or client API without valid credentials; which credentials are needed.
    Unauthorized(&'static str),
    /// 403: an internal operation from a network not in `gms.internal_networks`.
    Forbidden(String),
    /// 404: unknown path, service, id or key (also: not yours).
    NotFound(String),
    /// 405: known path, wrong method; the path's methods go in the `Allow` header.
    MethodNotAllowed(&'static str),
    /// 413: body, field, file or field count over the configured limits.
    PayloadTooLarge(String),
    /// 408: the request head or body did not arrive in time (`gms.connections`).
    RequestTimeout,
    /// 429: a client over its rate limit; `Retry-After` says when to come back (seconds).
    TooManyRequests(u32),
    /// 429: the access number had `gms.limits.max_failed_matches` failed matches in its
    /// window; `Retry-After` says when the window ends (seconds).
    NumberLocked(u32),
    /// 429: the phone number already holds its allowed live reservations (no time to wait
    /// for: one ends when it is matched, deleted or expires).
    TooManyReservations(String),
    /// 431: the request head is over `gms.connections.max_header_bytes`.
    HeaderTooLarge,
    /// 415: a content type the API does not read.
    UnsupportedMediaType(String),
    /// 503: a pool exhausted, a queue full, the node OFFLINE: what the client is told.
    Unavailable(String),
    /// 503: the store cannot be reached or answered badly; the store's own words, logged only
    /// (they name addresses and library errors): the client reads "storage unavailable".
    StoreFailed(String),
    /// 507: the store's byte budget (`gms.limits.max_store_bytes`, or Redis's `maxmemory`)
    /// has no room for the write.
    InsufficientStorage(String),
    /// 502: ORS unreachable or answering badly after all attempts.
    OrsFailed {
        /// What the client is told (GMS's words: `ORS request failed: ...`).
        message: String,
        /// Which node, and what the connector said: logged, never sent.
        detail: String,
    },
    /// 502: the web tier could not be reached (pass-through); the detail is for the log.
    BackendFailed(String),
    /// 504: ORS did not answer in time.
    OrsTimeout {
        /// What the client is told.
        message: String,
        /// Which node, and what the connector said: logged, never sent.
        detail: String,
    },
    /// 504: the web tier did not answer in time (pass-through, `gms.backend.timeout_ms`); the
    /// detail is for the log.
    BackendTimeout(String),
    /// 500: a bug; the detail is logged, the client sees a generic text.
    Internal(String),
    /// An error of the Callback Services API with GMS's exception name (`gms-callback.md`
    /// §3.2, §3.4): always with `code` and `phrase`, and `availability` when a desired time
    /// was refused; a 503 carries `Retry-After: 1`.
    Callback(Box<CallbackError>),
}

/// A Callback Services API error (see [`ApiError::Callback`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackError {
    /// The HTTP status.
    pub status: u16,
    /// GMS's exception name, e.g. `CallbackExceptionAvailability`.
    pub exception: &'static str,
    /// What the client reads.
    pub message: String,
    /// Free slots proposed instead of a refused desired time (slot start -> free count).
    pub availability: Option<BTreeMap<String, u32>>,
}

impl ApiError {
    /// A Callback Services API error without proposals.
    pub fn callback(status: u16, exception: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Callback(Box::new(CallbackError {
            status,
            exception,
            message: message.into(),
            availability: None,
        }))
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    exception: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phrase: Option<&'a str>,
    message: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    availability: Option<&'a BTreeMap<String, u32>>,
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::RequestTimeout => 408,
            ApiError::TooManyRequests(_)
            | ApiError::NumberLocked(_)
            | ApiError::TooManyReservations(_) => 429,
            ApiError::HeaderTooLarge => 431,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Unavailable(_) | ApiError::StoreFailed(_) => 503,
            ApiError::InsufficientStorage(_) => 507,
            ApiError::OrsFailed { .. } | ApiError::BackendFailed(_) => 502,
            ApiError::OrsTimeout { .. } | ApiError::BackendTimeout(_) => 504,
            ApiError::Internal(_) => 500,
            ApiError::Callback(e) => e.status,
        }
    }

    /// The short exception name clients see.
    pub fn exception(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequestException",
            ApiError::Unauthorized(_) => "UnauthorizedException",
            ApiError::Forbidden(_) => "ForbiddenException",
            ApiError::NotFound(_) => "NotFoundException",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowedException",
            ApiError::PayloadTooLarge(_) => "PayloadTooLargeException",
            ApiError::RequestTimeout => "RequestTimeoutException",
            ApiError::TooManyRequests(_)
            | ApiError::NumberLocked(_)
            | ApiError::TooManyReservations(_) => "TooManyRequestsException",
            ApiError::HeaderTooLarge => "RequestHeaderFieldsTooLargeException",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaTypeException",
            ApiError::Unavailable(_) | ApiError::StoreFailed(_) => "ServiceUnavailableException",
            ApiError::InsufficientStorage(_) => "InsufficientStorageException",
            ApiError::OrsFailed { .. } | ApiError::OrsTimeout { .. } => "OrsServiceException",
            ApiError::BackendFailed(_) => "BadGatewayException",
            ApiError::BackendTimeout(_) => "GatewayTimeoutException",
            ApiError::Internal(_) => "InternalServerException",
            ApiError::Callback(e) => e.exception,
        }
    }

    /// The message clients see.
    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unavailable(m)
            | ApiError::InsufficientStorage(m)
            | ApiError::TooManyReservations(m) => m,
            ApiError::OrsFailed { message, .. } | ApiError::OrsTimeout { message, .. } => message,
            ApiError::BackendFailed(_) => "the web tier did not answer",
            ApiError::BackendTimeout(_) => "the web tier did not answer in time",
            ApiError::Unauthorized(m) => m,
            ApiError::MethodNotAllowed(_) => "method not allowed on this path",
            ApiError::RequestTimeout => "the request did not arrive in time",
            ApiError::TooManyRequests(_) => "too many requests from this client; retry later",
            ApiError::NumberLocked(_) => {
                "too many failed matches on this access number; retry when its window ends"
            }
            ApiError::HeaderTooLarge => "the request line and headers are over the limit",
            // Internal detail never reaches the client; it is in the log.
            ApiError::StoreFailed(_) => "storage unavailable",
            ApiError::Internal(_) => "internal error",
            ApiError::Callback(e) => &e.message,
        }
    }

    /// What only the log may tell (addresses, library errors), if anything: the reply path
    /// ([`ApiError::to_reply_for`]) logs it with the request id.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(d)
            | ApiError::StoreFailed(d)
            | ApiError::BackendFailed(d)
            | ApiError::BackendTimeout(d) => Some(d),
            ApiError::OrsFailed { detail, .. } | ApiError::OrsTimeout { detail, .. } => {
                Some(detail).filter(|d| !d.is_empty()).map(String::as_str)
            }
            _ => None,
        }
    }

    /// Whether the log has a line for the error, with its request id: every error with internal
    /// detail, and every failed ORS request (an operator looks for those in the log).
    fn is_logged(&self) -> bool {
        self.detail().is_some()
            || matches!(
                self,
                ApiError::OrsFailed { .. } | ApiError::OrsTimeout { .. }
            )
    }

    /// 502 `OrsServiceException`: `message` for the client, `detail` for the log.
    pub fn ors_failed(message: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError::OrsFailed {
            message: message.into(),
            detail: detail.into(),
        }
    }

    /// The JSON reply to request `id`, which names the id (`request_id`), so that a client's
    /// report can be matched with the log; an error with internal detail (or a failed ORS
    /// request) is logged with the id here.
    pub fn to_reply_for(&self, id: &RequestId) -> Reply {
        self.to_reply_coded(id, false)
    }

    /// [`ApiError::to_reply_for`]; `coded`: the error also carries `code` (the status) and
    /// `phrase` (its reason phrase), as every error of the Callback Services API does
    /// (`gms-callback.md` §3.4).
    pub fn to_reply_coded(&self, id: &RequestId, coded: bool) -> Reply {
        if self.is_logged() {
            if self.status() == 500 {
                log::error!("request {id}: {self}");
            } else {
                log::warn!("request {id}: {self}");
            }
        }
        let request_id = id.to_string();
        let (coded, availability) = match self {
            ApiError::Callback(e) => (true, e.availability.as_ref()),
            _ => (coded, None),
        };
        let status = self.status();
        let body = ErrorBody {
            exception: self.exception(),
            code: coded.then_some(status),
            phrase: coded
                .then(|| http::StatusCode::from_u16(status).ok()?.canonical_reason())
                .flatten(),
            message: self.message(),
            request_id: &request_id,
            availability,
        };
        let reply = Reply::new(
            self.status(),
            JSON,
            serde_json::to_vec(&body).unwrap_or_default(),
        );
        match self {
            ApiError::Unauthorized(_) => {
                reply.with_header("WWW-Authenticate", "Basic realm=\"gms\"")
            }
            ApiError::TooManyRequests(after) | ApiError::NumberLocked(after) => {
                reply.with_header("Retry-After", after.to_string())
            }
            // RFC 9110: a 405 lists the methods the path has.
            ApiError::MethodNotAllowed(allow) => reply.with_header("Allow", *allow),
            // GMS's queue and throttle limits (§3.2 step 5): come back in a second.
            ApiError::Callback(e) if e.status == 503 => reply.with_header("Retry-After", "1"),
            _ => reply,
        }
    }
}

/// For logs: status, exception, message, and the detail when there is one.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status(),
            self.exception(),
            self.message()
        )?;
        match self.detail() {
            Some(d) => write!(f, " ({d})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::StoreFailed(m),
            StoreError::Exhausted(m) => ApiError::Unavailable(m),
            StoreError::Full(m) => ApiError::InsufficientStorage(m),
            StoreError::PhoneLimit(m) => ApiError::TooManyReservations(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply's body as JSON.
    fn body(r: &Reply) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn errors_are_gms_json_with_their_status_and_request_id() {
        let id = RequestId::new();
        let r = ApiError::NotFound("no such service 'x'".into()).to_reply_for(&id);
        assert_eq!(r.status, 404);
        assert_eq!(
            body(&r),
            serde_json::json!({
                "exception": "NotFoundException",
                "message": "no such service 'x'",
                "request_id": id.to_string(),
            })
        );
        for e in [
            ApiError::Internal("secret detail".into()),
            ApiError::StoreFailed("redis: secret 10.0.0.7:6379".into()),
            ApiError::ors_failed("ORS request failed: cannot connect to ORS.", "secret"),
            ApiError::BackendFailed("secret 10.0.0.8:80".into()),
        ] {
            let r = e.to_reply_for(&id);
            assert!(!String::from_utf8_lossy(&r.body).contains("secret"), "{e}");
            assert!(
                e.to_string().contains("secret"),
                "the log line keeps it: {e}"
            );
        }
        assert_eq!(
            ApiError::InsufficientStorage("x".into())
                .to_reply_for(&id)
                .status,
            507
        );
        // GMS's text stays as it is; the id is a field of its own.
        let r = ApiError::ors_failed(
            "ORS request failed: cannot connect to ORS.",
            "http://10.0.0.7:7210: ConnectRefused",
        )
        .to_reply_for(&id);
        assert_eq!(r.status, 502);
        let v = body(&r);
        assert_eq!(v["message"], "ORS request failed: cannot connect to ORS.");
        assert_eq!(v["request_id"], id.to_string());
        let r = ApiError::Unauthorized("x").to_reply_for(&id);
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(k, _)| *k == "WWW-Authenticate"));
        let r = ApiError::MethodNotAllowed("GET, POST").to_reply_for(&id);
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "GET, POST".to_string())));
    }

    #[test]
    fn callback_errors_carry_code_phrase_and_proposals() {
        let id = RequestId::new();
        let body = |r: &Reply| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();
        let r = ApiError::NotFound("x".into()).to_reply_coded(&id, true);
        assert_eq!(
            body(&r),
            serde_json::json!({"exception": "NotFoundException", "code": 404, "phrase": "Not Found", "message": "x", "request_id": id.to_string()})
        );
        let mut slots = BTreeMap::new();
        slots.insert("2026-03-03T08:00:00.000Z".to_string(), 5);
        let e = ApiError::Callback(Box::new(CallbackError {
            status: 400,
            exception: "CallbackExceptionAvailability",
            message: "closed".into(),
            availability: Some(slots),
        }));
        // A Callback API error is coded on any route.
        let r = e.to_reply_for(&id);
        assert_eq!(
            &r.body[..],
            format!(r#"{{"exception":"CallbackExceptionAvailability","code":400,"phrase":"Bad Request","message":"closed","request_id":"{id}","availability":{{"2026-03-03T08:00:00.000Z":5}}}}"#).as_bytes()
        );
        let r = ApiError::callback(503, "CallbackExceptionServiceUnavailable", "full")
            .to_reply_for(&id);
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("Retry-After", "1".to_string())));
    }
}
