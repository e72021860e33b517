//! The Callback Services API's configuration (contract `gms-callback.md` §12): the `gms.callback`
//! section ([`CallbackSettings`]) and what a callback service (`_type: ors`, `_service_type:
//! callback`) is once parsed ([`CallbackService`]); their validation is in
//! `callback_services.rs`, each problem reported with its key path. A callback service's
//! options are read once, at start-up; requests change none of those the gateway interprets
//! ([`CALLBACK_OPTIONS`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::api::*;
use super::file::OptionValue;
use super::validate::Validator;
use crate::callback::SlotRules;

/// The word after `/service/` that the Callback Services API owns: no service may be named so.
pub const CALLBACK_WORD: &str = "callback";

/// Options of a callback service that the gateway itself interprets (limits, buckets, office
/// hours, times, texts). A request never sets them, and `_overwritable_options` may not name
/// them: a client could otherwise lift the service's limits. Their configured values still go
/// to ORS with the others.
pub const CALLBACK_OPTIONS: &[&str] = &[
    "_service_type",
    "_ttl",
    "_request_execution_time_buffer",
    "_request_time_bucket",
    "_max_request_by_time_bucket",
    "_business_hours_service",
    "_capacity_service",
    "_reject_future_desired_time",
    "_reject_past_desired_time",
    "_customer_lookup_keys",
    "_mandatory_customer_lookup_keys",
    "_max_queued_callbacks_per_service",
    "_throttle_callbacks_per_service_1",
    "_throttle_ttl_1",
    "_throttle_callbacks_per_service_2",
    "_throttle_ttl_2",
    "_throttle_request_parameters",
    "_throttle_request_parameters_limit",
    "_enable_in_queue_checking",
    "_disallow_impossible_phone_numbers",
    "_disallow_premium_phone_numbers",
    "_enable_reject_out_of_office_hours",
    "_max_ors_submit_attempts",
    "_queue_poll_period_recovery",
    "_scheduled_text",
    "_scheduled_ok_title",
];

/// Default `gms.callback.max_ttl`: 30 days (§13 Q7).
pub const DEFAULT_CALLBACK_MAX_TTL_S: u64 = 30 * 86_400;
/// Default `gms.callback.max_queued_callbacks_per_service` (GMS).
pub const DEFAULT_MAX_QUEUED: u32 = 1000;
/// Default `_ttl` of a callback: kept a day after its desired time.
pub const DEFAULT_CALLBACK_TTL_S: u64 = 86_400;
/// Default `_request_execution_time_buffer`, seconds (GMS).
pub const DEFAULT_BUFFER_S: u64 = 120;
/// Default `_max_ors_submit_attempts` (GMS).
pub const DEFAULT_SUBMIT_ATTEMPTS: u32 = 3;
/// Default `_throttle_request_parameters_limit` (GMS).
pub const DEFAULT_PARAMETER_LIMIT: u32 = 6;
/// Default `_queue_poll_period_recovery`: GMS's `-1440,-120`, a day back, in minutes.
pub const DEFAULT_RECOVERY_MINUTES: u64 = 1440;
/// Default `_scheduled_text` (§3.3).
pub const DEFAULT_SCHEDULED_TEXT: &str = "Your callback is scheduled.";
/// Default `_scheduled_ok_title` (§3.3).
pub const DEFAULT_SCHEDULED_OK_TITLE: &str = "Ok";
/// Default `filter-keys` (§12).
const DEFAULT_FILTER_KEYS: &str =
    "_callback_state,_callback_reason,_request_queue_time_stat,_request_ewt_service,_vq";
/// Default `returned-keys` (GMS, research §1.5).
const DEFAULT_RETURNED_KEYS: &str =
    "_desired_time,_callback_state,_callback_reason,_ors_session_id";
/// Bounds of the fractional-second settings (`queue-polling-rate`, `submit_retry_s`).
const MIN_PERIOD_S: f64 = 0.05;
const MAX_PERIOD_S: f64 = 3600.0;
/// The largest `gms.callback.max_ttl`: ten years, as `gms.limits.max_ttl`.
const MAX_CALLBACK_TTL_LIMIT_S: u64 = 10 * 365 * 86_400;

/// `gms.callback` as written. Underscore keys are defaults for every callback service.
#[derive(Deserialize, Default)]
pub(super) struct CallbackFile {
    #[serde(rename = "filter-keys")]
    filter_keys: Option<String>,
    #[serde(rename = "returned-keys")]
    returned_keys: Option<String>,
    max_queued_callbacks_per_service: Option<u64>,
    #[serde(rename = "queue-polling-rate")]
    queue_polling_rate: Option<f64>,
    submit_retry_s: Option<f64>,
    submit_concurrency: Option<u64>,
    max_ttl: Option<u64>,
    template_url: Option<String>,
    admin_open: Option<bool>,
    /// Every other key: must be an underscore option (a default of every callback service).
    #[serde(flatten)]
    options: BTreeMap<String, OptionValue>,
}

