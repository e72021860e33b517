//! Validation of who may call what: client credentials (`gms.api_auth`), the internal
//! operations' credentials and networks (`gms.internal_auth`, `gms.internal_networks`) and the
//! proxies whose forwarding headers are believed (`gms.trusted_proxies`).

use super::api::*;
use super::file::{ApiAuthFile, InternalAuthFile};
use super::validate::Validator;

impl Validator {
    /// Credentials as `gms.api_auth` writes them, at `path`, keys in `default_header` unless
    /// the section names another header.
    pub(super) fn api_auth(
        &mut self,
        path: &str,
        default_header: &'static str,
        f: ApiAuthFile,
    ) -> ApiAuth {
        let name = f.header.unwrap_or_else(|| default_header.into());
        let header = http::HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| {
            self.err(
                format!("{path}.header"),
                format!("'{name}' is not a header name"),
            );
            http::HeaderName::from_static(default_header)
        });
        if f.keys.is_empty() && f.users.is_empty() {
            self.err(path, "needs at least one of keys or users");
        }
        for (i, k) in f.keys.iter().enumerate() {
            if k.len() < 16 {
                self.err(
                    format!("{path}.keys[{i}]"),
                    "an API key must be at least 16 characters",
                );
            }
        }
        for (u, p) in &f.users {
            if u.is_empty() || u.contains(':') || p.is_empty() {
                self.err(
                    format!("{path}.users.{u}"),
                    "user names must be non-empty without ':', passwords non-empty",
                );
            }
        }
        ApiAuth {
            header,
            keys: f.keys,
            users: f.users.into_iter().collect(),
        }
    }

    /// `gms.internal_auth` and `gms.internal_networks`.
    pub(super) fn internal(
        &mut self,
        auth: Option<InternalAuthFile>,
        networks: Vec<String>,
    ) -> InternalAccess {
        let auth = match auth {
            None => InternalAuth::Unset,
            Some(InternalAuthFile::Word(w)) if w == "none" => {
                if !networks.is_empty() {
                    self.err(
                        "gms.internal_networks",
                        "has no effect with gms.internal_auth: none (open to anyone); remove one of them",
                    );
                }
                InternalAuth::Open
            }
            Some(InternalAuthFile::Word(w)) => {
                self.err(
                    "gms.internal_auth",
                    format!("'{w}' is neither none nor a map of header, keys and users"),
                );
                InternalAuth::Unset
            }
            // Its own header by default: an app's `gms.api_auth` key is never taken for an
            // internal one, nor the other way round.
            Some(InternalAuthFile::Credentials(a)) => InternalAuth::Credentials(self.api_auth(
                "gms.internal_auth",
                DEFAULT_INTERNAL_KEY_HEADER,
                a,
            )),
        };
        let networks = self.networks("gms.internal_networks", &networks);
        InternalAccess { auth, networks }
    }

    /// A list of addresses or CIDR blocks at `path` (`gms.trusted_proxies`,
    /// `gms.internal_networks`), each bad entry reported by its index.
    pub(super) fn networks(&mut self, path: &str, list: &[String]) -> Vec<ipnet::IpNet> {
        let mut out = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            match parse_network(s) {
                Some(net) => out.push(net),
                None => self.err(
                    format!("{path}[{i}]"),
                    format!("'{s}' is not an IP address or CIDR block (e.g. 10.0.0.0/8)"),
                ),
            }
        }
        out
    }
}
