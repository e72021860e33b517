//! The ORS session protocol (contract 6.1, 6.2): start, request, terminate, each tried across
//! nodes up to `max_ors_request_attempts` times on a connect failure, a timeout or a 5xx; a
//! 4xx is ORS's answer and is not retried; a 307 is followed once, to a configured node only.

use std::sync::Arc;

use log::info;

use super::client::{OrsFailure, OrsReply};
use super::forward::{encode, Payload};
use super::nodes::Node;
use super::Ors;
use crate::config::{OrsServiceConfig, ServiceConfig};
use crate::error::ApiError;
use crate::reply::{Reply, JSON};
use crate::store::{OrsSession, ServiceRecord};

/// Longest session id accepted from ORS.
const MAX_SESSION_ID: usize = 256;

/// A started ORS session and the node that owns it.
#[derive(Debug, Clone)]
pub struct Started {
    /// Owning node's URL.
    pub node: String,
    /// ORS's session id.
    pub session_id: String,
    /// The start request's reply, if one was sent.
    pub start_reply: Option<OrsReply>,
}

/// Why a start produced no session.
#[derive(Debug, Clone)]
pub enum StartError {
    /// No usable answer from any node.
    Failed(ApiError),
    /// ORS answered the start with this non-2xx status: a configuration or ORS problem, not the
    /// client's, so the client gets a 502 rather than ORS's own error body.
    Refused(u16),
}

impl StartError {
    /// The client's error (its `Display` is the log line, detail included).
    pub fn into_api_error(self) -> ApiError {
        match self {
            StartError::Failed(e) => e,
            StartError::Refused(status) => ApiError::ors_failed(
                format!("ORS request failed: ORS refused the session start with HTTP {status}."),
                "",
            ),
        }
    }
}

/// An ORS reply as the client's reply: ORS's status code and body (JSON unless ORS said else).
pub fn relay(reply: OrsReply) -> Reply {
    match reply.content_type {
        Some(ct) => Reply::new(reply.status, ct, reply.body),
        None => Reply::new(reply.status, JSON, reply.body),
    }
}

/// The error after the last attempt failed (`last`: the node tried and what went wrong): the
/// client reads the kind of failure; the node and the connector's words are for the log.
fn give_up(last: Option<(&str, OrsFailure)>) -> ApiError {
    match last {
        Some((node, f)) => {
            let message = f.message().to_string();
            let detail = format!("{node}: {}", f.detail());
            if f.is_timeout() {
                ApiError::OrsTimeout { message, detail }
            } else {
                ApiError::OrsFailed { message, detail }
            }
        }
        None => ApiError::ors_failed("ORS request failed: no ORS node is configured.", ""),
    }
}

