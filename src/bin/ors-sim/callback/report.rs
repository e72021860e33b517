//! The state PUT to the gateway's Callback Services API, as a callback strategy's DFM sends
//! it (gms-callback.md 7.2), over a fresh hyper client connection.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

use super::registry::Callback;
use super::{encode_segment, CallbackConfig, ReportBody, Step};

/// A whole report, connect to answer.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `step` of `cb`; the gateway's status code, or why there is none.
pub async fn send(cfg: &CallbackConfig, cb: &Callback, step: &Step) -> Result<u16, String> {
    let base = cfg.gms_base.as_deref().ok_or("no gms_base: not reported")?;
    let name = cb
        .service_name
        .as_deref()
        .ok_or("the session start had no _service_name: not reported")?;
    let url = format!(
        "{}/service/callback/{}/{}",
        base.trim_end_matches('/'),
        encode_segment(name),
        encode_segment(&cb.service_id)
    );
    let (content_type, body) = body(cfg.report_body, step);
    let auth = match (&cfg.gms_user, &cfg.gms_password) {
        (Some(u), Some(p)) => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            Some(format!("Basic {token}"))
        }
        _ => None,
    };
    match tokio::time::timeout(REPORT_TIMEOUT, put(&url, auth, content_type, body)).await {
        Ok(r) => r.map_err(|e| format!("PUT {url}: {e}")),
        Err(_) => Err(format!("PUT {url}: no answer within {REPORT_TIMEOUT:?}")),
    }
}

/// `_callback_state` and, when set, `_callback_reason`, as a form or JSON.
fn body(kind: ReportBody, step: &Step) -> (&'static str, Vec<u8>) {
    match kind {
        ReportBody::Form => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("_callback_state", &step.state);
            if let Some(r) = &step.reason {
                form.append_pair("_callback_reason", r);
            }
            let body = form.finish().into_bytes();
            ("application/x-www-form-urlencoded", body)
        }
        ReportBody::Json => {
            let mut v = json!({ "_callback_state": step.state });
            if let Some(r) = &step.reason {
                v["_callback_reason"] = r.as_str().into();
            }
            (
                "application/json",
                serde_json::to_vec(&v).unwrap_or_default(),
            )
        }
    }
}

async fn put(
    url: &str,
    auth: Option<String>,
    content_type: &'static str,
    body: Vec<u8>,
) -> Result<u16, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let authority = uri.authority().ok_or("URL without host")?.clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = TcpStream::connect((host, authority.port_u16().unwrap_or(80)))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(Method::PUT)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(HOST, authority.as_str())
        .header(CONTENT_TYPE, content_type);
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let answer = async {
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        Ok::<u16, hyper::Error>(status)
    }
    .await;
    driver.abort();
    answer.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_bodies() {
        let step = Step {
            state: "COMPLETED".into(),
            reason: Some("AGENT CONNECTED".into()),
            delay_ms: 0,
        };
        let (ct, b) = body(ReportBody::Form, &step);
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(
            b,
            b"_callback_state=COMPLETED&_callback_reason=AGENT+CONNECTED"
        );
        let (ct, b) = body(ReportBody::Json, &step);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"_callback_state":"COMPLETED","_callback_reason":"AGENT CONNECTED"})
        );
        let plain = Step {
            reason: None,
            ..step
        };
        assert_eq!(
            body(ReportBody::Form, &plain).1,
            b"_callback_state=COMPLETED"
        );
    }
}
