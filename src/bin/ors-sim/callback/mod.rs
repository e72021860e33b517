//! Callback strategy mode: its configuration and dialogs. What it does lives beside:
//! `strategy` answers the gateway's ORS requests, `registry` keeps the callbacks and takes
//! their steps, `report` sends the state PUTs.

mod registry;
mod report;
mod strategy;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub use registry::{Callbacks, StepResult};
pub use strategy::{end_session, ors_request, QUEUE_POSITION};

/// The callback states of the contract (gms-callback.md 7.2) that ORS may report.
pub const STATES: [&str; 5] = ["QUEUED", "ROUTING", "PROCESSING", "PAUSED", "COMPLETED"];

/// The final state: a step reporting it ends the callback.
pub const COMPLETED: &str = "COMPLETED";

/// A built-in dialog, by its `_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DialogKind {
    ConfirmationDialog,
    DialNumber,
    DisplayMenu,
}

impl DialogKind {
    /// The dialog named `name` (as in `_sim_dialog`).
    pub fn parse(name: &str) -> Option<DialogKind> {
        serde_json::from_value(Value::String(name.to_string())).ok()
    }
}

/// What a start request answers: a built-in dialog by name, or any object as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DialogSpec {
    Named(DialogKind),
    Custom(Map<String, Value>),
}

/// How the state PUT carries its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportBody {
    #[default]
    Form,
    Json,
}

/// One state report of a callback's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Wait after the previous step (or the start request) when steps run on their own.
    #[serde(default)]
    pub delay_ms: u64,
}

impl Step {
    /// Checks the state and the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !STATES.contains(&self.state.as_str()) {
            return Err(format!(
                "state {:?} is not one of {}",
                self.state,
                STATES.join(", ")
            ));
        }
        if self.reason.as_deref() == Some("") {
            return Err("a reason, when given, is not empty".into());
        }
        if self.delay_ms > 600_000 {
            return Err("delay_ms must be at most 600000".into());
        }
        Ok(())
    }
}

/// The callback mode's configuration, replaced whole by `PUT /sim/callback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Request names that start a callback (the gateway's `_start_request`).
    pub start_requests: Vec<String>,
    pub dialog: DialogSpec,
    /// The gateway's API root, e.g. `http://127.0.0.1:8080/genesys/1`.
    pub gms_base: Option<String>,
    pub gms_user: Option<String>,
    pub gms_password: Option<String>,
    /// Whether steps run on a timer (else only `POST /sim/callbacks/{id}/state` takes them).
    pub auto: bool,
    pub steps: Vec<Step>,
    pub report_body: ReportBody,
    pub eta_per_position_s: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        let step = |state: &str, reason: Option<&str>, delay_ms| Step {
            state: state.into(),
            reason: reason.map(Into::into),
            delay_ms,
        };
        CallbackConfig {
            start_requests: vec!["start".into()],
            dialog: DialogSpec::Named(DialogKind::ConfirmationDialog),
            gms_base: None,
            gms_user: None,
            gms_password: None,
            auto: true,
            steps: vec![
                step("QUEUED", None, 500),
                step("ROUTING", None, 2000),
                step("PROCESSING", None, 2000),
                step(COMPLETED, Some("AGENT_CONNECTED"), 3000),
            ],
            report_body: ReportBody::Form,
            eta_per_position_s: 60,
        }
    }
}

impl CallbackConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.start_requests.is_empty()
            || self
                .start_requests
                .iter()
                .any(|n| n.is_empty() || n.contains('/'))
        {
            return Err("start_requests needs at least one name, none empty or with '/'".into());
        }
        if let Some(base) = &self.gms_base {
            let ok = base.strip_prefix("http://").is_some_and(|rest| {
                !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['?', '#'])
            }) && base.parse::<http::Uri>().is_ok();
            if !ok {
                return Err(format!(
                    "gms_base must be an http:// URL without query, got {base:?}"
                ));
            }
        }
        if self.gms_user.is_some() != self.gms_password.is_some() {
            return Err("gms_user and gms_password go together".into());
        }
        if self.steps.len() > 32 {
            return Err("at most 32 steps".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            s.validate().map_err(|e| format!("steps[{i}]: {e}"))?;
        }
        if self.eta_per_position_s > 86_400 {
            return Err("eta_per_position_s must be at most 86400".into());
        }
        Ok(())
    }

    /// The API root the dialogs' URLs point at.
    fn base(&self) -> &str {
        self.gms_base
            .as_deref()
            .map_or("/genesys/1", |b| b.trim_end_matches('/'))
    }
}

