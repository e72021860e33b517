//! Request parameters after body parsing, and the GMS rules on them (contract section 2):
//! underscore names are service parameters, the rest is user data; the first of a repeated name
//! counts; a configured option beats the request unless it is overwritable; the reserved names
//! are the gateway's alone.

use crate::config::ServiceConfig;
use crate::error::ApiError;
use crate::value::{Fields, Value};

/// Names the gateway always sets itself; a client's values for them are ignored.
pub const RESERVED: [&str; 3] = ["_service_id", "_data_id", "_service_name"];

/// A request's parameters in arrival order (body first, then query string).
#[derive(Debug, Default, Clone)]
pub struct Params {
    entries: Vec<(String, Value)>,
}

impl Params {
    /// Appends a parameter (a later duplicate is kept but never read).
    pub fn push(&mut self, name: String, value: Value) {
        self.entries.push((name, value));
    }

    /// How many parameters arrived.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no parameter arrived.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of `name`, if it is text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                Value::Text(s) => Some(s.as_str()),
                Value::File(_) => None,
            })
    }

    /// Every name once (first value wins), underscore names included: the Storage API's view.
    pub fn into_fields(self) -> Fields {
        let mut out: Fields = Vec::with_capacity(self.entries.len());
        for (k, v) in self.entries {
            if !out.iter().any(|(o, _)| *o == k) {
                out.push((k, v));
            }
        }
        out
    }

    /// The user data of a service request: every non-underscore name once (first wins).
    /// Consumes the parameters: values move into the data instead of being copied.
    pub fn into_user_data(self) -> Fields {
        let mut out: Fields = Vec::with_capacity(self.entries.len());
        for (k, v) in self.entries {
            if !k.starts_with('_') && !out.iter().any(|(o, _)| *o == k) {
                out.push((k, v));
            }
        }
        out
    }

    /// The names of the parameters that carry files.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, v)| matches!(v, Value::File(_)))
            .map(|(k, _)| k.as_str())
    }

    /// Every parameter in arrival order, repeated names included (a query's filters).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Text parameters from pairs (unit tests).
    #[cfg(test)]
    pub fn texts(pairs: &[(&str, &str)]) -> Params {
        let mut p = Params::default();
        for (k, v) in pairs {
            p.push(k.to_string(), Value::Text(v.to_string()));
        }
        p
    }

    /// Rejects underscore parameters that carry files: service parameters are text.
    pub fn check_service_params(&self) -> Result<(), ApiError> {
        match self
            .entries
            .iter()
            .find(|(k, v)| k.starts_with('_') && matches!(v, Value::File(_)))
        {
            Some((k, _)) => Err(ApiError::BadRequest(format!(
                "service parameter '{k}' must be text, not a file"
            ))),
            None => Ok(()),
        }
    }

    /// Underscore parameters of the request, first value of each, reserved names left out.
    pub fn service_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(move |(i, (k, v))| match v {
                Value::Text(s)
                    if k.starts_with('_')
                        && !RESERVED.contains(&k.as_str())
                        && !self.entries[..i].iter().any(|(o, _)| o == k) =>
                {
                    Some((k.as_str(), s.as_str()))
                }
                _ => None,
            })
    }
}

/// A service's options as one request sees them: configured options win over the request's,
/// except overwritable ones the request gives (contract section 2).
pub struct Options<'a> {
    /// The configured service.
    pub service: &'a ServiceConfig,
    /// The request's parameters.
    pub params: &'a Params,
}

impl<'a> Options<'a> {
    /// Pairs a service with a request.
    pub fn new(service: &'a ServiceConfig, params: &'a Params) -> Self {
        Options { service, params }
    }

    /// The effective value of an underscore option.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        if RESERVED.contains(&name) {
            return None;
        }
        let configured = self.service.option(name);
        let requested = self.params.text(name);
        match (configured, requested) {
            (Some(_), Some(r)) if self.service.is_overwritable(name) => Some(r),
            (Some(c), _) => Some(c),
            (None, r) => r,
        }
    }

    /// A required option: 400 naming it when missing or empty.
    pub fn required(&self, name: &str) -> Result<&'a str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::BadRequest(format!("{name} is required"))),
        }
    }

    /// A boolean option (`true`/`false`, any case), `default` when absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::BadRequest(format!(
                "{name} must be true or false, not '{v}'"
            ))),
        }
    }

    /// A whole number in `min..=max`, `default` when absent.
    pub fn number(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::BadRequest(format!(
                    "{name} must be a whole number from {min} to {max}, not '{v}'"
                ))),
            },
        }
    }

    /// Every effective underscore option (configured and requested), reserved names left out,
    /// configured order first: what an ORS service forwards before removing the gateway's own.
    pub fn all(&self) -> Vec<(&'a str, &'a str)> {
        let mut out: Vec<(&'a str, &'a str)> = Vec::new();
        for (k, _) in &self.service.options {
            if let Some(v) = self.get(k) {
                out.push((k.as_str(), v));
            }
        }
        for (k, v) in self.params.service_params() {
            if self.service.option(k).is_none() {
                out.push((k, v));
            }
        }
        out.retain(|(k, _)| !RESERVED.contains(k));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BuiltinKind, ServiceKind};

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::texts(pairs)
    }

    fn service(opts: &[(&str, &str)], over: &[&str]) -> ServiceConfig {
        ServiceConfig {
            name: "s".into(),
            kind: ServiceKind::Builtin(BuiltinKind::RequestInteraction),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overwritable: over.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn first_value_wins_and_user_data_skips_underscores() {
        let p = params(&[("a", "1"), ("_x", "2"), ("a", "3"), ("_x", "4")]);
        assert_eq!(p.text("a"), Some("1"));
        let ud = p.clone().into_user_data();
        assert_eq!(ud, vec![("a".to_string(), Value::Text("1".into()))]);
        let sp: Vec<_> = p.service_params().collect();
        assert_eq!(sp, vec![("_x", "2")]);
    }

    #[test]
    fn configured_option_wins_unless_overwritable() {
        let p = params(&[("_ttl", "5"), ("_foo", "r")]);
        let s = service(&[("_ttl", "30")], &[]);
        assert_eq!(Options::new(&s, &p).get("_ttl"), Some("30"));
        assert_eq!(Options::new(&s, &p).get("_foo"), Some("r"));
        let s = service(&[("_ttl", "30")], &["_ttl"]);
        assert_eq!(Options::new(&s, &p).get("_ttl"), Some("5"));
        let empty = Params::default();
        assert_eq!(Options::new(&s, &empty).get("_ttl"), Some("30"));
    }

    #[test]
    fn reserved_names_are_never_read_from_the_request() {
        let p = params(&[("_data_id", "evil"), ("_service_id", "evil")]);
        let s = service(&[], &["_data_id"]);
        let o = Options::new(&s, &p);
        assert_eq!(o.get("_data_id"), None);
        assert!(o.all().is_empty());
    }

    #[test]
    fn number_and_flag_validation() {
        let p = params(&[("_ttl", "0"), ("_b", "yes"), ("_n", "12")]);
        let s = service(&[], &[]);
        let o = Options::new(&s, &p);
        assert!(o.number("_ttl", 30, 1, 100).is_err());
        assert_eq!(o.number("_n", 4, 1, 12).unwrap(), 12);
        assert_eq!(o.number("_missing", 4, 1, 12).unwrap(), 4);
        assert!(o.flag("_b", false).is_err());
        assert!(!o.flag("_none", false).unwrap());
    }
}
