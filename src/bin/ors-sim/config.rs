//! Per-instance behaviour: the failure-injection config and the status script.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::callback::DialogSpec;

/// One step of a status script: from `after_ms` of session age on, status answers `body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    pub after_ms: u64,
    pub body: Value,
}

/// The status script used while none is given: waiting for an agent, connected after 5 s.
pub fn default_status_script() -> Vec<ScriptStep> {
    vec![
        ScriptStep {
            after_ms: 0,
            body: json!({"status": "waiting-for-agent", "dialog": "/waitingforagent.html"}),
        },
        ScriptStep {
            after_ms: 5000,
            body: json!({"status": "connected", "dialog": "/connected.html"}),
        },
    ]
}

/// Parses a status script (a non-empty JSON array of steps).
pub fn parse_status_script(text: &str) -> Result<Vec<ScriptStep>, String> {
    let steps: Vec<ScriptStep> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if steps.is_empty() {
        return Err("the status script needs at least one step".into());
    }
    Ok(steps)
}

/// The body of the last step due at `elapsed_ms`; before any step is due, the first one,
/// so that a script not starting at 0 still answers something.
pub fn select_status(script: &[ScriptStep], elapsed_ms: u64) -> Option<&Value> {
    script
        .iter()
        .rev()
        .find(|s| s.after_ms <= elapsed_ms)
        .or_else(|| script.first())
        .map(|s| &s.body)
}

/// Failure-injection mode of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Ok,
    Refuse,
    Error,
    Hang,
    Redirect,
}

/// How `/scxml/session/start` answers the new session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartReply {
    #[default]
    Json,
    Text,
}

/// Per-instance behaviour, replaced whole by `PUT /sim/instances/{addr}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    pub latency_ms: u64,
    pub mode: Mode,
    pub error_status: u16,
    pub redirect_to: Option<String>,
    pub status_script: Option<Vec<ScriptStep>>,
    pub start_reply: StartReply,
    /// Closes a kept-alive connection idle this long (0: the default two minutes).
    pub idle_close_ms: u64,
    /// The dialog this instance's callback start requests answer, over the global one.
    pub callback_dialog: Option<DialogSpec>,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            latency_ms: 0,
            mode: Mode::Ok,
            error_status: 503,
            redirect_to: None,
            status_script: None,
            start_reply: StartReply::Json,
            idle_close_ms: 0,
            callback_dialog: None,
        }
    }
}

impl InstanceConfig {
    /// Checks what serde cannot: ranges, and the fields a mode needs.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_reply_status(self.error_status) {
            return Err("error_status must be in 200..=599 (not 204 or 304)".into());
        }
        if self.latency_ms > 600_000 {
            return Err("latency_ms must be at most 600000".into());
        }
        if self.idle_close_ms > 600_000 {
            return Err("idle_close_ms must be at most 600000".into());
        }
        if let Some(to) = &self.redirect_to {
            if !(to.starts_with("http://") || to.starts_with("https://"))
                || to.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                return Err("redirect_to must be an http(s) URL without spaces".into());
            }
        } else if self.mode == Mode::Redirect {
            return Err("mode redirect needs redirect_to".into());
        }
        if matches!(&self.status_script, Some(s) if s.is_empty()) {
            return Err("status_script needs at least one step".into());
        }
        Ok(())
    }
}

/// Statuses that can carry a JSON body, which is what every injected reply has.
pub fn valid_reply_status(s: u16) -> bool {
    (200..=599).contains(&s) && s != 204 && s != 304
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_script_selection() {
        let s = default_status_script();
        assert_eq!(select_status(&s, 0).unwrap()["status"], "waiting-for-agent");
        assert_eq!(
            select_status(&s, 4999).unwrap()["status"],
            "waiting-for-agent"
        );
        assert_eq!(select_status(&s, 5000).unwrap()["status"], "connected");
        assert_eq!(select_status(&s, 99_999).unwrap()["status"], "connected");
        let late = parse_status_script(
            r#"[{"after_ms":100,"body":{"n":1}},{"after_ms":200,"body":{"n":2}}]"#,
        )
        .unwrap();
        assert_eq!(select_status(&late, 50).unwrap()["n"], 1);
        assert_eq!(select_status(&late, 150).unwrap()["n"], 1);
        assert_eq!(select_status(&late, 200).unwrap()["n"], 2);
        assert!(select_status(&[], 0).is_none());
        assert!(parse_status_script("[]").is_err());
        assert!(parse_status_script(r#"[{"after_ms":0}]"#).is_err());
        assert!(parse_status_script(r#"[{"after_ms":0,"body":1,"x":2}]"#).is_err());
    }

    #[test]
    fn instance_configs() {
        let c: InstanceConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, InstanceConfig::default());
        assert_eq!(c.error_status, 503);
        let c: InstanceConfig = serde_json::from_str(
            r#"{"mode":"redirect","redirect_to":"http://127.0.0.1:1","start_reply":"text"}"#,
        )
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.start_reply, StartReply::Text);
        assert!(serde_json::from_str::<InstanceConfig>(r#"{"mode":"down"}"#).is_err());
        assert!(serde_json::from_str::<InstanceConfig>(r#"{"latency":1}"#).is_err());
        let c: InstanceConfig = serde_json::from_str(r#"{"mode":"redirect"}"#).unwrap();
        assert!(c.validate().is_err());
        let c: InstanceConfig = serde_json::from_str(r#"{"error_status":204}"#).unwrap();
        assert!(c.validate().is_err());
        let c: InstanceConfig =
            serde_json::from_str(r#"{"callback_dialog":"DisplayMenu"}"#).unwrap();
        assert!(c.callback_dialog.is_some());
        assert!(serde_json::from_str::<InstanceConfig>(r#"{"callback_dialog":"Menu"}"#).is_err());
    }
}
