//! The Callback Services API's errors (contract `gms-callback.md` §3.2, §3.4, §4, §5): GMS's
//! exception names and messages, each an [`ApiError::Callback`] (with `code` and `phrase`).

use std::collections::BTreeMap;

use crate::callback::desired::AVAILABILITY_EXCEPTION;
use crate::callback::{ParamError, Refusal};
use crate::error::{ApiError, CallbackError};

/// Unknown callback service, unknown callback id (or another service's).
pub const NOT_FOUND: &str = "CallbackExceptionNotFound";
/// A change the callback's state does not allow.
pub const INVALID_STATE: &str = "CallbackExceptionInvalidState";
/// A parameter the API does not take, or a malformed one.
pub const INVALID_PARAMETER: &str = "CallbackExceptionInvalidParameter";
/// A mandatory lookup key is missing (§3.2 step 2).
pub const MISSING_PARAMETER: &str = "CallbackExceptionMissingParameter";
/// An impossible customer number (§3.2 step 3).
pub const NUMBER: &str = "CallbackExceptionNumber";
/// Queue and throttle limits (§3.2 step 5).
pub const SERVICE_UNAVAILABLE: &str = "CallbackExceptionServiceUnavailable";
/// In-queue duplicates (§3.2 step 5; ours, GMS's name is unknown).
pub const DUPLICATE: &str = "CallbackExceptionDuplicate";

/// 404: no such callback service.
pub fn no_service(name: &str) -> ApiError {
    ApiError::callback(
        404,
        NOT_FOUND,
        format!("Callback service {name} is not configured"),
    )
}

/// 404: no such callback in that service (or not the requester's): the same words for each,
/// so the reply never hints that an id exists.
pub fn no_callback(id: &str) -> ApiError {
    ApiError::callback(404, NOT_FOUND, format!("Callback {id} is not found"))
}

/// 400: the callback is completed (§4, §5).
pub fn completed(id: &str) -> ApiError {
    ApiError::callback(
        400,
        INVALID_STATE,
        format!("Callback {id} is already COMPLETED"),
    )
}

/// 400: a change the state does not allow.
pub fn invalid_state(message: impl Into<String>) -> ApiError {
    ApiError::callback(400, INVALID_STATE, message)
}

/// 400: a bad or unknown parameter.
pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::callback(400, INVALID_PARAMETER, message)
}

/// 400 from a parameter the time logic refused.
pub fn bad_param(e: ParamError) -> ApiError {
    invalid_parameter(e.to_string())
}

/// 503 with GMS's message (§3.2 step 5; `Retry-After: 1`).
pub fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::callback(503, SERVICE_UNAVAILABLE, message)
}

/// 400 `CallbackExceptionAvailability` for a refused desired time, with the free slots
/// proposed instead (§3.4).
pub fn refused_time(refusal: &Refusal, availability: BTreeMap<String, u32>) -> ApiError {
    ApiError::Callback(Box::new(CallbackError {
        status: 400,
        exception: AVAILABILITY_EXCEPTION,
        message: refusal.to_string(),
        availability: Some(availability),
    }))
}
