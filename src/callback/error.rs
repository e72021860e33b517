//! The two error types of the callback time logic: a service option that does not parse (a
//! `-t` error, printed under its key path) and a request parameter that does not (a 400).

use std::fmt;

/// A service option with bad syntax or value; `option` is its name within the service, so
/// config validation prints `gms.services.<name>.<option>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The option's name, e.g. `_bh_regular2`.
    pub option: String,
    /// What is wrong, in words for the operator.
    pub message: String,
}

impl OptionError {
    /// An error about `option`.
    pub fn new(option: &str, message: impl Into<String>) -> OptionError {
        OptionError {
            option: option.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.message)
    }
}

impl std::error::Error for OptionError {}

/// A query parameter of an office-hours, capacity or availability request that is malformed
/// or out of range: a 400 (`CallbackExceptionInvalidParameter` on the Callback API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's name, e.g. `number-of-days`.
    pub param: String,
    /// What is wrong; safe to show the client (no library text).
    pub message: String,
}

impl ParamError {
    /// An error about `param`.
    pub fn new(param: &str, message: impl Into<String>) -> ParamError {
        ParamError {
            param: param.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter {}: {}", self.param, self.message)
    }
}

impl std::error::Error for ParamError {}
