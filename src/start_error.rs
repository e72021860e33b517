//! Why the gateway (or an embedder's [`crate::GmsApi`]) could not start: the one error type of
//! start-up, each variant saying which part of the configuration or which resource failed.

use std::fmt;

use crate::config::ConfigErrors;
use crate::ors::client::NodeAddrError;
use crate::store::redis::RedisConfigError;

/// A failure before the gateway serves.
#[derive(Debug)]
pub enum StartError {
    /// The configuration file is invalid (every problem, with its key path).
    Config(ConfigErrors),
    /// An ORS node of a service cannot be used: its key path and why.
    OrsNode {
        /// `gms.services.<name>._ors`
        path: String,
        /// What is wrong with the node's URL.
        reason: NodeAddrError,
    },
    /// The Redis store could not be built from `gms.storage` (and `gms.resources`).
    Store(RedisConfigError),
    /// Pingora refused to start (its own configuration, or a listener it cannot build).
    Pingora(Box<pingora::Error>),
    /// A TLS listener's certificate or key cannot be loaded.
    TlsListener {
        /// The listener's `ip:port`.
        addr: String,
        /// Pingora's error.
        error: Box<pingora::Error>,
    },
    /// A web-tier upstream does not resolve.
    Backend {
        /// `gms.backend.upstreams[i]`
        path: String,
        /// The entry as configured.
        entry: String,
        /// The resolver's error.
        error: std::io::Error,
    },
    /// The access log's destination cannot be opened, or its writer thread not started.
    AccessLog {
        /// The configured destination.
        dest: String,
        /// The error.
        error: std::io::Error,
    },
    /// A Pingora setting this program cannot honour: the key and why.
    Unsupported(&'static str),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::OrsNode { path, reason } => write!(f, "{path}: {reason}"),
            StartError::Store(e) => write!(f, "{e}"),
            StartError::Pingora(e) => write!(f, "cannot start Pingora: {e}"),
            StartError::TlsListener { addr, error } => write!(f, "TLS listener {addr}: {error}"),
            StartError::Backend { path, entry, error } => write!(f, "{path}: '{entry}': {error}"),
            StartError::AccessLog { dest, error } => {
                write!(f, "gms.access_log: cannot open '{dest}': {error}")
            }
            StartError::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::OrsNode { reason, .. } => Some(reason),
            StartError::Store(e) => Some(e),
            StartError::Pingora(e) => Some(e.as_ref()),
            StartError::TlsListener { error, .. } => Some(error.as_ref()),
            StartError::Backend { error, .. } | StartError::AccessLog { error, .. } => Some(error),
            StartError::Unsupported(_) => None,
        }
    }
}

impl From<ConfigErrors> for StartError {
    fn from(e: ConfigErrors) -> Self {
        StartError::Config(e)
    }
}
