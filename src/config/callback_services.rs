//! Validation of callback services and of the office-hours and capacity built-ins (contract
//! `gms-callback.md` §10, §12): each ORS service with `_service_type: callback` becomes a
//! [`CallbackService`] once the services it names are known; every problem names its key path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::api::*;
use super::callback::*;
use super::validate::Validator;
use crate::callback::buckets::{Buckets, DEFAULT_MINUTES};
use crate::callback::rules::{DEFAULT_MAX_PER_BUCKET, DEFAULT_REJECT_PAST_SECONDS};
use crate::callback::{Capacity, FutureLimit, OfficeHours, SlotRules};

impl Validator {
    /// Turns every ORS service with `_service_type: callback` into a [`CallbackService`],
    /// now that the office-hours and capacity services it names are known; refuses a service
    /// named `callback`.
    pub(super) fn callback_services(
        &mut self,
        services: &mut HashMap<String, Arc<ServiceConfig>>,
        settings: &mut CallbackSettings,
    ) {
        if services.contains_key(CALLBACK_WORD) {
            self.err(
                format!("gms.services.{CALLBACK_WORD}"),
                "'callback' after /service/ is the Callback Services API's: no service may have this name",
            );
        }
        let mut names: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.option("_service_type").is_some())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        for name in names {
            let svc = &services[&name];
            let path = format!("gms.services.{name}");
            let ServiceKind::Ors(ors) = &svc.kind else {
                self.err(
                    format!("{path}._service_type"),
                    "only an ORS service (_type: ors) can be a callback service",
                );
                continue;
            };
            match svc.option("_service_type") {
                Some(CALLBACK_WORD) => {}
                Some(other) => {
                    self.err(
                        format!("{path}._service_type"),
                        format!("'{other}' is not a service type this gateway knows (callback)"),
                    );
                    continue;
                }
                None => continue,
            }
            let errors_before = self.errors.len();
            let cb = self.callback_service(&path, svc, ors.clone(), services, settings);
            if self.errors.len() == errors_before {
                if let Some(cb) = cb {
                    let mut svc = (**svc).clone();
                    svc.kind = ServiceKind::Callback(Arc::new(cb));
                    services.insert(name.clone(), Arc::new(svc));
                    settings.services.push(name);
                }
            }
        }
    }

    fn callback_service(
        &mut self,
        path: &str,
        svc: &ServiceConfig,
        mut ors: OrsServiceConfig,
        services: &HashMap<String, Arc<ServiceConfig>>,
        settings: &CallbackSettings,
    ) -> Option<CallbackService> {
        let get = |k: &str| svc.option(k).map(str::trim).filter(|v| !v.is_empty());
        if svc.option("_service") == Some(CALLBACK_WORD) {
            match &settings.template_url {
                Some(url) => ors.src = url.clone(),
                None => self.err(
                    format!("{path}._service"),
                    "'callback' (GMS's bundled template) needs gms.callback.template_url, the URL of the callback SCXML",
                ),
            }
        }
        if ors.start == StartMode::Async {
            self.err(
                format!("{path}._ors_start"),
                "a callback service is submitted by the gateway (now, or by its scheduler): async does not apply",
            );
        }
        ors.start_request = svc.option("_start_request").unwrap_or("start").to_string();
        for o in &svc.overwritable {
            if CALLBACK_OPTIONS.contains(&o.as_str()) {
                self.err(
                    format!("{path}._overwritable_options"),
                    format!("'{o}' is interpreted by the gateway (a limit, a time or a rule of the service): no request may set it"),
                );
            }
        }
        let number = |v: &mut Validator, key: &str, default: u64, max: u64| {
            v.whole(path, key, get(key), default, max)
        };
        let u32_max = u64::from(u32::MAX);
        let ttl = number(self, "_ttl", DEFAULT_CALLBACK_TTL_S, settings.max_ttl);
        let buffer = number(
            self,
            "_request_execution_time_buffer",
            DEFAULT_BUFFER_S,
            86_400,
        );
        let per_bucket = number(
            self,
            "_max_request_by_time_bucket",
            u64::from(DEFAULT_MAX_PER_BUCKET),
            u32_max,
        ) as u32;
        let past = number(
            self,
            "_reject_past_desired_time",
            u64::from(DEFAULT_REJECT_PAST_SECONDS),
            u32_max,
        ) as u32;
        let max_active = number(
            self,
            "_max_queued_callbacks_per_service",
            DEFAULT_MAX_QUEUED.into(),
            u32_max,
        ) as u32;
        let mut throttles = Vec::new();
        for k in ["1", "2"] {
            let count_key = format!("_throttle_callbacks_per_service_{k}");
            let ttl_key = format!("_throttle_ttl_{k}");
            match (get(&count_key), get(&ttl_key)) {
                (None, None) => {}
                (Some(_), Some(_)) => {
                    let count = number(self, &count_key, 1, u32_max) as u32;
                    let window = number(self, &ttl_key, 1, 86_400 * 366);
                    throttles.push((Duration::from_secs(window), count));
                }
                (Some(_), None) | (None, Some(_)) => self.err(
                    format!("{path}.{count_key}"),
                    format!("{count_key} and {ttl_key} go together: set both or neither"),
                ),
            }
        }
        let parameter_limit = number(
            self,
            "_throttle_request_parameters_limit",
            DEFAULT_PARAMETER_LIMIT.into(),
            u32_max,
        ) as u32;
        let max_attempts = number(
            self,
            "_max_ors_submit_attempts",
            DEFAULT_SUBMIT_ATTEMPTS.into(),
            100,
        ) as u32;
        let flag =
            |v: &mut Validator, key: &str, default: bool| v.flag(path, key, get(key), default);
        let check_numbers = flag(self, "_disallow_impossible_phone_numbers", false);
        let premium_check = flag(self, "_disallow_premium_phone_numbers", false);
        let reject_out_of_office_hours = flag(self, "_enable_reject_out_of_office_hours", false);
        let in_queue = match get("_enable_in_queue_checking") {
            None => Some(2),
            Some(v) if v.eq_ignore_ascii_case("true") => Some(2),
            Some(v) if v.eq_ignore_ascii_case("strict") => Some(1),
            Some(v) if v.eq_ignore_ascii_case("false") => None,
            Some(v) => {
                self.err(
                    format!("{path}._enable_in_queue_checking"),
                    format!("'{v}' must be true, false or strict"),
                );
                None
            }
        };
        let recovery = match get("_queue_poll_period_recovery") {
            None => DEFAULT_RECOVERY_MINUTES,
            Some(v) => parse_recovery(v).unwrap_or_else(|| {
                self.err(
                    format!("{path}._queue_poll_period_recovery"),
                    format!("'{v}' must be minutes before now, as GMS writes it (-1440,-120) or a number (1440)"),
                );
                DEFAULT_RECOVERY_MINUTES
            }),
        };
        let mut lookup_keys = vec![crate::callback::record::CUSTOMER_NUMBER.to_string()];
        for k in keys(get("_customer_lookup_keys").unwrap_or("")) {
            if !lookup_keys.contains(&k) {
                lookup_keys.push(k);
            }
        }
        let mandatory_keys = keys(
            get("_mandatory_customer_lookup_keys")
                .unwrap_or(crate::callback::record::CUSTOMER_NUMBER),
        );
        for k in &mandatory_keys {
            if !lookup_keys.contains(k) {
                self.err(
                    format!("{path}._mandatory_customer_lookup_keys"),
                    format!("'{k}' is not one of the lookup keys (_customer_number and _customer_lookup_keys)"),
                );
            }
        }
        let parameter_keys = keys(
            get("_throttle_request_parameters").unwrap_or(crate::callback::record::CUSTOMER_NUMBER),
        );
        if let Some(target) = get("_redirect") {
            if !services.contains_key(target) || target == CALLBACK_WORD {
                self.err(
                    format!("{path}._redirect"),
                    format!("'{target}' is not a configured service"),
                );
            }
        }
        let office = match get("_business_hours_service") {
            None => None,
            Some(name) => match services.get(name).map(|s| &s.kind) {
                Some(ServiceKind::OfficeHours(h)) => Some((name.to_string(), h.clone())),
                _ => {
                    self.err(
                        format!("{path}._business_hours_service"),
                        format!("'{name}' is not a configured office-hours service (_type: builtin, _service: office-hours)"),
                    );
                    None
                }
            },
        };
        let capacity = match get("_capacity_service") {
            None => None,
            Some(name) => match services.get(name).map(|s| &s.kind) {
                Some(ServiceKind::Capacity(c)) => Some(c.clone()),
                _ => {
                    self.err(
                        format!("{path}._capacity_service"),
                        format!("'{name}' is not a configured capacity service (_type: builtin, _service: capacity)"),
                    );
                    None
                }
            },
        };
        let minutes = match get("_request_time_bucket") {
            None => DEFAULT_MINUTES,
            Some(v) => Buckets::parse_minutes(v).unwrap_or_else(|e| {
                self.err(format!("{path}.{}", e.option), e.message);
                DEFAULT_MINUTES
            }),
        };
        let future = match get("_reject_future_desired_time") {
            None => FutureLimit::DEFAULT,
            Some(v) => FutureLimit::parse(v).unwrap_or_else(|e| {
                self.err(format!("{path}.{}", e.option), e.message);
                FutureLimit::DEFAULT
            }),
        };
        let rules = match SlotRules::new(minutes, office, capacity) {
            Ok(r) => r
                .with_max_per_bucket(per_bucket)
                .with_future_limit(future)
                .with_past_tolerance_secs(past),
            Err(e) => {
                self.err(format!("{path}.{}", e.option), e.message);
                return None;
            }
        };
        Some(CallbackService {
            ors,
            rules,
            buffer: Duration::from_secs(buffer),
            ttl: Duration::from_secs(ttl),
            lookup_keys,
            mandatory_keys,
            max_active,
            throttles,
            parameter_keys,
            parameter_limit,
            in_queue,
            check_numbers,
            premium_check,
            reject_out_of_office_hours,
            max_attempts,
            recovery: Duration::from_secs(recovery * 60),
            scheduled_text: get("_scheduled_text")
                .unwrap_or(DEFAULT_SCHEDULED_TEXT)
                .to_string(),
            scheduled_ok_title: get("_scheduled_ok_title")
                .unwrap_or(DEFAULT_SCHEDULED_OK_TITLE)
                .to_string(),
        })
    }

    /// A whole number option from 1 to `max` (`default` when unset); an error names it.
    fn whole(&mut self, path: &str, key: &str, value: Option<&str>, default: u64, max: u64) -> u64 {
        match value {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    self.err(
                        format!("{path}.{key}"),
                        format!("'{v}' must be a whole number from 1 to {max}"),
                    );
                    default
                }
            },
        }
    }

    /// A `true`/`false` option (`default` when unset); an error names it.
    fn flag(&mut self, path: &str, key: &str, value: Option<&str>, default: bool) -> bool {
        match value {
            None => default,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                self.err(
                    format!("{path}.{key}"),
                    format!("'{v}' must be true or false"),
                );
                default
            }
        }
    }

    /// `_type: builtin, _service: office-hours` (§10.1).
    pub(super) fn office_hours(
        &mut self,
        path: &str,
        options: &[(String, String)],
    ) -> Option<Arc<OfficeHours>> {
        self.built_in(path, options, OfficeHours::from_options)
    }

    /// `_type: builtin, _service: capacity` (§10.2).
    pub(super) fn capacity(
        &mut self,
        path: &str,
        options: &[(String, String)],
    ) -> Option<Arc<Capacity>> {
        self.built_in(path, options, Capacity::from_options)
    }

    /// A built-in parsed from its options by the callback logic; its error names the option.
    fn built_in<'a, T>(
        &mut self,
        path: &str,
        options: &'a [(String, String)],
        parse: impl FnOnce(Vec<(&'a str, &'a str)>) -> Result<T, crate::callback::OptionError>,
    ) -> Option<Arc<T>> {
        let pairs = options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match parse(pairs) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                self.err(format!("{path}.{}", e.option), e.message);
                None
            }
        }
    }
}

/// `_queue_poll_period_recovery` in minutes: GMS writes a window of minutes around now
/// (`-1440,-120`), whose far end is how far back a record may have been due; a bare number
/// (`1440`, or `-1440`) is that far end.
fn parse_recovery(v: &str) -> Option<u64> {
    let first = v.split(',').next()?.trim();
    let n: i64 = first.parse().ok()?;
    let n = n.unsigned_abs();
    (1..=525_600).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_windows_read_as_gms_writes_them() {
        assert_eq!(parse_recovery("-1440,-120"), Some(1440));
        assert_eq!(parse_recovery("60"), Some(60));
        assert_eq!(parse_recovery("x"), None);
        assert_eq!(parse_recovery("0"), None);
    }
}
