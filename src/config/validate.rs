//! Layer 2 of the configuration: the file's structs checked and turned into the typed
//! [`ApiConfig`] and [`EdgeConfig`]. Validation collects every problem it finds, each with its
//! key path, so `-t` reports them all at once. Services are checked in `services.rs`, the
//! access keys (credentials, networks, trusted proxies) in `access.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::api::*;
use super::edge::*;
use super::file::*;
use super::ConfigError;

/// The largest `gms.limits.max_ttl` accepted: ten years.
const MAX_TTL_LIMIT_S: u64 = 10 * 365 * 86_400;

/// Collects the problems of one file while it builds the typed configuration.
#[derive(Default)]
pub(super) struct Validator {
    pub errors: Vec<ConfigError>,
}

impl Validator {
    pub fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The API part of the `gms:` section.
    pub fn api(&mut self, f: &mut GmsFile, ca_file: Option<String>) -> ApiConfig {
        if let Some(path) = &ca_file {
            if let Err(e) = crate::tls::check_ca_file(path) {
                self.err("ca_file", e.to_string());
            }
        }
        let prefixes = match f.prefixes.take() {
            None => DEFAULT_PREFIXES.iter().map(|s| s.to_string()).collect(),
            Some(p) => {
                if p.is_empty() {
                    self.err("gms.prefixes", "at least one API root is required");
                }
                for (i, s) in p.iter().enumerate() {
                    if !s.starts_with('/') || s.ends_with('/') || s.contains("//") {
                        self.err(
                            format!("gms.prefixes[{i}]"),
                            format!("'{s}' must start with '/' and not end with '/'"),
                        );
                    }
                }
                p
            }
        };
        let external_url_base = f.external_url_base.take().map(|u| {
            if !is_http_url(&u) {
                self.err(
                    "gms.external_url_base",
                    format!("'{u}' is not an http(s) URL"),
                );
            }
            u.trim_end_matches('/').to_string()
        });
        let limits = self.limits(std::mem::take(&mut f.limits));
        let api_auth = f
            .api_auth
            .take()
            .map(|a| self.api_auth("gms.api_auth", "x-api-key", a));
        let internal = self.internal(
            f.internal_auth.take(),
            std::mem::take(&mut f.internal_networks),
        );
        let storage = self.storage(std::mem::take(&mut f.storage));
        if limits.max_store_bytes.is_some() && storage != StorageKind::Memory {
            self.err(
                "gms.limits.max_store_bytes",
                "applies to the memory store only: Redis is bounded by its own maxmemory (with the noeviction policy a full Redis answers 507)",
            );
        }
        let admin = f.admin.take().map(|a| {
            if a.user.is_empty() || a.password.is_empty() {
                self.err("gms.admin", "user and password must not be empty");
            }
            AdminCredentials {
                user: a.user,
                password: a.password,
            }
        });
        let trusted_proxies = self.networks("gms.trusted_proxies", &f.trusted_proxies);
        let ors = self.ors(std::mem::take(&mut f.ors));
        // GMS's one `server` option without an underscore that the gateway reads; empty is
        // unset (GMS: no constraint).
        let access_code_prefix = f
            .server
            .remove("access_code_prefix")
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty())
            .and_then(|v| {
                CodePrefix::parse(&v)
                    .map_err(|m| self.err("gms.server.access_code_prefix", m))
                    .ok()
            });
        let server: Vec<(String, String)> = f
            .server
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        for (k, _) in &server {
            if !k.starts_with('_') {
                self.err(
                    format!("gms.server.{k}"),
                    "option names begin with '_' (GMS option names)",
                );
            }
        }
        let resources = self.resources(std::mem::take(&mut f.resources));
        if storage != StorageKind::Memory {
            // Redis Cluster hash tags: `{group}` groups a pool's keys in one slot.
            let mut groups: Vec<&String> = resources.keys().collect();
            groups.sort();
            for g in groups {
                if g.contains(['{', '}']) {
                    self.err(
                        format!("gms.resources.{g}"),
                        "with the Redis store a group name may not contain { or }",
                    );
                }
            }
        }
        let (mut callback, callback_defaults) = self.callback_section(f.callback.take());
        // A callback service's defaults: the `gms.callback` underscore keys, then `gms.server`.
        let callback_server: Vec<(String, String)> = callback_defaults
            .iter()
            .chain(
                server
                    .iter()
                    .filter(|(k, _)| !callback_defaults.iter().any(|(d, _)| d == k)),
            )
            .cloned()
            .collect();
        let mut services = HashMap::new();
        for (name, opts) in std::mem::take(&mut f.services) {
            let defaults = match opts.get("_service_type") {
                Some(_) => &callback_server,
                None => &server,
            };
            if let Some(s) = self.service(&name, opts, defaults, &resources, &limits) {
                services.insert(name, Arc::new(s));
            }
        }
        self.callback_services(&mut services, &mut callback);
        if let Some(prefix) = &access_code_prefix {
            self.prefix_leaves_digits(prefix, &services);
        }
        ApiConfig {
            ca_file,
            prefixes,
            external_url_base,
            limits,
            api_auth,
            internal,
            storage,
            admin,
            fallback_to_backend: f.fallback_to_backend,
            test_page: f.test_page,
            trusted_proxies,
            metrics: f.metrics_listen.is_some(),
            ors,
            resources,
            access_code_prefix,
            services,
            callback,
        }
    }

    /// Every built-in that reserves must have a code digit left after the prefix, at its
    /// configured (or default) code length: GMS fails each such create with a 500 instead.
    fn prefix_leaves_digits(
        &mut self,
        prefix: &CodePrefix,
        services: &HashMap<String, Arc<ServiceConfig>>,
    ) {
        let mut short: Vec<(&str, u64)> = services
            .values()
            .filter(|s| {
                matches!(
                    s.kind,
                    ServiceKind::Builtin(
                        BuiltinKind::RequestInteraction | BuiltinKind::RequestAccess
                    )
                )
            })
            .filter_map(|s| {
                let len = s
                    .option("_access_code_length")
                    .filter(|v| !v.is_empty())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(DEFAULT_CODE_LEN);
                (len as usize <= prefix.digits()).then_some((s.name.as_str(), len))
            })
            .collect();
        short.sort_unstable();
        for (name, len) in short {
            self.err(
                "gms.server.access_code_prefix",
                format!(
                    "'{prefix}' leaves no free digit in the {len}-digit access codes of gms.services.{name} (_access_code_length)"
                ),
            );
        }
    }

    /// The binary's edge part of the `gms:` section; `listen` or `tls_listen` is required.
    pub fn edge(&mut self, f: GmsFile) -> EdgeConfig {
        if f.listen.is_empty() && f.tls_listen.is_empty() {
            self.err(
                "gms.listen",
                "at least one address is required (here or in gms.tls_listen)",
            );
        }
        for (i, a) in f.listen.iter().enumerate() {
            if a.parse::<SocketAddr>().is_err() {
                self.err(
                    format!("gms.listen[{i}]"),
                    format!("'{a}' is not an ip:port address"),
                );
            }
        }
        let tls_listen = self.tls_listen(f.tls_listen);
        let connections = self.connections(f.connections);
        if let Some(m) = &f.metrics_listen {
            if m.parse::<SocketAddr>().is_err() {
                self.err(
                    "gms.metrics_listen",
                    format!("'{m}' is not an ip:port address"),
                );
            }
        }
        let backend = f.backend.map(|b| self.backend(b));
        if f.fallback_to_backend && backend.is_none() {
            self.err(
                "gms.fallback_to_backend",
                "needs gms.backend.upstreams to fall back to",
            );
        }
        EdgeConfig {
            listen: f.listen,
            tls_listen,
            connections,
            metrics_listen: f.metrics_listen,
            access_log: f.access_log.filter(|a| !a.is_empty() && a != "off"),
            backend,
        }
    }

    fn backend(&mut self, b: BackendFile) -> BackendConfig {
        if b.upstreams.is_empty() {
            self.err("gms.backend.upstreams", "at least one upstream is required");
        }
        let mut upstreams = Vec::with_capacity(b.upstreams.len());
        for (i, entry) in b.upstreams.iter().enumerate() {
            let path = format!("gms.backend.upstreams[{i}]");
            match Upstream::parse(entry) {
                Ok(u) => {
                    if u.addr
                        .to_socket_addrs()
                        .map(|mut a| a.next().is_none())
                        .unwrap_or(true)
                    {
                        self.err(path, format!("'{entry}' is not a host:port address"));
                    }
                    upstreams.push(u);
                }
                Err(e) => self.err(path, e.to_string()),
            }
        }
        BackendConfig {
            upstreams,
            health_check_interval_ms: b.health_check_interval_ms.unwrap_or(1000).max(50),
            timeout_ms: self.positive(
                "gms.backend.timeout_ms",
                b.timeout_ms,
                DEFAULT_BACKEND_TIMEOUT_MS,
            ),
        }
    }

    /// `v` when it is set and above 0 (an error at `path` when it is 0), else `default`.
    fn positive(&mut self, path: &str, v: Option<u64>, default: u64) -> u64 {
        match v {
            Some(0) => {
                self.err(path, "must be greater than 0");
                default
            }
            Some(v) => v,
            None => default,
        }
    }

    fn connections(&mut self, f: ConnectionsFile) -> Connections {
        let d = Connections::default();
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            self.positive(&format!("gms.connections.{name}"), v, default)
        };
        let c = Connections {
            header_timeout_ms: positive(
                "header_timeout_ms",
                f.header_timeout_ms,
                d.header_timeout_ms,
            ),
            body_timeout_ms: positive("body_timeout_ms", f.body_timeout_ms, d.body_timeout_ms),
            idle_timeout_ms: positive("idle_timeout_ms", f.idle_timeout_ms, d.idle_timeout_ms),
            max_header_bytes: positive("max_header_bytes", f.max_header_bytes, d.max_header_bytes),
            max_requests: f.max_requests.unwrap_or(d.max_requests),
        };
        // Pingora reads a head of up to 1 MiB; a larger limit would never be reached.
        if c.max_header_bytes > 1024 * 1024 || c.max_header_bytes < 1024 {
            self.err(
                "gms.connections.max_header_bytes",
                "must be from 1024 to 1048576",
            );
        }
        c
    }

    fn tls_listen(&mut self, f: Vec<TlsListenFile>) -> Vec<TlsListener> {
        f.into_iter()
            .enumerate()
            .map(|(i, l)| {
                let path = format!("gms.tls_listen[{i}]");
                if l.addr.parse::<SocketAddr>().is_err() {
                    self.err(
                        format!("{path}.addr"),
                        format!("'{}' is not an ip:port address", l.addr),
                    );
                }
                if let Err((file, e)) = crate::tls::check_cert_and_key(&l.cert, &l.key) {
                    let key = match file {
                        crate::tls::TlsFile::Cert => "cert",
                        crate::tls::TlsFile::Key => "key",
                    };
                    self.err(format!("{path}.{key}"), e.to_string());
                }
                TlsListener {
                    addr: l.addr,
                    cert: l.cert,
                    key: l.key,
                    h2: l.h2.unwrap_or(true),
                }
            })
            .collect()
    }

    fn limits(&mut self, f: LimitsFile) -> Limits {
        let d = Limits::default();
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            self.positive(&format!("gms.limits.{name}"), v, default)
        };
        let max_body_bytes = positive("max_body_bytes", f.max_body_bytes, d.max_body_bytes);
        let max_fields = positive("max_fields", f.max_fields, d.max_fields as u64) as usize;
        let max_field_bytes = positive("max_field_bytes", f.max_field_bytes, d.max_field_bytes);
        let max_file_bytes = positive("max_file_bytes", f.max_file_bytes, max_body_bytes);
        let mut max_ttl = positive("max_ttl", f.max_ttl, d.max_ttl);
        // Expiry instants are computed as now + TTL: keep them far from overflowing.
        if max_ttl > MAX_TTL_LIMIT_S {
            self.err(
                "gms.limits.max_ttl",
                format!("must be at most {MAX_TTL_LIMIT_S} seconds (10 years)"),
            );
            max_ttl = d.max_ttl;
        }
        let per_phone = f.reservations_per_phone.unwrap_or(0);
        let reservations_per_phone = u32::try_from(per_phone).unwrap_or_else(|_| {
            self.err(
                "gms.limits.reservations_per_phone",
                format!("'{per_phone}' is too large (0 turns the limit off)"),
            );
            0
        });
        let max_failed = f
            .max_failed_matches
            .unwrap_or(u64::from(DEFAULT_MAX_FAILED_MATCHES));
        let max_failed_matches = match u32::try_from(max_failed) {
            Ok(n @ 1..=1_000_000) => n,
            _ => {
                self.err(
                    "gms.limits.max_failed_matches",
                    format!("'{max_failed}' must be from 1 to 1000000"),
                );
                DEFAULT_MAX_FAILED_MATCHES
            }
        };
        if let Some(b) = f.max_store_bytes.filter(|&b| b < max_body_bytes) {
            self.err(
                "gms.limits.max_store_bytes",
                format!("'{b}' is below gms.limits.max_body_bytes ({max_body_bytes}): no upload could be stored"),
            );
        }
        // An upload of the largest body must be able to pass, or it could never be sent.
        let upload_bytes_per_ip_per_s = match f.upload_bytes_per_ip_per_s {
            None => max_body_bytes.saturating_mul(2),
            Some(b) if b != 0 && b < max_body_bytes => {
                self.err(
                    "gms.limits.upload_bytes_per_ip_per_s",
                    format!("'{b}' is below gms.limits.max_body_bytes ({max_body_bytes}): the largest body could never pass (0 turns the limit off)"),
                );
                b
            }
            Some(b) => b,
        };
        let max_anonymous_ttl = match f.max_anonymous_ttl {
            None => DEFAULT_MAX_ANONYMOUS_TTL_S.min(max_ttl),
            Some(s) if s == 0 || s > max_ttl => {
                self.err(
                    "gms.limits.max_anonymous_ttl",
                    format!("'{s}' must be whole seconds from 1 to gms.limits.max_ttl ({max_ttl})"),
                );
                DEFAULT_MAX_ANONYMOUS_TTL_S.min(max_ttl)
            }
            Some(s) => s,
        };
        Limits {
            max_body_bytes,
            max_fields,
            max_field_bytes,
            max_file_bytes,
            max_ttl,
            create_rate_per_ip: f.create_rate_per_ip.unwrap_or(DEFAULT_CREATE_RATE_PER_IP),
            reservations_per_phone,
            max_failed_matches,
            failed_matches_per_ip: f
                .failed_matches_per_ip
                .unwrap_or(DEFAULT_FAILED_MATCHES_PER_IP),
            max_store_bytes: f.max_store_bytes,
            upload_bytes_per_ip_per_s,
            max_anonymous_ttl,
        }
    }

    fn storage(&mut self, f: StorageFile) -> StorageKind {
        let prefix = f.prefix.unwrap_or_else(|| "gms:".into());
        let timeout_ms = f.timeout_ms.unwrap_or(DEFAULT_STORAGE_TIMEOUT_MS);
        if timeout_ms == 0 {
            self.err("gms.storage.timeout_ms", "must be greater than 0");
        }
        if prefix.contains(['{', '}']) {
            self.err(
                "gms.storage.prefix",
                format!("'{prefix}' may not contain {{ or }} (Redis Cluster hash tags)"),
            );
        }
        match f.backend.as_str() {
            "memory" => {
                if f.url.is_some() || f.cluster.is_some() {
                    self.err(
                        "gms.storage",
                        "url and cluster belong to backend: redis, not memory",
                    );
                }
                StorageKind::Memory
            }
            "redis" => match (f.url, f.cluster) {
                (Some(url), None) => {
                    if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                        self.err(
                            "gms.storage.url",
                            format!("'{url}' is not a redis:// or rediss:// URL"),
                        );
                    }
                    StorageKind::Redis {
                        url,
                        prefix,
                        timeout_ms,
                    }
                }
                (None, Some(nodes)) if !nodes.is_empty() => {
                    for (i, n) in nodes.iter().enumerate() {
                        if !n.starts_with("redis://") && !n.starts_with("rediss://") {
                            self.err(
                                format!("gms.storage.cluster[{i}]"),
                                format!("'{n}' is not a redis:// or rediss:// URL"),
                            );
                        }
                    }
                    StorageKind::RedisCluster {
                        nodes,
                        prefix,
                        timeout_ms,
                    }
                }
                _ => {
                    self.err(
                        "gms.storage",
                        "backend: redis needs exactly one of url or cluster",
                    );
                    StorageKind::Memory
                }
            },
            other => {
                self.err(
                    "gms.storage.backend",
                    format!("'{other}' is not a storage backend (memory or redis)"),
                );
                StorageKind::Memory
            }
        }
    }

    fn ors(&mut self, f: OrsFile) -> OrsSettings {
        let d = OrsSettings::default();
        let attempts = f.max_ors_request_attempts.unwrap_or(3);
        if attempts == 0 || attempts > 100 {
            self.err(
                "gms.ors.max_ors_request_attempts",
                "must be between 1 and 100",
            );
        }
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            self.positive(&format!("gms.ors.{name}"), v, default)
        };
        OrsSettings {
            max_ors_request_attempts: attempts.clamp(1, 100) as u32,
            connect_timeout_ms: positive(
                "connect_timeout_ms",
                f.connect_timeout_ms,
                d.connect_timeout_ms,
            ),
            socket_timeout_ms: positive(
                "socket_timeout_ms",
                f.socket_timeout_ms,
                d.socket_timeout_ms,
            ),
            health_check_interval_ms: positive(
                "health_check_interval_ms",
                f.health_check_interval_ms,
                d.health_check_interval_ms,
            ),
            start_queue_size: positive(
                "start_queue_size",
                f.start_queue_size,
                d.start_queue_size as u64,
            ) as usize,
            start_concurrency: positive(
                "start_concurrency",
                f.start_concurrency,
                d.start_concurrency as u64,
            ) as usize,
        }
    }

    fn resources(
        &mut self,
        f: BTreeMap<String, Vec<OptionValue>>,
    ) -> HashMap<String, Arc<[String]>> {
        let mut owner: HashMap<String, String> = HashMap::new();
        let mut out = HashMap::new();
        for (group, numbers) in f {
            let path = format!("gms.resources.{group}");
            if numbers.is_empty() {
                self.err(&path, "a resource group needs at least one access number");
            }
            let mut list = Vec::with_capacity(numbers.len());
            for (i, n) in numbers.iter().enumerate() {
                let n = n.to_string();
                if n.is_empty()
                    || n.len() > 64
                    || n.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    self.err(
                        format!("{path}[{i}]"),
                        format!("'{n}' is not an access number"),
                    );
                } else if let Some(g) = owner.insert(n.clone(), group.clone()) {
                    self.err(
                        format!("{path}[{i}]"),
                        format!("'{n}' is already in group '{g}': a number belongs to one group"),
                    );
                }
                list.push(n);
            }
            out.insert(group, Arc::from(list));
        }
        out
    }
}