/// `gms.callback`: the Callback Services API's application-level settings (§12).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSettings {
    /// `filter-keys`: the keys admin queries filter on (§9), kept on every record.
    pub filter_keys: Vec<String>,
    /// `returned-keys`: the keys every queried record shows (§6.1).
    pub returned_keys: Vec<String>,
    /// `queue-polling-rate`: time between scheduler passes (ours: fractions of a second
    /// allowed, from 0.05 s).
    pub polling: Duration,
    /// `submit_retry_s`: time between two submit attempts of one callback (default 10 s, §7.1).
    pub submit_retry: Duration,
    /// `submit_concurrency`: callbacks one node submits to ORS at once (a scheduler batch).
    pub submit_concurrency: usize,
    /// `max_ttl`: the longest `_ttl` of a callback service, seconds.
    pub max_ttl: u64,
    /// `template_url`: the `src` of services with `_service: callback`.
    pub template_url: Option<String>,
    /// `admin_open`: admin `queues` and `watermarks` without credentials (§9).
    pub admin_open: bool,
    /// The names of the callback services, sorted.
    pub services: Vec<String>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            filter_keys: keys(DEFAULT_FILTER_KEYS),
            returned_keys: keys(DEFAULT_RETURNED_KEYS),
            polling: Duration::from_secs(5),
            submit_retry: Duration::from_secs(10),
            submit_concurrency: 32,
            max_ttl: DEFAULT_CALLBACK_MAX_TTL_S,
            template_url: None,
            admin_open: false,
            services: Vec::new(),
        }
    }
}

/// One callback service: its ORS side and every option the gateway interprets, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackService {
    /// How its callbacks are submitted (`src`, nodes, `_start_request`: default `start`).
    pub ors: OrsServiceConfig,
    /// Buckets, office hours, capacity, past and future limits.
    pub rules: SlotRules,
    /// `_request_execution_time_buffer`: submitted this long before the desired time.
    pub buffer: Duration,
    /// `_ttl`: a record lives this long after its desired time (an immediate one after its
    /// creation).
    pub ttl: Duration,
    /// `_customer_lookup_keys`, `_customer_number` first.
    pub lookup_keys: Vec<String>,
    /// `_mandatory_customer_lookup_keys`.
    pub mandatory_keys: Vec<String>,
    /// `_max_queued_callbacks_per_service`.
    pub max_active: u32,
    /// `_throttle_ttl_k` and `_throttle_callbacks_per_service_k`, k = 1, 2, those set.
    pub throttles: Vec<(Duration, u32)>,
    /// `_throttle_request_parameters`.
    pub parameter_keys: Vec<String>,
    /// `_throttle_request_parameters_limit`.
    pub parameter_limit: u32,
    /// `_enable_in_queue_checking`: `true` 2, `strict` 1, `false` none.
    pub in_queue: Option<u32>,
    /// `_disallow_impossible_phone_numbers`.
    pub check_numbers: bool,
    /// `_disallow_premium_phone_numbers: true` (accepted, not implemented: a warning).
    pub premium_check: bool,
    /// `_enable_reject_out_of_office_hours`.
    pub reject_out_of_office_hours: bool,
    /// `_max_ors_submit_attempts`.
    pub max_attempts: u32,
    /// `_queue_poll_period_recovery`: at start-up, records due longer ago than this are given
    /// up.
    pub recovery: Duration,
    /// `_scheduled_text`.
    pub scheduled_text: String,
    /// `_scheduled_ok_title`.
    pub scheduled_ok_title: String,
}