/// Reads ORS's session id: JSON `sessionid` (or `id`), else the body as plain text.
pub fn session_id(body: &[u8]) -> Option<String> {
    let id = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => map
            .get("sessionid")
            .or_else(|| map.get("id"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        Ok(serde_json::Value::String(s)) => Some(s),
        Ok(_) => None,
        Err(_) => std::str::from_utf8(body).ok().map(|s| s.trim().to_string()),
    }?;
    let ok =
        !id.is_empty() && id.len() <= MAX_SESSION_ID && id.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(id)
}

impl Ors {
    /// Sends one message, trying `candidates` in turn (wrapping around) until an attempt gets
    /// an answer that is not a 5xx. Returns the node that answered and its reply.
    pub async fn send(
        &self,
        candidates: &[Arc<Node>],
        path: &str,
        payload: &Payload,
        follow_redirect: bool,
    ) -> Result<(Arc<Node>, OrsReply), ApiError> {
        let mut last: Option<(&str, OrsFailure)> = None;
        if candidates.is_empty() {
            return Err(give_up(None));
        }
        for attempt in 0..self.attempts as usize {
            let node = &candidates[attempt % candidates.len()];
            let outcome = match self
                .client
                .post(&node.addr, path, payload.body.clone(), &payload.headers)
                .await
            {
                Ok(r) if r.status == 307 && follow_redirect => self.follow(node, r, payload).await,
                other => other.map(|r| (node.clone(), r)),
            };
            let label = match &outcome {
                Ok((_, r)) if r.status >= 500 => "http_5xx",
                Ok((_, r)) if (300..400).contains(&r.status) => "redirect_loop",
                Ok(_) => "answered",
                Err(OrsFailure::Connect(_)) => "connect_error",
                Err(OrsFailure::Timeout(_)) => "timeout",
                Err(OrsFailure::Broken(_)) => "broken",
            };
            crate::metrics::ORS_REQUESTS
                .with_label_values(&[node.addr.url.as_str(), label])
                .inc();
            match outcome {
                // A 5xx is a node in trouble; a redirect still standing after the one we follow
                // is a loop. Neither is an answer for the client: try the next node.
                Ok((_, r)) if r.status >= 500 || (300..400).contains(&r.status) => {
                    last = Some((
                        &node.addr.url,
                        OrsFailure::Broken(format!("HTTP {}", r.status)),
                    ));
                }
                Ok(answer) => return Ok(answer),
                Err(f) => {
                    if matches!(f, OrsFailure::Connect(_)) {
                        node.set_healthy(false);
                    }
                    last = Some((&node.addr.url, f));
                }
            }
        }
        Err(give_up(last))
    }

    /// Follows one 307 to the configured node its `Location` names.
    async fn follow(
        &self,
        from: &Arc<Node>,
        reply: OrsReply,
        payload: &Payload,
    ) -> Result<(Arc<Node>, OrsReply), OrsFailure> {
        let location = reply
            .location
            .ok_or_else(|| OrsFailure::Broken("307 without Location".into()))?;
        let (node, path) = if location.starts_with('/') {
            (from.clone(), location.as_str())
        } else {
            self.nodes.resolve_location(&location).ok_or_else(|| {
                OrsFailure::Broken(format!(
                    "307 to '{location}', which is not a configured ORS node"
                ))
            })?
        };
        let r = self
            .client
            .post(&node.addr, path, payload.body.clone(), &payload.headers)
            .await?;
        Ok((node, r))
    }

    /// Starts a session (`/scxml/session/start`), then sends the start request on it.
    pub async fn start_session(
        &self,
        svc: &ServiceConfig,
        conf: &OrsServiceConfig,
        payload: &Payload,
    ) -> Result<Started, StartError> {
        let list = self.nodes.list(&svc.name).ok_or_else(|| {
            StartError::Failed(ApiError::Internal(format!("no node list for {}", svc.name)))
        })?;
        let (node, reply) = self
            .send(&list.order(), "/scxml/session/start", payload, false)
            .await
            .map_err(StartError::Failed)?;
        if !(200..300).contains(&reply.status) {
            return Err(StartError::Refused(reply.status));
        }
        let session_id = session_id(&reply.body).ok_or_else(|| {
            StartError::Failed(ApiError::ors_failed(
                "ORS request failed: no session id in the start reply.",
                format!("start reply of {}", node.addr.url),
            ))
        })?;
        let mut started = Started {
            node: node.addr.url.clone(),
            session_id,
            start_reply: None,
        };
        if !conf.start_request.is_empty() {
            let payload = payload.without_src();
            let reply = self
                .on_session(
                    svc,
                    &started.node,
                    &started.session_id,
                    &conf.start_request,
                    &payload,
                )
                .await
                .map_err(StartError::Failed)?;
            started.start_reply = Some(reply);
        }
        Ok(started)
    }

    /// Sends a request to a session: the owner first, then the service's other nodes.
    pub async fn on_session(
        &self,
        svc: &ServiceConfig,
        owner: &str,
        session_id: &str,
        request: &str,
        payload: &Payload,
    ) -> Result<OrsReply, ApiError> {
        let path = format!(
            "/scxml/session/{}/request/{}",
            encode(session_id),
            encode(request)
        );
        self.to_owner(svc, owner, &path, payload).await
    }

    async fn to_owner(
        &self,
        svc: &ServiceConfig,
        owner: &str,
        path: &str,
        payload: &Payload,
    ) -> Result<OrsReply, ApiError> {
        let mut candidates: Vec<Arc<Node>> =
            self.nodes.by_url(owner).cloned().into_iter().collect();
        if let Some(list) = self.nodes.list(&svc.name) {
            // Fallbacks do not turn the rotation: only session starts spread the load.
            candidates.extend(list.fallbacks().into_iter().filter(|n| n.addr.url != owner));
        }
        self.send(&candidates, path, payload, true)
            .await
            .map(|(_, r)| r)
    }

    /// The started session of a record, or the error a client gets while it has none.
    pub fn session_of(record: &ServiceRecord) -> Result<(&str, &str), ApiError> {
        match &record.ors {
            Some(OrsSession::Started { node, session_id }) => Ok((node, session_id)),
            Some(OrsSession::Pending) => Err(ApiError::Unavailable(
                "the ORS session is still starting".into(),
            )),
            Some(OrsSession::Failed(m)) => Err(ApiError::BadRequest(format!(
                "the ORS session never started: {m}"
            ))),
            None => Err(ApiError::BadRequest(
                "this service has no ORS session".into(),
            )),
        }
    }

    /// A request on a record's session (contract 6.2).
    pub async fn request(
        &self,
        svc: &ServiceConfig,
        record: &ServiceRecord,
        request: &str,
        payload: &Payload,
    ) -> Result<OrsReply, ApiError> {
        let (node, sid) = Self::session_of(record)?;
        self.on_session(svc, node, sid, request, payload).await
    }

    /// Terminates a record's session, best effort: failures are logged, not returned.
    pub async fn terminate(&self, svc: &ServiceConfig, record: &ServiceRecord, payload: &Payload) {
        let Ok((node, sid)) = Self::session_of(record) else {
            return;
        };
        if let Err(e) = self.terminate_session(svc, node, sid, payload).await {
            info!("terminate of ORS session {sid} on {node} failed: {e}");
        }
    }

    /// Terminates session `session_id` owned by `owner` (contract 6.2): ORS's answer, or why
    /// there was none.
    pub async fn terminate_session(
        &self,
        svc: &ServiceConfig,
        owner: &str,
        session_id: &str,
        payload: &Payload,
    ) -> Result<OrsReply, ApiError> {
        let path = format!("/scxml/session/{}/terminate", encode(session_id));
        self.to_owner(svc, owner, &path, payload).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_from_json_or_text() {
        assert_eq!(
            session_id(br#"{"sessionid":"abc"}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(session_id(br#"{"id":"x1"}"#).as_deref(), Some("x1"));
        assert_eq!(session_id(b" 0123-45 \n").as_deref(), Some("0123-45"));
        assert_eq!(session_id(br#"{"other":1}"#), None);
        assert_eq!(session_id(b""), None);
        assert_eq!(session_id(b"has space"), None);
    }
}
