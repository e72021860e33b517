//! Validation of the configured services (`gms.services.*`, GMS `service.<name>` sections):
//! their type, their options and the ORS options of ORS services.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::api::*;
use super::file::OptionValue;
use super::validate::Validator;

/// The flags (`true`/`false`, any case) of the built-ins.
const FLAGS: [&str; 3] = [
    "_provide_code",
    "_require_access_code",
    "_return_pool_health",
];

/// Options a request may never override, whatever `_overwritable_options` says: they pick what
/// runs and where the gateway connects, so a client could otherwise aim it anywhere.
const NEVER_OVERWRITABLE: &[&str] = &[
    "_type",
    "_service",
    "_ors",
    "_ors_lb_strategy",
    "_ors_forward",
    "_ors_start",
    "_start_request",
    "_overwritable_options",
];

impl Validator {
    pub(super) fn service(
        &mut self,
        name: &str,
        opts: BTreeMap<String, OptionValue>,
        server: &[(String, String)],
        resources: &HashMap<String, Arc<[String]>>,
        limits: &Limits,
    ) -> Option<ServiceConfig> {
        let path = format!("gms.services.{name}");
        if name.is_empty()
            || name.contains('/')
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.err(
                &path,
                "a service name must not be empty or contain '/' or spaces",
            );
        }
        if name == RESERVED_SERVICE_NAME {
            self.err(
                &path,
                "'callback' is reserved: {root}/service/callback/... is the Callback Services API",
            );
        }
        let errors_before = self.errors.len();
        let mut options: Vec<(String, String)> = Vec::new();
        for (k, v) in &opts {
            if !k.starts_with('_') {
                self.err(
                    format!("{path}.{k}"),
                    "option names begin with '_' (GMS option names)",
                );
            }
            options.push((k.clone(), v.to_string()));
        }
        // Server-section options are defaults: a service's own option wins.
        for (k, v) in server {
            if !opts.contains_key(k) {
                options.push((k.clone(), v.clone()));
            }
        }
        let get = |k: &str| find_option(&options, k);
        // GMS: an option set to an empty value is unset (its default), e.g. the QA suite's
        // `_access_code_length: ""`; every typed check below reads options through this.
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let overwritable: Vec<String> = get("_overwritable_options")
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for o in &overwritable {
            if !o.starts_with('_') {
                self.err(
                    format!("{path}._overwritable_options"),
                    format!("'{o}' must be an option name with its leading '_'"),
                );
            } else if NEVER_OVERWRITABLE.contains(&o.as_str()) {
                self.err(
                    format!("{path}._overwritable_options"),
                    format!("'{o}' says where and what the gateway runs; no request may set it"),
                );
            }
        }
        let kind = match get("_type") {
            None => {
                self.err(format!("{path}._type"), "missing: builtin or ors");
                None
            }
            Some("builtin") => match get("_service") {
                Some("request-interaction") => {
                    Some(ServiceKind::Builtin(BuiltinKind::RequestInteraction))
                }
                Some("request-access") => Some(ServiceKind::Builtin(BuiltinKind::RequestAccess)),
                Some("match-interaction") => {
                    Some(ServiceKind::Builtin(BuiltinKind::MatchInteraction))
                }
                Some("office-hours") => self
                    .office_hours(&path, &options)
                    .map(ServiceKind::OfficeHours),
                Some("capacity") => self.capacity(&path, &options).map(ServiceKind::Capacity),
                other => {
                    self.err(
                        format!("{path}._service"),
                        format!(
                            "'{}' is not a built-in service (request-interaction, request-access, match-interaction, office-hours, capacity)",
                            other.unwrap_or("")
                        ),
                    );
                    None
                }
            },
            Some("ors") => self.ors_service(&path, &options).map(ServiceKind::Ors),
            Some(other) => {
                self.err(
                    format!("{path}._type"),
                    format!("'{other}' is not a service type (builtin or ors)"),
                );
                None
            }
        };
        // Options every service type reads: checked once here so a bad value fails at start-up.
        if let Some(g) = set("_resource_group") {
            if !resources.contains_key(g) {
                self.err(
                    format!("{path}._resource_group"),
                    format!("'{g}' is not a group in gms.resources"),
                );
            }
        }
        // A callback's `_ttl` counts from its desired time, under `gms.callback.max_ttl`
        // (checked with the callback options).
        let callback = get("_service_type").is_some();
        for key in ["_ttl", "_service_ttl"] {
            if key == "_ttl" && callback {
                continue;
            }
            if let Some(v) = set(key) {
                if !matches!(v.parse::<u64>(), Ok(n) if n >= 1 && n <= limits.max_ttl) {
                    self.err(
                        format!("{path}.{key}"),
                        format!("'{v}' must be whole seconds from 1 to {}", limits.max_ttl),
                    );
                }
            }
        }
        for key in FLAGS {
            if let Some(v) = set(key) {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    self.err(
                        format!("{path}.{key}"),
                        format!("'{v}' must be true or false"),
                    );
                }
            }
        }
        if let Some(v) = set("_booking_expiration_timeout") {
            if !matches!(v.parse::<u64>(), Ok(n) if BOOKING_TIMEOUT_S.contains(&n)) {
                self.err(
                    format!("{path}._booking_expiration_timeout"),
                    format!(
                        "'{v}' must be whole seconds from {} to {}",
                        BOOKING_TIMEOUT_S.start(),
                        BOOKING_TIMEOUT_S.end()
                    ),
                );
            }
        }
        if let Some(v) = set("_allocation") {
            if v != "random" && v != "round-robin" {
                self.err(
                    format!("{path}._allocation"),
                    format!("'{v}' must be random or round-robin"),
                );
            }
        }
        if let Some(v) = set("_access_code_length") {
            if !matches!(v.parse::<u8>(), Ok(1..=12)) {
                self.err(
                    format!("{path}._access_code_length"),
                    format!("'{v}' must be from 1 to 12"),
                );
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(ServiceConfig {
            name: name.to_string(),
            kind: kind?,
            options,
            overwritable,
        })
    }

    fn ors_service(
        &mut self,
        path: &str,
        options: &[(String, String)],
    ) -> Option<OrsServiceConfig> {
        let get = |k: &str| find_option(options, k);
        // Empty is the default here too, except `_start_request` (empty: no start request).
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let src = match get("_service") {
            Some(s) if is_http_url(s) => s.to_string(),
            // GMS's bundled callback template: `gms.callback.template_url` (callback.rs).
            Some(super::callback::CALLBACK_WORD)
                if get("_service_type") == Some(super::callback::CALLBACK_WORD) =>
            {
                String::new()
            }
            other => {
                self.err(
                    format!("{path}._service"),
                    format!(
                        "'{}' is not an http(s) URL of the SCXML application",
                        other.unwrap_or("")
                    ),
                );
                String::new()
            }
        };
        let nodes: Vec<String> = get("_ors")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if nodes.is_empty() {
            self.err(
                format!("{path}._ors"),
                "missing: set _ors here or in gms.server",
            );
        }
        for n in &nodes {
            if !is_http_url(n) {
                self.err(
                    format!("{path}._ors"),
                    format!("'{n}' is not an http(s) URL"),
                );
            }
        }
        let lb = match set("_ors_lb_strategy").unwrap_or("circular") {
            "circular" => LbStrategy::Circular,
            "linear" => LbStrategy::Linear,
            o => {
                self.err(
                    format!("{path}._ors_lb_strategy"),
                    format!("'{o}' must be circular or linear"),
                );
                LbStrategy::Circular
            }
        };
        let forward = match set("_ors_forward").unwrap_or("params") {
            "params" => ForwardMode::Params,
            "headers" => ForwardMode::Headers,
            o => {
                self.err(
                    format!("{path}._ors_forward"),
                    format!("'{o}' must be params or headers"),
                );
                ForwardMode::Params
            }
        };
        let start = match set("_ors_start").unwrap_or("sync") {
            "sync" => StartMode::Sync,
            "async" => StartMode::Async,
            o => {
                self.err(
                    format!("{path}._ors_start"),
                    format!("'{o}' must be sync or async"),
                );
                StartMode::Sync
            }
        };
        let mut number = |key: &str, default: u64| -> u64 {
            match set(key) {
                None => default,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        self.err(
                            format!("{path}.{key}"),
                            format!("'{v}' must be a positive whole number"),
                        );
                        default
                    }
                },
            }
        };
        Some(OrsServiceConfig {
            src,
            nodes,
            lb,
            forward,
            start,
            start_timeout_s: number("_ors_start_timeout_s", 30),
            status_ttl_ms: number("_status_ttl_ms", 1000),
            status_push_ttl_ms: number("_status_push_ttl_ms", 30_000),
            start_request: get("_start_request").unwrap_or("gms.start").to_string(),
        })
    }
}
