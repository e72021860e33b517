//! The optional service test page (`gms.test_page: true`), like GMS's `servicetest.html`: a
//! plain HTML page with a little JavaScript, served from the binary, that creates services, polls
//! their status and matches calls through the public Service API, and creates, queries and
//! cancels callbacks through the Callback Services API. It is for labs; off, its paths
//! are the 404 of any unknown API path.
//!
//! It needs no admin credentials because it holds nothing secret: the page is static apart from
//! the configured services' names and types (never their ORS URLs or options), and everything it
//! does is a public API call the browser makes on the user's behalf.

use serde::Serialize;

use crate::config::{ApiConfig, BuiltinKind, ServiceKind};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::routes::PageFile;

const HTML: &str = include_str!("test_page.html");
const SCRIPT: &str = include_str!("test_page.js");
const STYLE: &str = include_str!("test_page.css");

/// Where the service list goes in [`HTML`]: inside a JSON data block, never executed.
const SERVICES_SLOT: &str = "{{SERVICES}}";

/// Scripts and styles only from the page's own files (no inline script, so an injected tag
/// cannot run), requests only to this origin, no framing, no form posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One configured service as the page lists it.
#[derive(Serialize)]
struct ServiceEntry<'a> {
    name: &'a str,
    /// `builtin`, `ors` or `callback`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The built-in's name (`request-interaction`, ...); empty for ORS services.
    builtin: &'static str,
    /// Whether `{id}/{request}` (status, update, ...) is allowed (contract 4.2).
    requests: bool,
}

/// `GET {root}/admin/servicetest.{html,js,css}`: a file of the page (the dispatch sends
/// these paths here only when `gms.test_page` is on).
pub fn serve(config: &ApiConfig, file: PageFile) -> Result<Reply, ApiError> {
    let (content_type, body) = match file {
        PageFile::Html => ("text/html; charset=utf-8", render(config)),
        PageFile::Script => ("text/javascript; charset=utf-8", SCRIPT.to_string()),
        PageFile::Style => ("text/css; charset=utf-8", STYLE.to_string()),
    };
    Ok(Reply::new(200, content_type, body)
        .with_header("Content-Security-Policy", CSP)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("Cache-Control", "no-store"))
}

/// The page with the configured services, sorted by name, in its JSON data block.
fn render(config: &ApiConfig) -> String {
    let mut services: Vec<ServiceEntry> = config
        .services
        .values()
        .map(|s| {
            let (kind, builtin) = match &s.kind {
                ServiceKind::Builtin(b) => ("builtin", builtin_name(*b)),
                ServiceKind::Ors(_) => ("ors", ""),
                ServiceKind::Callback(_) => ("callback", ""),
                ServiceKind::OfficeHours(_) => ("builtin", "office-hours"),
                ServiceKind::Capacity(_) => ("builtin", "capacity"),
            };
            ServiceEntry {
                name: &s.name,
                kind,
                builtin,
                requests: s.accepts_requests(),
            }
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(b.name));
    HTML.replacen(SERVICES_SLOT, &script_safe_json(&services), 1)
}

fn builtin_name(b: BuiltinKind) -> &'static str {
    match b {
        BuiltinKind::RequestInteraction => "request-interaction",
        BuiltinKind::RequestAccess => "request-access",
        BuiltinKind::MatchInteraction => "match-interaction",
    }
}

/// JSON that cannot end its `<script>` element or open a comment there: `<`, `>` and `&` are
/// written as `\u` escapes, which JSON.parse reads back as the same characters.
fn script_safe_json<T: Serialize>(value: &T) -> String {
    // A list of plain structs of strings and booleans always serializes.
    let json = serde_json::to_string(value).unwrap_or_else(|_| "[]".into());
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> ApiConfig {
        let y = format!(
            "gms:\n  listen: ['127.0.0.1:1']\n  test_page: true\n  resources: {{DNIS: ['1']}}\n  services:\n    request-interaction: {{_type: builtin, _service: request-interaction}}\n{extra}"
        );
        ApiConfig::from_yaml(&y).unwrap()
    }

    /// The JSON between the data block's tags, as the page's script reads it.
    fn data_block(html: &str) -> serde_json::Value {
        let start = html.find(r#"id="services">"#).unwrap() + r#"id="services">"#.len();
        let end = start + html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..end]).unwrap()
    }

    #[test]
    fn the_page_lists_services_by_name_with_their_types() {
        let c = config("    request-inbound-poll: {_type: ors, _service: 'http://x/p.scxml', _ors: 'http://127.0.0.1:9'}\n");
        let r = serve(&c, PageFile::Html).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.content_type.starts_with("text/html"));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "Content-Security-Policy" && v.contains("script-src 'self'")));
        let html = String::from_utf8(r.body.to_vec()).unwrap();
        let list = data_block(&html);
        assert_eq!(list[0]["name"], "request-inbound-poll");
        assert_eq!(list[0]["type"], "ors");
        assert_eq!(list[0]["requests"], true);
        assert_eq!(list[1]["name"], "request-interaction");
        assert_eq!(list[1]["builtin"], "request-interaction");
        // The ORS service's URLs stay on the server.
        assert!(!html.contains("http://x/p.scxml") && !html.contains("127.0.0.1:9"));
    }

    #[test]
    fn a_hostile_service_name_stays_data() {
        // Names cannot hold '/' (so no `</script>`), but `<!--<script>` would switch the
        // HTML parser into a state where the data block's own end tag no longer ends it.
        let evil = r#"x<!--<script>"&>"#;
        let c = config(&format!(
            "    '{evil}': {{_type: builtin, _service: match-interaction}}\n"
        ));
        let html = String::from_utf8(serve(&c, PageFile::Html).unwrap().body.to_vec()).unwrap();
        assert!(!html.contains("<!--<script>"), "{html}");
        let list = data_block(&html);
        assert!(list.as_array().unwrap().iter().any(|s| s["name"] == evil));
    }

    #[test]
    fn off_by_default_and_served_with_its_types_when_on() {
        // Off, the dispatch answers these paths as unknown (tests/test_page.rs checks it).
        let c = ApiConfig::from_yaml("gms:\n  listen: ['127.0.0.1:1']\n").unwrap();
        assert!(!c.test_page);
        let c = config("");
        let r = serve(&c, PageFile::Script).unwrap();
        assert!(r.content_type.starts_with("text/javascript"));
    }
}
