//! The gateway's configuration: the `gms:` section of the YAML file (contract section 9).
//!
//! Two layers, as in River: serde structs that mirror the file (`file.rs`), then the validated,
//! typed configuration the program uses, in two parts: [`ApiConfig`] (`api.rs`), what the
//! plugin [`crate::GmsApi`] is built from, and [`EdgeConfig`] (`edge.rs`), the binary's
//! listeners, connection limits, web tier and logs. [`GatewayConfig`] is both, for the binary,
//! which requires `gms.listen`; the API part alone does not. Validation (`validate.rs`,
//! `access.rs`, `services.rs`) collects every problem with its key path, so `-t` reports them
//! all at once.

mod access;
mod api;
mod callback;
mod callback_services;
mod edge;
mod file;
mod services;
mod validate;

use std::fmt;

pub use api::*;
pub use callback::{CallbackService, CallbackSettings, CALLBACK_OPTIONS};
pub use edge::*;

use file::{GmsFile, RootFile};
use validate::Validator;

/// One problem in the configuration: where and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Key path, e.g. `gms.services.poll._ors`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one file, ready to print.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The file's path.
    pub file: String,
    /// The problems, in the file's order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", self.file, e)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The binary's whole configuration: the API part for the plugin, the edge around it.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// What [`crate::GmsApi`] is built from.
    pub api: ApiConfig,
    /// Listeners, connection limits, web tier, metrics listener, access log.
    pub edge: EdgeConfig,
}

impl GatewayConfig {
    /// Reads and validates the `gms:` section of a YAML file, edge included.
    pub fn load(path: &str) -> Result<GatewayConfig, ConfigErrors> {
        load_with(path, GatewayConfig::from_yaml)
    }

    /// Parses and validates YAML text (the whole file, Pingora keys included).
    pub fn from_yaml(text: &str) -> Result<GatewayConfig, Vec<ConfigError>> {
        let (mut gms, ca_file, mut v) = parse(text)?;
        let api = v.api(&mut gms, ca_file);
        let edge = v.edge(gms);
        v.finish(GatewayConfig { api, edge })
    }

    /// What `-t` and start-up warn about (see [`ApiConfig::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        self.api.warnings()
    }

    /// The health endpoint as a client on this host reaches it (see
    /// [`EdgeConfig::local_health_url`]), under the first API root.
    pub fn local_health_url(&self) -> String {
        let root = self.api.prefixes.first().map_or("", String::as_str);
        self.edge.local_health_url(root)
    }
}

impl ApiConfig {
    /// Reads and validates the API part of the `gms:` section of a YAML file (edge keys are
    /// checked when present, never required).
    pub fn load(path: &str) -> Result<ApiConfig, ConfigErrors> {
        load_with(path, ApiConfig::from_yaml)
    }

    /// Parses and validates the API part of YAML text.
    pub fn from_yaml(text: &str) -> Result<ApiConfig, Vec<ConfigError>> {
        let (mut gms, ca_file, mut v) = parse(text)?;
        let api = v.api(&mut gms, ca_file);
        v.finish(api)
    }
}

impl Validator {
    /// The configuration, or every problem found on the way to it.
    fn finish<T>(self, config: T) -> Result<T, Vec<ConfigError>> {
        if self.errors.is_empty() {
            Ok(config)
        } else {
            Err(self.errors)
        }
    }
}

/// Reads `path` and hands its text to `from_yaml`, naming the file in every error.
fn load_with<T>(
    path: &str,
    from_yaml: impl FnOnce(&str) -> Result<T, Vec<ConfigError>>,
) -> Result<T, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.to_string(),
        errors: vec![ConfigError {
            path: "(file)".into(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    from_yaml(&text).map_err(|errors| ConfigErrors {
        file: path.to_string(),
        errors,
    })
}

/// Layer 1: the file's `gms:` section, the top-level `ca_file`, and a validator that already
/// holds the unknown keys under `gms:`.
fn parse(text: &str) -> Result<(GmsFile, Option<String>, Validator), Vec<ConfigError>> {
    let mut unknown: Vec<String> = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    // Unknown keys are collected rather than fatal, so one run reports them with every other
    // error; only keys under `gms:` count (the rest belong to Pingora).
    let mut note_unknown = |path: serde_ignored::Path<'_>| {
        let p = key_path(&path);
        if p == "gms" || p.starts_with("gms.") {
            unknown.push(p);
        }
    };
    let de = serde_ignored::Deserializer::new(de, &mut note_unknown);
    let root: RootFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        vec![ConfigError {
            path: if path == "." {
                "(top level)".into()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }]
    })?;
    let Some(gms) = root.gms else {
        return Err(vec![ConfigError {
            path: "gms".into(),
            message: "missing: the gateway's section is required".into(),
        }]);
    };
    let mut v = Validator::default();
    for path in unknown {
        v.err(
            path,
            "unknown key (check its spelling against the configuration reference)",
        );
    }
    Ok((gms, root.ca_file, v))
}

