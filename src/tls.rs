//! TLS files, checked once when the configuration is read: each HTTPS listener's certificate
//! chain and key, and the CA file that connections to ORS nodes and the web tier trust.
//!
//! Pingora (with rustls) does the TLS itself. The checks here use Pingora's own PEM loaders, so
//! a file that passes is one Pingora can load: its `TlsSettings::build` and connector
//! constructors panic on a file they cannot use, at a moment when no key path can be named.

use std::fmt;

use pingora::tls::{
    install_default_crypto_provider, load_ca_file_into_store, load_certs_and_key_files,
    load_pem_file_ca, load_pem_file_private_key, RootCertStore, ServerConfig,
};

/// Which of a listener's two files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The certificate chain.
    Cert,
    /// The private key.
    Key,
}

/// Why a TLS file cannot be used; each names the file.
#[derive(Debug)]
pub enum TlsFileError {
    /// It cannot be opened (missing, no permission).
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// It holds no PEM certificate.
    NoCertificate(String),
    /// It holds no PEM private key.
    NoKey(String),
    /// Pingora's PEM loader refused it.
    Unloadable {
        /// The file.
        path: String,
        /// The loader's words.
        reason: String,
    },
    /// A private key rustls cannot use.
    UnusableKey(String),
    /// The key is not the certificate's.
    Mismatch {
        /// The key file.
        key: String,
        /// The certificate file.
        cert: String,
        /// What rustls said.
        reason: String,
    },
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFileError::Unreadable { path, error } => write!(f, "cannot read {path}: {error}"),
            TlsFileError::NoCertificate(path) => write!(f, "no PEM certificate in {path}"),
            TlsFileError::NoKey(path) => write!(f, "no PEM private key in {path}"),
            TlsFileError::Unloadable { path, reason } => write!(f, "{path}: {reason}"),
            TlsFileError::UnusableKey(path) => write!(
                f,
                "{path}: not a private key rustls can use (PKCS#1, PKCS#8 or SEC1)"
            ),
            TlsFileError::Mismatch { key, cert, reason } => {
                write!(f, "{key} does not fit the certificate in {cert}: {reason}")
            }
        }
    }
}

impl std::error::Error for TlsFileError {}

/// Checks that `cert` holds a PEM certificate chain and `key` the private key that matches its
/// first certificate; on failure says which file and what is wrong.
pub fn check_cert_and_key(cert: &str, key: &str) -> Result<(), (TlsFile, TlsFileError)> {
    readable(cert).map_err(|e| (TlsFile::Cert, e))?;
    readable(key).map_err(|e| (TlsFile::Key, e))?;
    match load_pem_file_ca(&cert.to_string()) {
        Ok(first) if !first.is_empty() => {}
        Ok(_) => return Err((TlsFile::Cert, TlsFileError::NoCertificate(cert.into()))),
        Err(e) => return Err((TlsFile::Cert, unloadable(cert, &e))),
    }
    match load_pem_file_private_key(&key.to_string()) {
        Ok(der) if !der.is_empty() => {}
        Ok(_) => return Err((TlsFile::Key, TlsFileError::NoKey(key.into()))),
        Err(e) => return Err((TlsFile::Key, unloadable(key, &e))),
    }
    let Ok(Some((certs, private_key))) = load_certs_and_key_files(cert, key) else {
        return Err((TlsFile::Key, TlsFileError::UnusableKey(key.into())));
    };
    install_default_crypto_provider();
    ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map(|_| ())
        .map_err(|e| {
            let mismatch = TlsFileError::Mismatch {
                key: key.into(),
                cert: cert.into(),
                reason: e.to_string(),
            };
            (TlsFile::Key, mismatch)
        })
}

/// Checks that `path` is a PEM file of one or more CA certificates (and nothing else).
pub fn check_ca_file(path: &str) -> Result<(), TlsFileError> {
    readable(path)?;
    let mut store = RootCertStore::empty();
    load_ca_file_into_store(path, &mut store).map_err(|e| unloadable(path, &e))?;
    if store.is_empty() {
        return Err(TlsFileError::NoCertificate(path.into()));
    }
    Ok(())
}

/// Opening the file tells "missing" or "no permission" apart from "not PEM".
fn readable(path: &str) -> Result<(), TlsFileError> {
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|error| TlsFileError::Unreadable {
            path: path.into(),
            error,
        })
}

/// Pingora's loader refused `path`.
fn unloadable(path: &str, e: &pingora::Error) -> TlsFileError {
    TlsFileError::Unloadable {
        path: path.into(),
        reason: reason(e),
    }
}

/// Pingora's error text without its type prefix: the context and the cause.
fn reason(e: &pingora::Error) -> String {
    match (&e.context, &e.cause) {
        (Some(c), Some(cause)) => format!("{} ({cause})", c.as_str()),
        (Some(c), None) => c.as_str().to_string(),
        (None, Some(cause)) => cause.to_string(),
        (None, None) => e.etype().as_str().to_string(),
    }
}