/// Everything but RFC 3986 unreserved characters is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` as one percent-encoded path segment.
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The dialog `spec` for callback `service_id`.
pub fn render(spec: &DialogSpec, cfg: &CallbackConfig, service_id: &str) -> Value {
    let kind = match spec {
        DialogSpec::Custom(obj) => return Value::Object(obj.clone()),
        DialogSpec::Named(kind) => kind,
    };
    match kind {
        DialogKind::ConfirmationDialog => json!({
            "_action": "ConfirmationDialog",
            "_text": "You will receive the call shortly",
            "_ok_title": "Ok",
            "_dialog_id": "0",
        }),
        DialogKind::DialNumber => json!({
            "_action": "DialNumber",
            "_tel_url": "tel:+18005550100",
            "_label": "Call us now",
            "_dialog_id": "0",
        }),
        DialogKind::DisplayMenu => {
            let url = |action: &str| {
                format!(
                    "{}/service/{}/{action}",
                    cfg.base(),
                    encode_segment(service_id)
                )
            };
            json!({
                "_action": "DisplayMenu",
                "_label": "How can we help you?",
                "_dialog_id": "0",
                "_content": [{
                    "_group_name": "Your callback",
                    "_group_content": [
                        {"_label": "Talk to an agent", "_user_action_url": url("menu-agent")},
                        {"_label": "Cancel the callback", "_user_action_url": url("cancel")},
                    ],
                }],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs() {
        let c: CallbackConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, CallbackConfig::default());
        assert!(c.validate().is_ok());
        let states: Vec<&str> = c.steps.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(states, ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);

        let parse = |s: &str| -> Result<CallbackConfig, String> {
            let c: CallbackConfig = serde_json::from_str(s).map_err(|e| e.to_string())?;
            c.validate().map(|_| c)
        };
        let c = parse(
            r#"{"start_requests":["start","gms.start"],"dialog":{"_action":"X"},
                "gms_base":"http://127.0.0.1:1/genesys/1/","gms_user":"a","gms_password":"b",
                "report_body":"json","steps":[{"state":"COMPLETED","reason":"CANCELLED"}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.dialog,
            DialogSpec::Custom(json!({"_action":"X"}).as_object().unwrap().clone())
        );
        assert_eq!(c.base(), "http://127.0.0.1:1/genesys/1");
        assert_eq!(c.report_body, ReportBody::Json);
        assert_eq!(c.steps[0].delay_ms, 0);

        for bad in [
            r#"{"start_requests":[]}"#,
            r#"{"start_requests":["a/b"]}"#,
            r#"{"dialog":"Menu"}"#,
            r#"{"dialog":3}"#,
            r#"{"gms_base":"https://h"}"#,
            r#"{"gms_base":"http://"}"#,
            r#"{"gms_base":"http://h/x?y"}"#,
            r#"{"gms_user":"a"}"#,
            r#"{"steps":[{"state":"queued"}]}"#,
            r#"{"steps":[{"state":"QUEUED","reason":""}]}"#,
            r#"{"steps":[{"state":"QUEUED","delay_ms":600001}]}"#,
            r#"{"steps":[{"state":"QUEUED","x":1}]}"#,
            r#"{"eta_per_position_s":100000}"#,
            r#"{"bogus":true}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dialogs() {
        let cfg = CallbackConfig::default();
        let named = |k| render(&DialogSpec::Named(k), &cfg, "id 1");
        assert_eq!(
            named(DialogKind::ConfirmationDialog),
            json!({"_action":"ConfirmationDialog","_text":"You will receive the call shortly",
                   "_ok_title":"Ok","_dialog_id":"0"})
        );
        let dial = named(DialogKind::DialNumber);
        assert!(dial["_tel_url"].as_str().unwrap().starts_with("tel:"));
        let menu = named(DialogKind::DisplayMenu);
        let items = menu["_content"][0]["_group_content"].as_array().unwrap();
        assert_eq!(
            items[1]["_user_action_url"],
            "/genesys/1/service/id%201/cancel"
        );
        assert_eq!(
            DialogKind::parse("DialNumber"),
            Some(DialogKind::DialNumber)
        );
        assert_eq!(DialogKind::parse("dialnumber"), None);
    }
}
