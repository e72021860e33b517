//! TLS files, checked once when the configuration is read: each HTTPS listener's certificate
//! chain and key, and the CA file that connections to ORS nodes and the web tier trust.
//!
//! Pingora (with rustls) does the TLS itself. The checks here use Pingora's own PEM loaders, so
//! a file that passes is one Pingora can load: its `TlsSettings::build` and connector
//! constructors panic on a file they cannot use, at a moment when no key path can be named.

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

/// Checks that `cert` holds a PEM certificate chain and `key` the private key that matches its
/// first certificate; on failure says which file and what is wrong.
pub fn check_cert_and_key(cert: &str, key: &str) -> Result<(), (TlsFile, String)> {
    readable(cert).map_err(|m| (TlsFile::Cert, m))?;
    readable(key).map_err(|m| (TlsFile::Key, m))?;
    match load_pem_file_ca(&cert.to_string()) {
        Ok(first) if !first.is_empty() => {}
        Ok(_) => return Err((TlsFile::Cert, format!("no PEM certificate in {cert}"))),
        Err(e) => return Err((TlsFile::Cert, format!("{cert}: {}", reason(&e)))),
    }
    match load_pem_file_private_key(&key.to_string()) {
        Ok(der) if !der.is_empty() => {}
        Ok(_) => return Err((TlsFile::Key, format!("no PEM private key in {key}"))),
        Err(e) => return Err((TlsFile::Key, format!("{key}: {}", reason(&e)))),
    }
    let Ok(Some((certs, private_key))) = load_certs_and_key_files(cert, key) else {
        return Err((
            TlsFile::Key,
            format!("{key}: not a private key rustls can use (PKCS#1, PKCS#8 or SEC1)"),
        ));
    };
    install_default_crypto_provider();
    ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map(|_| ())
        .map_err(|e| {
            (
                TlsFile::Key,
                format!("{key} does not fit the certificate in {cert}: {e}"),
            )
        })
}

/// Checks that `path` is a PEM file of one or more CA certificates (and nothing else).
pub fn check_ca_file(path: &str) -> Result<(), String> {
    readable(path)?;
    let mut store = RootCertStore::empty();
    load_ca_file_into_store(path, &mut store).map_err(|e| format!("{path}: {}", reason(&e)))?;
    if store.is_empty() {
        return Err(format!("no PEM certificate in {path}"));
    }
    Ok(())
}

/// Opening the file tells "missing" or "no permission" apart from "not PEM".
fn readable(path: &str) -> Result<(), String> {
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| format!("cannot read {path}: {e}"))
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
