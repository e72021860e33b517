//! A callback's options (contract `gms-callback.md` §3.1, §7.1): what a create's request adds
//! to the service's configured options, `$token$` substitution, and the parameters a
//! submission sends ORS.
//!
//! A record keeps only what its request changed ([`CallbackRecord::options`]: request values
//! that took effect, and option values a token changed), not the whole merged set: a service
//! may have a hundred options, and a scheduled callback may wait a month. A submission lays
//! them over the service's configured options again.

use std::borrow::Cow;

use crate::callback::record::CallbackRecord;
use crate::callback::time::format_utc;
use crate::config::{ServiceConfig, CALLBACK_OPTIONS, GATEWAY_OPTIONS};
use crate::ors::forward::push_ids;
use crate::params::Params;

/// Request parameters of a create that are the record's own fields or reserved (§3.1): never
/// options.
pub const CREATE_FIELDS: &[&str] = &[
    "_customer_number",
    "_desired_time",
    "_new_desired_time",
    "_callback_state",
    "_callback_reason",
    "_id",
    "_service_name",
    "_ors_session_id",
    "_expiration_time",
    "_redirect",
    "_url",
];

/// Whether a request may contribute option `name` at all: not the gateway's own options, not
/// those it interprets for callbacks, not the record's fields.
fn requestable(name: &str) -> bool {
    !GATEWAY_OPTIONS.contains(&name)
        && !CALLBACK_OPTIONS.contains(&name)
        && !CREATE_FIELDS.contains(&name)
}

/// The options a create's request changes (§3.1): an overwritable configured option the
/// request gives, an option the service does not configure, and every option value (merged)
/// whose `$token$`s the request's user data replace. Configured order, then the request's.
pub fn request_options(svc: &ServiceConfig, params: &Params) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, configured) in &svc.options {
        if GATEWAY_OPTIONS.contains(&k.as_str()) {
            continue;
        }
        let requested = (requestable(k) && svc.is_overwritable(k))
            .then(|| params.text(k))
            .flatten();
        let value = substitute(requested.unwrap_or(configured), params);
        if value != configured.as_str() {
            out.push((k.clone(), value.into_owned()));
        }
    }
    for (k, v) in params.service_params() {
        if svc.option(k).is_none() && requestable(k) {
            out.push((k.to_string(), substitute(v, params).into_owned()));
        }
    }
    out
}

/// The effective value of option `name` for a callback: its request's, else the configured.
pub fn effective<'a>(
    svc: &'a ServiceConfig,
    record: &'a CallbackRecord,
    name: &str,
) -> Option<&'a str> {
    record
        .options
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .or_else(|| svc.option(name))
}

/// Replaces each `$name$` in `value` with the request's user-data value `name` (§3.1, GMS
/// §1.13); a token without a value stays as written.
pub fn substitute<'a>(value: &'a str, params: &Params) -> Cow<'a, str> {
    if !value.contains('$') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('$') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('$') else { break };
        let name = &after[..end];
        match token_value(name, params) {
            Some(v) => {
                out.push_str(&rest[..start]);
                out.push_str(v);
                rest = &after[end + 1..];
            }
            None => {
                // Not a token: keep this `$` and look again from the next one.
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The value of token `name`: a user-data parameter (no leading `_`) of that name.
fn token_value<'a>(name: &str, params: &'a Params) -> Option<&'a str> {
    let word = !name.is_empty()
        && !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    word.then(|| params.text(name)).flatten()
}

/// What the submission of `record` sends ORS (§7.1): every configured option (less the
/// gateway's own) with the record's changes laid over, the options only its request gave,
/// `_customer_number` and `_desired_time`, then `_service_id`, `_data_id`, `_service_name`.
pub fn submission(svc: &ServiceConfig, record: &CallbackRecord) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(svc.options.len() + 8);
    for (k, v) in &svc.options {
        if !GATEWAY_OPTIONS.contains(&k.as_str()) && !CREATE_FIELDS.contains(&k.as_str()) {
            out.push((
                k.clone(),
                effective(svc, record, k).unwrap_or(v).to_string(),
            ));
        }
    }
    for (k, v) in &record.options {
        if svc.option(k).is_none() {
            out.push((k.clone(), v.clone()));
        }
    }
    out.push(("_customer_number".into(), record.customer_number.clone()));
    out.push(("_desired_time".into(), format_utc(record.desired)));
    push_ids(&mut out, record.id, record.data_id, &svc.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BuiltinKind, ServiceKind};

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::texts(pairs)
    }

    fn service() -> ServiceConfig {
        ServiceConfig {
            name: "cb".into(),
            kind: ServiceKind::Builtin(BuiltinKind::RequestInteraction),
            options: [
                ("_type", "ors"),
                ("_ors", "http://127.0.0.1:7210"),
                ("_target", "Customer_Service"),
                ("_urs_vq_name", "$vq$"),
                ("_ttl", "86400"),
                ("_media_type", "voice"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            overwritable: vec!["_target".into(), "_ttl".into()],
        }
    }

    #[test]
    fn tokens_are_replaced_by_user_data_only() {
        let p = params(&[("vq", "VQ_1"), ("_x", "no")]);
        assert_eq!(substitute("$vq$", &p), "VQ_1");
        assert_eq!(substitute("a-$vq$-$vq$", &p), "a-VQ_1-VQ_1");
        assert_eq!(substitute("$_x$ $none$ $", &p), "$_x$ $none$ $");
        assert_eq!(substitute("cost $5 $vq$", &p), "cost $5 VQ_1");
        assert!(matches!(substitute("plain", &p), Cow::Borrowed(_)));
    }

    #[test]
    fn a_request_changes_only_what_it_may() {
        let p = params(&[
            ("_target", "Sales"),
            ("_media_type", "chat"),
            ("_ttl", "5"),
            ("_ors", "http://evil"),
            ("_urs_virtual_queue", "SIP_VQ"),
            ("_request_time_bucket", "60"),
            ("_desired_time", "2026-03-02T14:30:00Z"),
            ("vq", "VQ_9"),
        ]);
        let got = request_options(&service(), &p);
        assert_eq!(
            got,
            [
                ("_target".to_string(), "Sales".to_string()),
                ("_urs_vq_name".into(), "VQ_9".into()),
                ("_urs_virtual_queue".into(), "SIP_VQ".into()),
            ]
        );
    }

    #[test]
    fn a_submission_lays_the_record_over_the_configuration() {
        let mut r = CallbackRecord::new(
            "cb",
            "5551234",
            "2026-03-02T14:30:00Z".parse().unwrap(),
            "2026-03-03T14:30:00Z".parse().unwrap(),
            "2026-03-02T10:00:00Z".parse().unwrap(),
        );
        r.options = vec![
            ("_target".into(), "Sales".into()),
            ("_urs_virtual_queue".into(), "SIP_VQ".into()),
        ];
        let sent = submission(&service(), &r);
        let names: Vec<&str> = sent.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "_target",
                "_urs_vq_name",
                "_ttl",
                "_media_type",
                "_urs_virtual_queue",
                "_customer_number",
                "_desired_time",
                "_service_id",
                "_data_id",
                "_service_name"
            ]
        );
        assert_eq!(sent[0].1, "Sales");
        assert_eq!(sent[6].1, "2026-03-02T14:30:00.000Z");
    }
}