/// Splits a comma list into its trimmed, non-empty items.
pub(super) fn keys(list: &str) -> Vec<String> {
    list.split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

impl Validator {
    /// `gms.callback`: the settings and the underscore defaults it gives callback services.
    pub(super) fn callback_section(
        &mut self,
        f: Option<CallbackFile>,
    ) -> (CallbackSettings, Vec<(String, String)>) {
        let f = f.unwrap_or_default();
        let d = CallbackSettings::default();
        let mut defaults = Vec::new();
        for (k, v) in &f.options {
            if k.starts_with('_') {
                defaults.push((k.clone(), v.to_string()));
            } else {
                self.err(
                    format!("gms.callback.{k}"),
                    "unknown key (check its spelling against the configuration reference)",
                );
            }
        }
        if let Some(n) = f.max_queued_callbacks_per_service {
            // The section's own key is the default of the service option of the same name.
            match u32::try_from(n) {
                Ok(n) if n >= 1 => {
                    if !defaults
                        .iter()
                        .any(|(k, _)| k == "_max_queued_callbacks_per_service")
                    {
                        defaults.push(("_max_queued_callbacks_per_service".into(), n.to_string()));
                    }
                }
                _ => self.err(
                    "gms.callback.max_queued_callbacks_per_service",
                    format!("'{n}' must be a whole number from 1 to {}", u32::MAX),
                ),
            }
        }
        let mut period = |name: &str, v: Option<f64>, default: Duration| match v {
            None => default,
            Some(s) if (MIN_PERIOD_S..=MAX_PERIOD_S).contains(&s) => Duration::from_secs_f64(s),
            Some(s) => {
                self.err(
                    format!("gms.callback.{name}"),
                    format!("'{s}' must be seconds from {MIN_PERIOD_S} to {MAX_PERIOD_S}"),
                );
                default
            }
        };
        let polling = period("queue-polling-rate", f.queue_polling_rate, d.polling);
        let submit_retry = period("submit_retry_s", f.submit_retry_s, d.submit_retry);
        let submit_concurrency = match f.submit_concurrency {
            None => d.submit_concurrency,
            Some(n @ 1..=1024) => n as usize,
            Some(n) => {
                self.err(
                    "gms.callback.submit_concurrency",
                    format!("'{n}' must be from 1 to 1024"),
                );
                d.submit_concurrency
            }
        };
        let max_ttl = match f.max_ttl {
            None => d.max_ttl,
            Some(n @ 1..=MAX_CALLBACK_TTL_LIMIT_S) => n,
            Some(n) => {
                self.err(
                    "gms.callback.max_ttl",
                    format!(
                        "'{n}' must be seconds from 1 to {MAX_CALLBACK_TTL_LIMIT_S} (10 years)"
                    ),
                );
                d.max_ttl
            }
        };
        let template_url = f.template_url.filter(|u| !u.is_empty());
        if let Some(u) = &template_url {
            if !is_http_url(u) {
                self.err(
                    "gms.callback.template_url",
                    format!("'{u}' is not an http(s) URL"),
                );
            }
        }
        let settings = CallbackSettings {
            filter_keys: keys(f.filter_keys.as_deref().unwrap_or(DEFAULT_FILTER_KEYS)),
            returned_keys: keys(f.returned_keys.as_deref().unwrap_or(DEFAULT_RETURNED_KEYS)),
            polling,
            submit_retry,
            submit_concurrency,
            max_ttl,
            template_url,
            admin_open: f.admin_open.unwrap_or(false),
            services: Vec::new(),
        };
        (settings, defaults)
    }
}

impl CallbackService {
    /// Warnings about options accepted but not acted on.
    pub fn warnings(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.premium_check {
            out.push(format!(
                "gms.services.{name}._disallow_premium_phone_numbers: true is accepted, but this gateway does not check premium numbers (v1)"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(services: &str, callback: &str) -> String {
        format!(
            "gms:\n  server: {{_ors: 'http://127.0.0.1:7210'}}\n{callback}  services:\n{services}"
        )
    }

    const OFFICE: &str = "    bh: {_type: builtin, _service: office-hours, _timezone: Europe/Paris, _bh_regular1: 'Mon-Fri 09:00-17:00'}\n    cap: {_type: builtin, _service: capacity, _timezone: Europe/Paris, _capacity_1: '{\"1\":{\"0900\":6}}'}\n";

    fn paths(e: &[crate::ConfigError]) -> Vec<&str> {
        e.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn a_callback_service_with_its_defaults() {
        let y = base(
            &format!("{OFFICE}    cb: {{_type: ors, _service_type: callback, _service: 'http://s/cb.scxml', _business_hours_service: bh, _capacity_service: cap, _customer_lookup_keys: 'CB_ID'}}\n"),
            "  callback: {queue-polling-rate: 0.2, _throttle_request_parameters_limit: 9}\n",
        );
        let c = ApiConfig::from_yaml(&y).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.callback.services, ["cb"]);
        assert_eq!(c.callback.polling, Duration::from_millis(200));
        let ServiceKind::Callback(cb) = &c.services["cb"].kind else {
            panic!("not a callback service")
        };
        assert_eq!(cb.ors.start_request, "start");
        assert_eq!(cb.ors.src, "http://s/cb.scxml");
        assert_eq!(cb.lookup_keys, ["_customer_number", "CB_ID"]);
        assert_eq!(cb.mandatory_keys, ["_customer_number"]);
        assert_eq!(cb.parameter_limit, 9, "gms.callback defaults apply");
        assert_eq!(cb.in_queue, Some(2));
        assert_eq!(cb.buffer, Duration::from_secs(120));
        assert_eq!(cb.recovery, Duration::from_secs(1440 * 60));
        assert!(matches!(c.services["bh"].kind, ServiceKind::OfficeHours(_)));
        assert!(matches!(c.services["cap"].kind, ServiceKind::Capacity(_)));
    }

    #[test]
    fn every_callback_check_names_its_key() {
        let y = base(
            &format!(
                "{OFFICE}    callback: {{_type: builtin, _service: request-interaction}}\n    cb: {{_type: ors, _service_type: callback, _service: callback, _business_hours_service: cap, _capacity_service: bh, _request_time_bucket: 7, _reject_future_desired_time: 2x, _ttl: 99999999, _enable_in_queue_checking: maybe, _max_ors_submit_attempts: 0, _throttle_ttl_1: 5, _overwritable_options: '_ttl,_target', _redirect: nowhere}}\n    odd: {{_type: ors, _service_type: chat, _service: 'http://s/x'}}\n    oh: {{_type: builtin, _service: office-hours, _timezone: Mars/Base, _use_alternative1: x}}\n    cp: {{_type: builtin, _service: capacity, _timezone: UTC, _capacity_1: '{{\"1\":{{\"0900\":5000}}}}'}}\n"
            ),
            "  callback: {queue-polling-rate: 0, nonsense: 1}\n",
        );
        let e = ApiConfig::from_yaml(&y).unwrap_err();
        let p = paths(&e);
        for want in [
            "gms.callback.nonsense",
            "gms.callback.queue-polling-rate",
            "gms.services.callback",
            "gms.services.cb._service",
            "gms.services.cb._overwritable_options",
            "gms.services.cb._ttl",
            "gms.services.cb._throttle_callbacks_per_service_1",
            "gms.services.cb._max_ors_submit_attempts",
            "gms.services.cb._enable_in_queue_checking",
            "gms.services.cb._redirect",
            "gms.services.cb._business_hours_service",
            "gms.services.cb._capacity_service",
            "gms.services.cb._request_time_bucket",
            "gms.services.cb._reject_future_desired_time",
            "gms.services.odd._service_type",
            "gms.services.cp._capacity_1",
        ] {
            assert!(p.contains(&want), "{want} not in {p:?}");
        }
        assert!(p.iter().any(|x| x.starts_with("gms.services.oh.")), "{p:?}");
    }

    #[test]
    fn admin_open_is_a_boolean() {
        let cb = "    cb: {_type: ors, _service_type: callback, _service: 'http://s/cb.scxml'}\n";
        let c = ApiConfig::from_yaml(&base(cb, "  callback: {admin_open: true}\n"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(c.callback.admin_open);
        let e = ApiConfig::from_yaml(&base(cb, "  callback: {admin_open: maybe}\n")).unwrap_err();
        assert!(paths(&e).contains(&"gms.callback.admin_open"), "{e:?}");
    }

    #[test]
    fn the_template_url_stands_for_the_callback_template() {
        let y = base(
            "    cb: {_type: ors, _service_type: callback, _service: callback}\n",
            "  callback: {template_url: 'http://scxml.example.com/callback.scxml'}\n",
        );
        let c = ApiConfig::from_yaml(&y).unwrap_or_else(|e| panic!("{e:?}"));
        let ServiceKind::Callback(cb) = &c.services["cb"].kind else {
            panic!("not a callback service")
        };
        assert_eq!(cb.ors.src, "http://scxml.example.com/callback.scxml");
    }

    #[test]
    fn the_shipped_configs_have_a_callback_service_with_hours_and_capacity() {
        for text in [
            include_str!("../../conf/gateway.yaml"),
            include_str!("../../conf/gateway-redis.yaml"),
        ] {
            let c = crate::GatewayConfig::from_yaml(text).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(c.api.callback.services, ["callback-for-mobile"]);
            let ServiceKind::Callback(cb) = &c.api.services["callback-for-mobile"].kind else {
                panic!("not a callback service")
            };
            assert_eq!(cb.rules.buckets().minutes(), 15);
            assert!(matches!(
                c.api.services["business-hours"].kind,
                ServiceKind::OfficeHours(_)
            ));
            assert!(matches!(
                c.api.services["capacity-main"].kind,
                ServiceKind::Capacity(_)
            ));
        }
    }
}
