//! The one error type of the API and its one mapping to HTTP status and GMS's error JSON
//! `{"exception": ..., "message": ...}` (contract section 3).

use std::fmt;

use serde::Serialize;

use crate::reply::{Reply, JSON};

/// Everything that can go wrong while answering an API request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400: a missing or malformed parameter or body, or a request the service does not allow.
    BadRequest(String),
    /// 401: admin API without valid credentials.
    Unauthorized,
    /// 404: unknown path, service, id or key (also: not yours).
    NotFound(String),
    /// 405: known path, wrong method.
    MethodNotAllowed,
    /// 408: the request body stopped arriving (`gms.limits.body_timeout_ms`).
    RequestTimeout(String),
    /// 413: body, field, file or field count over the configured limits.
    PayloadTooLarge(String),
    /// 415: a content type the API does not read.
    UnsupportedMediaType(String),
    /// 503: a pool exhausted, the store down, a queue full.
    Unavailable(String),
    /// 502: ORS unreachable or answering badly after all attempts.
    OrsFailed(String),
    /// 504: ORS did not answer in time.
    OrsTimeout(String),
    /// 500: a bug; the message is logged, the client sees a generic text.
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
            ApiError::Unauthorized => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::RequestTimeout(_) => 408,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Unavailable(_) => 503,
            ApiError::OrsFailed(_) => 502,
            ApiError::OrsTimeout(_) => 504,
            ApiError::Internal(_) => 500,
        }
    }

    /// The short exception name clients see.
    pub fn exception(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequestException",
            ApiError::Unauthorized => "UnauthorizedException",
            ApiError::NotFound(_) => "NotFoundException",
            ApiError::MethodNotAllowed => "MethodNotAllowedException",
            ApiError::RequestTimeout(_) => "RequestTimeoutException",
            ApiError::PayloadTooLarge(_) => "PayloadTooLargeException",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaTypeException",
            ApiError::Unavailable(_) => "ServiceUnavailableException",
            ApiError::OrsFailed(_) | ApiError::OrsTimeout(_) => "OrsServiceException",
            ApiError::Internal(_) => "InternalServerException",
        }
    }

    /// The message clients see.
    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::RequestTimeout(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unavailable(m)
            | ApiError::OrsFailed(m)
            | ApiError::OrsTimeout(m) => m,
            ApiError::Unauthorized => "valid admin credentials are required",
            ApiError::MethodNotAllowed => "method not allowed on this path",
            // Internal detail never reaches the client; it is in the log.
            ApiError::Internal(_) => "internal error",
        }
    }

    /// The JSON reply for this error.
    pub fn to_reply(&self) -> Reply {
        let body = ErrorBody {
            exception: self.exception(),
            message: self.message(),
        };
        let reply = Reply::new(
            self.status(),
            JSON,
            serde_json::to_vec(&body).unwrap_or_default(),
        );
        match self {
            ApiError::Unauthorized => reply.with_header("WWW-Authenticate", "Basic realm=\"gms\""),
            _ => reply,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(m) => write!(f, "{} {}: {m}", self.status(), self.exception()),
            _ => write!(
                f,
                "{} {}: {}",
                self.status(),
                self.exception(),
                self.message()
            ),
        }
    }
}

impl std::error::Error for ApiError {}

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
        let r = ApiError::Unauthorized.to_reply();
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(k, _)| *k == "WWW-Authenticate"));
    }
}
