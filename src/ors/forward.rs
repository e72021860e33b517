//! What the gateway sends ORS and how (contract 6.1): the effective underscore parameters less
//! the gateway's own options, plus `_service_id`, `_data_id`, `_service_name`; in a
//! form-urlencoded body, or as `X-GMS-<name>` headers with `_ors_forward: headers`.

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use uuid::Uuid;

use crate::config::{ForwardMode, ServiceConfig, GATEWAY_OPTIONS};
use crate::error::ApiError;
use crate::params::{Options, Params};
use crate::store::ServiceRecord;

/// Everything but RFC 3986 unreserved characters is escaped (so space is `%20`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a value the way ORS reads it, in bodies and headers alike.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Which underscore parameters a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Session start (and the start request): configured options and the request's.
    Start,
    /// A later request: the request's own parameters (configured values still win).
    Request,
}

/// The parameters for ORS, in order, reserved ones last.
pub fn parameters(
    svc: &ServiceConfig,
    params: &Params,
    record: &ServiceRecord,
    scope: Scope,
) -> Vec<(String, String)> {
    parameters_of(svc, params, record.id, record.data_id, scope)
}

/// [`parameters`] for the service `id` with its user data under `data_id` (a service record,
/// or a callback).
pub fn parameters_of(
    svc: &ServiceConfig,
    params: &Params,
    id: Uuid,
    data_id: Uuid,
    scope: Scope,
) -> Vec<(String, String)> {
    let opts = Options::new(svc, params);
    let mut out: Vec<(String, String)> = match scope {
        Scope::Start => opts
            .all()
            .into_iter()
            .filter(|(k, _)| !GATEWAY_OPTIONS.contains(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Scope::Request => params
            .service_params()
            .filter(|(k, _)| !GATEWAY_OPTIONS.contains(k))
            .filter_map(|(k, _)| opts.get(k).map(|v| (k.to_string(), v.to_string())))
            .collect(),
    };
    push_ids(&mut out, id, data_id, &svc.name);
    out
}

/// Appends what the gateway always sets itself (contract 6.1): `_service_id`, `_data_id`,
/// `_service_name`.
pub fn push_ids(out: &mut Vec<(String, String)>, id: Uuid, data_id: Uuid, service: &str) {
    out.push(("_service_id".into(), id.hyphenated().to_string()));
    out.push(("_data_id".into(), data_id.hyphenated().to_string()));
    out.push(("_service_name".into(), service.to_string()));
}

/// A message body and headers for ORS.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// Form-urlencoded body.
    pub body: Bytes,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Bytes of the body's leading `src=...` (and its `&`): 0 without `src`.
    src_len: usize,
}

impl Payload {
    /// Builds a payload; `src` (session start only) always travels in the body.
    pub fn new(
        mode: ForwardMode,
        src: Option<&str>,
        params: &[(String, String)],
    ) -> Result<Payload, ApiError> {
        fn push(body: &mut String, k: &str, v: &str) {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(&encode(k));
            body.push('=');
            body.push_str(&encode(v));
        }
        let mut body = String::new();
        if let Some(src) = src {
            push(&mut body, "src", src);
        }
        let mut src_len = body.len();
        let mut headers = Vec::new();
        match mode {
            ForwardMode::Params => params.iter().for_each(|(k, v)| push(&mut body, k, v)),
            ForwardMode::Headers => {
                for (k, v) in params {
                    let name = format!("X-GMS-{}", k.strip_prefix('_').unwrap_or(k));
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(ApiError::BadRequest(format!(
                            "parameter name '{k}' cannot travel as an HTTP header"
                        )));
                    }
                    headers.push((name, encode(v)));
                }
            }
        }
        if src_len > 0 && body.len() > src_len {
            src_len += 1; // the '&' before the first parameter
        }
        Ok(Payload {
            body: Bytes::from(body),
            headers,
            src_len,
        })
    }

    /// The same parameters without `src`: the start request after a session start carries
    /// them again, and slicing the start's body saves encoding them twice.
    pub fn without_src(&self) -> Payload {
        Payload {
            body: self.body.slice(self.src_len..),
            headers: self.headers.clone(),
            src_len: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BuiltinKind, ServiceKind};
    use crate::value::Value;
    use std::time::Duration;
    use uuid::Uuid;

    fn svc() -> ServiceConfig {
        ServiceConfig {
            name: "request-inbound-poll".into(),
            kind: ServiceKind::Builtin(BuiltinKind::RequestInteraction),
            options: vec![
                ("_type".into(), "ors".into()),
                ("_service".into(), "http://x/p.scxml".into()),
                ("_foo".into(), "configured".into()),
                ("_bar".into(), "configured".into()),
            ],
            overwritable: vec!["_bar".into()],
        }
    }

    fn record() -> ServiceRecord {
        ServiceRecord {
            id: Uuid::nil(),
            service: "request-inbound-poll".into(),
            data_id: Uuid::nil(),
            owner: None,
            service_ttl: Duration::from_secs(1),
            data_ttl: Duration::from_secs(1),
            ors: None,
            reservations: vec![],
        }
    }

    #[test]
    fn start_sends_effective_options_but_not_the_gateways_own() {
        let mut p = Params::default();
        for (k, v) in [
            ("_foo", "req"),
            ("_bar", "req"),
            ("_x", "1"),
            ("_service_id", "evil"),
            ("name", "user"),
        ] {
            p.push(k.into(), Value::Text(v.into()));
        }
        // The request itself sends `_foo`, `_bar`, `_x`, so both scopes list the same names,
        // then the gateway's own three; the client's `_service_id` is not among them.
        const EXPECTED: [&str; 6] = [
            "_foo",
            "_bar",
            "_x",
            "_service_id",
            "_data_id",
            "_service_name",
        ];
        let got = parameters(&svc(), &p, &record(), Scope::Start);
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, EXPECTED);
        assert_eq!(got[0].1, "configured");
        assert_eq!(got[1].1, "req");
        assert_eq!(got[3].1, Uuid::nil().to_string());
        let req = parameters(&svc(), &p, &record(), Scope::Request);
        let names: Vec<&str> = req.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, EXPECTED);
    }

    #[test]
    fn payloads_in_body_or_headers() {
        let params = vec![("_a".to_string(), "x y/é".to_string())];
        let p = Payload::new(ForwardMode::Params, Some("http://s/a.scxml"), &params).unwrap();
        assert_eq!(
            &p.body[..],
            b"src=http%3A%2F%2Fs%2Fa.scxml&_a=x%20y%2F%C3%A9"
        );
        assert_eq!(&p.without_src().body[..], b"_a=x%20y%2F%C3%A9");
        let only_src = Payload::new(ForwardMode::Params, Some("u"), &[]).unwrap();
        assert_eq!(&only_src.without_src().body[..], b"");
        let h = Payload::new(ForwardMode::Headers, Some("u"), &params).unwrap();
        assert_eq!(&h.body[..], b"src=u");
        assert_eq!(&h.without_src().body[..], b"");
        assert_eq!(h.without_src().headers, h.headers);
        assert_eq!(
            h.headers,
            vec![("X-GMS-a".to_string(), "x%20y%2F%C3%A9".to_string())]
        );
        let bad = vec![("_a b".to_string(), "v".to_string())];
        assert!(Payload::new(ForwardMode::Headers, None, &bad).is_err());
    }
}
