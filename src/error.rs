//! The one error type of the API and its one mapping to HTTP status and GMS's error JSON
//! `{"exception": ..., "message": ...}` (contract section 3).
//!
//! Errors that carry internal detail (addresses, library text: [`ApiError::detail`]) show the
//! client a short fixed message and the request id; the detail goes to the log with the same
//! id ([`ApiError::to_reply_for`], called by the plugin's one reply path).

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
    /// 429: the phone number already holds its allowed live reservations (no time to wait
    /// for: one ends when it is matched, deleted or expires).
    TooManyReservations(String),
    /// 431: the request head is over `gms.connections.max_header_bytes`.
    HeaderTooLarge,
    /// 415: a content type the API does not read.
    UnsupportedMediaType(String),
    /// 503: a pool exhausted, a queue full, the node OFFLINE (the message is the client's).
    Unavailable(String),
    /// 503: the store did not answer; the detail (the store's own words) is for the log.
    StoreUnavailable(String),
    /// 502: ORS unreachable or answering badly after all attempts; the detail is for the log.
    OrsFailed(String),
    /// 502: the web tier could not be reached (pass-through); the detail is for the log.
    BackendFailed(String),
    /// 504: ORS did not answer in time; the detail is for the log.
    OrsTimeout(String),
    /// 504: the web tier did not answer in time (pass-through, `gms.backend.timeout_ms`); the
    /// detail is for the log.
    BackendTimeout(String),
    /// 500: a bug; the detail is logged, the client sees a generic text.
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    exception: &'a str,
    message: &'a str,
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::RequestTimeout => 408,
            ApiError::TooManyRequests(_) | ApiError::TooManyReservations(_) => 429,
            ApiError::HeaderTooLarge => 431,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Unavailable(_) | ApiError::StoreUnavailable(_) => 503,
            ApiError::OrsFailed(_) | ApiError::BackendFailed(_) => 502,
            ApiError::OrsTimeout(_) | ApiError::BackendTimeout(_) => 504,
            ApiError::Internal(_) => 500,
        }
    }

    /// The short exception name clients see.
    pub fn exception(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequestException",
            ApiError::Unauthorized(_) => "UnauthorizedException",
            ApiError::NotFound(_) => "NotFoundException",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowedException",
            ApiError::PayloadTooLarge(_) => "PayloadTooLargeException",
            ApiError::RequestTimeout => "RequestTimeoutException",
            ApiError::TooManyRequests(_) | ApiError::TooManyReservations(_) => {
                "TooManyRequestsException"
            }
            ApiError::HeaderTooLarge => "RequestHeaderFieldsTooLargeException",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaTypeException",
            ApiError::Unavailable(_) | ApiError::StoreUnavailable(_) => {
                "ServiceUnavailableException"
            }
            ApiError::OrsFailed(_) | ApiError::OrsTimeout(_) => "OrsServiceException",
            ApiError::BackendFailed(_) => "BadGatewayException",
            ApiError::BackendTimeout(_) => "GatewayTimeoutException",
            ApiError::Internal(_) => "InternalServerException",
        }
    }

    /// The internal detail of an error whose client message is fixed: for the log only.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::StoreUnavailable(d)
            | ApiError::OrsFailed(d)
            | ApiError::OrsTimeout(d)
            | ApiError::BackendFailed(d)
            | ApiError::BackendTimeout(d)
            | ApiError::Internal(d) => Some(d),
            _ => None,
        }
    }

    /// The message clients see.
    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unavailable(m)
            | ApiError::TooManyReservations(m) => m,
            // GMS's own words for every failed ORS request (design notes, GMS's ORS client).
            ApiError::OrsFailed(_) => "ORS request failed: cannot connect to ORS.",
            ApiError::OrsTimeout(_) => "ORS request failed: ORS did not answer in time.",
            ApiError::StoreUnavailable(_) => "storage unavailable",
            ApiError::BackendFailed(_) => "the web tier did not answer",
            ApiError::BackendTimeout(_) => "the web tier did not answer in time",
            ApiError::Unauthorized(m) => m,
            ApiError::MethodNotAllowed(_) => "method not allowed on this path",
            ApiError::RequestTimeout => "the request did not arrive in time",
            ApiError::TooManyRequests(_) => "too many requests from this client; retry later",
            ApiError::HeaderTooLarge => "the request line and headers are over the limit",
            // Internal detail never reaches the client; it is in the log.
            ApiError::Internal(_) => "internal error",
        }
    }

    /// The JSON reply for this error, without a request id.
    pub fn to_reply(&self) -> Reply {
        self.reply_with(self.message())
    }

    /// The reply to request `id`: an error with internal detail logs it with the id, and its
    /// client message names the id, so a report can be matched with the log line.
    pub fn to_reply_for(&self, id: &RequestId) -> Reply {
        let Some(detail) = self.detail() else {
            return self.to_reply();
        };
        if self.status() == 500 {
            log::error!(
                "request {id}: {} {}: {detail}",
                self.status(),
                self.exception()
            );
        } else {
            log::warn!(
                "request {id}: {} {}: {detail}",
                self.status(),
                self.exception()
            );
        }
        self.reply_with(&format!("{} (request id {id})", self.message()))
    }

    fn reply_with(&self, message: &str) -> Reply {
        let body = ErrorBody {
            exception: self.exception(),
            message,
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
            ApiError::TooManyRequests(after) => reply.with_header("Retry-After", after.to_string()),
            // RFC 9110: a 405 lists the methods the path has.
            ApiError::MethodNotAllowed(allow) => reply.with_header("Allow", *allow),
            _ => reply,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.detail().unwrap_or_else(|| self.message());
        write!(f, "{} {}: {text}", self.status(), self.exception())
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::StoreUnavailable(m),
            StoreError::Exhausted(m) => ApiError::Unavailable(m),
            StoreError::PhoneLimit(m) => ApiError::TooManyReservations(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_gms_json_with_their_status() {
        let r = ApiError::NotFound("no such service 'x'".into()).to_reply();
        assert_eq!(r.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["exception"], "NotFoundException");
        assert_eq!(v["message"], "no such service 'x'");
        let r = ApiError::Internal("secret detail".into()).to_reply();
        assert!(!String::from_utf8_lossy(&r.body).contains("secret"));
        let id = RequestId::new();
        let r = ApiError::OrsFailed("cannot connect to 10.0.0.7:7210 (ConnectRefused)".into())
            .to_reply_for(&id);
        assert_eq!(r.status, 502);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let m = v["message"].as_str().unwrap();
        assert!(
            m.starts_with("ORS request failed") && m.contains(&id.to_string()),
            "{m}"
        );
        assert!(!m.contains("10.0.0.7"), "{m}");
        let r = ApiError::Unauthorized("x").to_reply();
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(k, _)| *k == "WWW-Authenticate"));
        let r = ApiError::MethodNotAllowed("GET, POST").to_reply();
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "GET, POST".to_string())));
    }
}