/// A serde_ignored path written like the validator's: `a.b[2].c`, without the Option levels
/// (`?`) that mean nothing to a user.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version: 1
threads: 2
gms:
  listen: ["127.0.0.1:8080"]
  resources:
    DNIS: ["8003449999", "8003449998"]
  server:
    _ors: "http://127.0.0.1:7210, http://127.0.0.1:7211/"
  services:
    request-interaction: {_type: builtin, _service: request-interaction, _ttl: 30}
    request-inbound-poll:
      _type: ors
      _service: "http://scxml.example.com/poll.scxml"
      _status_ttl_ms: 500
      _overwritable_options: "_ttl, _foo"
"#;

    #[test]
    fn the_local_health_url_uses_loopback_for_a_wildcard_listen_address() {
        let url = |listen: &str| {
            let y = format!("gms:\n  listen: ['{listen}']\n  prefixes: ['/api/1']\n");
            GatewayConfig::from_yaml(&y).unwrap().local_health_url()
        };
        assert_eq!(
            url("10.1.2.3:8080"),
            "http://10.1.2.3:8080/api/1/admin/node/health"
        );
        assert_eq!(
            url("0.0.0.0:8080"),
            "http://127.0.0.1:8080/api/1/admin/node/health"
        );
        assert_eq!(url("[::]:81"), "http://[::1]:81/api/1/admin/node/health");
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = GatewayConfig::from_yaml(GOOD).unwrap();
        assert_eq!(c.api.prefixes, vec!["/genesys/1", "/GMS-web/gms/1"]);
        assert_eq!(c.api.limits, Limits::default());
        assert_eq!(c.api.storage, StorageKind::Memory);
        assert_eq!(
            &*c.api.resources["DNIS"],
            &["8003449999".to_string(), "8003449998".into()]
        );
        let ri = &c.api.services["request-interaction"];
        assert_eq!(
            ri.kind,
            ServiceKind::Builtin(BuiltinKind::RequestInteraction)
        );
        assert_eq!(ri.option("_ttl"), Some("30"));
        let poll = &c.api.services["request-inbound-poll"];
        let ServiceKind::Ors(o) = &poll.kind else {
            panic!("not ors")
        };
        assert_eq!(
            o.nodes,
            vec!["http://127.0.0.1:7210", "http://127.0.0.1:7211"]
        );
        assert_eq!(o.status_ttl_ms, 500);
        assert_eq!(o.start_request, "gms.start");
        assert_eq!(poll.overwritable, vec!["_ttl", "_foo"]);
        assert!(poll.accepts_requests());
        assert!(!ri.accepts_requests());
    }

    #[test]
    fn unknown_key_is_an_error_with_its_path() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  limits: {max_bodyy_bytes: 5}\n";
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "gms.limits.max_bodyy_bytes", "{:?}", e);
        assert!(e[0].message.contains("unknown key"), "{:?}", e);
    }

    #[test]
    fn every_semantic_error_is_reported() {
        let y = r#"
gms:
  listen: ["nope"]
  resources: {DNIS: []}
  services:
    a: {_type: ors, _service: "http://x/a.scxml", _ors: "htp:/x"}
    b: {_type: magic}
    c: {_type: builtin, _service: request-interaction, _resource_group: NOPE, _ttl: 0}
"#;
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "gms.listen[0]",
            "gms.resources.DNIS",
            "gms.services.a._ors",
            "gms.services.b._type",
            "gms.services.c._resource_group",
            "gms.services.c._ttl",
        ] {
            assert!(paths.contains(&p), "{p} not in {paths:?}");
        }
        let ors = e.iter().find(|e| e.path == "gms.services.a._ors").unwrap();
        assert_eq!(ors.message, "'htp:/x' is not an http(s) URL");
    }

    #[test]
    fn test_page_is_off_unless_set_and_must_be_a_boolean() {
        let base = "gms:\n  listen: ['127.0.0.1:1']\n";
        assert!(!GatewayConfig::from_yaml(base).unwrap().api.test_page);
        assert!(
            GatewayConfig::from_yaml(&format!("{base}  test_page: true\n"))
                .unwrap()
                .api
                .test_page
        );
        let e = GatewayConfig::from_yaml(&format!("{base}  test_page: sometimes\n")).unwrap_err();
        assert_eq!(e[0].path, "gms.test_page", "{e:?}");
    }

    #[test]
    fn max_ttl_is_bounded() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  limits: {max_ttl: 99999999999999}\n";
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        assert_eq!(e[0].path, "gms.limits.max_ttl");
    }

    #[test]
    fn a_number_belongs_to_one_group() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  resources: {A: ['1'], B: ['1']}\n";
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        assert_eq!(e[0].path, "gms.resources.B[0]");
    }

    #[test]
    fn shipped_default_config_is_valid() {
        let text = include_str!("../../conf/gateway.yaml");
        let c = GatewayConfig::from_yaml(text).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(c.api.services.contains_key("request-interaction"));
        assert!(c.api.resources.contains_key("DNIS"));
    }

    #[test]
    fn redis_storage_parses_with_prefix_and_timeout() {
        let base = "gms:\n  listen: ['127.0.0.1:1']\n  storage: ";
        let c = GatewayConfig::from_yaml(&format!(
            "{base}{{backend: redis, url: 'redis://127.0.0.1:6379/0'}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.api.storage,
            StorageKind::Redis {
                url: "redis://127.0.0.1:6379/0".into(),
                prefix: "gms:".into(),
                timeout_ms: DEFAULT_STORAGE_TIMEOUT_MS
            }
        );
        let c = GatewayConfig::from_yaml(&format!(
            "{base}{{backend: redis, cluster: ['redis://127.0.0.1:7000'], prefix: 'a:', timeout_ms: 250}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.api.storage,
            StorageKind::RedisCluster {
                nodes: vec!["redis://127.0.0.1:7000".into()],
                prefix: "a:".into(),
                timeout_ms: 250
            }
        );
        let e = GatewayConfig::from_yaml(&format!(
            "{base}{{backend: redis, cluster: ['127.0.0.1:7000'], timeout_ms: 0}}\n"
        ))
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.storage.timeout_ms", "gms.storage.cluster[0]"]);
        let e = GatewayConfig::from_yaml(&format!(
            "{base}{{backend: redis, url: 'redis://h', prefix: 'a{{b}}'}}\n  resources: {{'x{{y': ['1']}}\n"
        ))
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.storage.prefix", "gms.resources.x{y"]);
    }

    #[test]
    fn backend_upstreams_parse_with_their_scheme() {
        let u = |s: &str| Upstream::parse(s).map(|u| (u.addr, u.tls));
        assert_eq!(u("10.0.0.5:8080"), Ok(("10.0.0.5:8080".into(), None)));
        assert_eq!(
            u("http://web.internal"),
            Ok(("web.internal:80".into(), None))
        );
        assert_eq!(
            u("https://web.internal/"),
            Ok(("web.internal:443".into(), Some("web.internal".into())))
        );
        assert_eq!(
            u("https://[::1]:8443"),
            Ok(("[::1]:8443".into(), Some("::1".into())))
        );
        for bad in [
            "https://",
            "https://u@h:1",
            "https://h:1/path",
            "http://h:1?q",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_listen_stands_in_for_listen_and_reports_by_index() {
        let y = "gms:\n  tls_listen: [{addr: '127.0.0.1:1', cert: /nonexistent/c.pem, key: /nonexistent/k.pem, h3: true}]\n";
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.tls_listen[0].h3", "gms.tls_listen[0].cert"]);
        assert!(
            e[1].message.starts_with("cannot read /nonexistent/c.pem"),
            "{e:?}"
        );
    }

    #[test]
    fn http_urls() {
        assert!(is_http_url("http://127.0.0.1:7210"));
        assert!(is_http_url("https://ors.example.com/x"));
        assert!(!is_http_url("htp:/x"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("ftp://x"));
    }

    #[test]
    fn options_that_aim_the_gateway_are_never_overwritable() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  services:\n    a: {_type: ors, _service: 'http://x/a.scxml', _ors: 'http://127.0.0.1:1', _overwritable_options: '_ttl,_ors'}\n";
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "gms.services.a._overwritable_options");
        assert!(e[0].message.starts_with("'_ors'"), "{e:?}");
    }

    #[test]
    fn the_api_part_needs_no_listener_and_the_binary_does() {
        let y = "gms:\n  services:\n    ri: {_type: builtin, _service: request-interaction}\n";
        let api = ApiConfig::from_yaml(y).unwrap();
        assert!(api.services.contains_key("ri"));
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        assert_eq!(e[0].path, "gms.listen", "{e:?}");
    }

    #[test]
    fn access_code_prefixes_are_digits_or_a_range_of_first_digits() {
        let space = |p: &str, len| CodePrefix::parse(p).unwrap().space(len);
        let s = space("9", 4).unwrap();
        assert_eq!((s.len, s.low, s.count), (4, 9000, 1000));
        let s = space("7-9", 4).unwrap();
        assert_eq!((s.low, s.count), (7000, 3000));
        let s = space("05", 3).unwrap();
        assert_eq!((s.low, s.count), (50, 10));
        assert_eq!(space("999999", 4), None);
        assert_eq!(space("9", 1), None);
        for bad in ["", "a", "9-7", "1-22", "7-", "-7", "1 2", "123456789012"] {
            assert!(CodePrefix::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(CodePrefix::parse("7-9").unwrap().to_string(), "7-9");
    }

    #[test]
    fn a_prefix_must_leave_every_reserving_service_a_digit() {
        let y = |prefix: &str| {
            format!(
                "gms:\n  listen: ['127.0.0.1:1']\n  server: {{access_code_prefix: '{prefix}'}}\n  services:\n    ri: {{_type: builtin, _service: request-interaction}}\n    ra: {{_type: builtin, _service: request-access, _access_code_length: ''}}\n    short: {{_type: builtin, _service: request-interaction, _access_code_length: 2}}\n    m: {{_type: builtin, _service: match-interaction}}\n"
            )
        };
        let c = GatewayConfig::from_yaml(&y("9")).unwrap();
        assert_eq!(
            c.api.access_code_prefix,
            Some(CodePrefix::Digits("9".into()))
        );
        // The prefix is the gateway's, not an option passed to services.
        assert!(c.api.services["ri"].option("access_code_prefix").is_none());
        let e = GatewayConfig::from_yaml(&y("999")).unwrap_err();
        let msgs: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].starts_with(
                "gms.server.access_code_prefix: '999' leaves no free digit in the 2-digit"
            ),
            "{msgs:?}"
        );
        let e = GatewayConfig::from_yaml(&y("9999")).unwrap_err();
        assert_eq!(e.len(), 3, "ra and ri (4 digits) and short: {e:?}");
        let e = GatewayConfig::from_yaml(&y("x")).unwrap_err();
        assert_eq!(e[0].path, "gms.server.access_code_prefix");
        // Empty: no prefix.
        assert_eq!(
            GatewayConfig::from_yaml(&y(""))
                .unwrap()
                .api
                .access_code_prefix,
            None
        );
    }

    #[test]
    fn empty_options_are_defaults_and_gms_built_in_options_are_checked() {
        let base = "gms:\n  listen: ['127.0.0.1:1']\n  services:\n";
        let ok = format!("{base}    ra: {{_type: builtin, _service: request-access, _access_code_length: '', _ttl: '', _provide_code: '', _resource_group: '', _allocation: '', _return_pool_health: 'false', _require_access_code: 'TRUE', _booking_expiration_timeout: 1800}}\n    o: {{_type: ors, _service: 'http://x/a.scxml', _ors: 'http://127.0.0.1:1', _ors_lb_strategy: '', _ors_forward: '', _status_ttl_ms: '', _overwritable_options: ''}}\n");
        GatewayConfig::from_yaml(&ok).unwrap_or_else(|e| panic!("{e:?}"));
        let bad = format!("{base}    ra: {{_type: builtin, _service: request-access, _return_pool_health: yes, _booking_expiration_timeout: 4}}\n    callback: {{_type: builtin, _service: request-interaction}}\n");
        let e = GatewayConfig::from_yaml(&bad).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "gms.services.callback",
                "gms.services.ra._return_pool_health",
                "gms.services.ra._booking_expiration_timeout"
            ],
            "{e:?}"
        );
    }

    #[test]
    fn a_configured_phone_number_is_a_warning() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  services:\n    request-access: {_type: builtin, _service: request-access, _phone_number: undefined}\n";
        let c = GatewayConfig::from_yaml(y).unwrap();
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.starts_with("gms.services.request-access._phone_number: ignored")),
            "{:?}",
            c.warnings()
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  trusted_proxies: ['10.0.0.0/8', '::1', '192.0.2.7/24']\n";
        let c = GatewayConfig::from_yaml(y).unwrap();
        let nets: Vec<String> = c
            .api
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "::1/128", "192.0.2.0/24"]);
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  trusted_proxies: ['10.0.0.0/33', 'proxy']\n";
        let e = GatewayConfig::from_yaml(y).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.trusted_proxies[0]", "gms.trusted_proxies[1]"]);
    }
}
