//! ORS parameters: strict form decoding of bodies, lenient decoding of paths and queries.

use percent_encoding::percent_decode;
use serde_json::{Map, Value};

use crate::http::Request;

/// Strict `application/x-www-form-urlencoded` decoding: `+` is a space, a `%` must start a
/// valid escape and the result must be UTF-8, so that a gateway encoding bug shows as a
/// 400 rather than as silently mangled data (which `form_urlencoded` would give). A
/// repeated name collects its values in an array.
pub fn decode_form(body: &[u8]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        insert_param(&mut map, decode_component(k)?, decode_component(v)?);
    }
    Ok(map)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn decode_component(s: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex_val);
                let lo = s.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(format!("bad percent escape at byte {i}")),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after percent-decoding".to_string())
}

fn insert_param(map: &mut Map<String, Value>, k: String, v: String) {
    match map.get_mut(&k) {
        Some(Value::Array(a)) => a.push(Value::String(v)),
        Some(old) => {
            let first = old.take();
            *old = Value::Array(vec![first, Value::String(v)]);
        }
        None => {
            map.insert(k, Value::String(v));
        }
    }
}

/// Lenient decoding of a path segment (where `+` is literal), as a bad escape in a session
/// id or name should just fail to match rather than be an error of its own.
pub fn decode_segment(s: &str) -> String {
    percent_decode(s.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

/// Lenient query decoding, for the simulator's own filters.
pub fn query_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// The request's form parameters: only a form (or untyped) body is parsed, since other
/// bodies are not ORS parameters.
pub fn form_params(req: &Request) -> Result<Map<String, Value>, String> {
    if req.body.is_empty() {
        return Ok(Map::new());
    }
    match req.header("content-type") {
        Some(ct)
            if !ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded") =>
        {
            Ok(Map::new())
        }
        _ => decode_form(&req.body),
    }
}

/// A gateway parameter such as `_service_id`: the form parameter, or the `X-GMS-service_id`
/// header the gateway sends instead with `_ors_forward: headers` (percent-encoded).
pub fn gms_param(params: &Map<String, Value>, req: &Request, name: &str) -> Option<String> {
    if let Some(Value::String(v)) = params.get(name) {
        return Some(v.clone());
    }
    let header = format!("x-gms-{}", name.strip_prefix('_').unwrap_or(name));
    req.header(&header).map(decode_segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};
    use serde_json::json;

    #[test]
    fn form_decoding() {
        let m = decode_form(b"src=http%3A%2F%2Fh%2Fa.scxml&a+b=c+d%2B&e=&f&&x=1&x=2&x=3").unwrap();
        assert_eq!(m["src"], "http://h/a.scxml");
        assert_eq!(m["a b"], "c d+");
        assert_eq!(m["e"], "");
        assert_eq!(m["f"], "");
        assert_eq!(m["x"], json!(["1", "2", "3"]));
        assert_eq!(decode_form(b"k=%C3%A9").unwrap()["k"], "é");
        assert!(decode_form(b"k=%zz").is_err());
        assert!(decode_form(b"k=%4").is_err());
        assert!(decode_form(b"k=%").is_err());
        assert!(decode_form(b"k=%ff").is_err());
        assert!(decode_form(b"").unwrap().is_empty());
    }

    #[test]
    fn segments_and_queries() {
        // "+" is literal in a path; only queries and form bodies read it as a space.
        assert_eq!(decode_segment("a+b%20c"), "a+b c");
        assert_eq!(
            query_pairs("path_prefix=%2Fscxml+x&instance=1").collect::<Vec<_>>(),
            [
                ("path_prefix".to_string(), "/scxml x".to_string()),
                ("instance".to_string(), "1".to_string())
            ]
        );
    }

    fn req(
        method: Method,
        uri: &str,
        headers: &[(&'static str, &'static str)],
        body: &'static [u8],
    ) -> Request {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(*k, HeaderValue::from_static(v));
        }
        Request {
            method,
            uri: uri.parse().unwrap(),
            headers: h,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn params_by_content_type() {
        let typed = req(
            Method::POST,
            "/x?q=1",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )],
            b"a=2",
        );
        assert_eq!(form_params(&typed).unwrap()["a"], "2");
        let untyped = req(Method::POST, "/x", &[], b"a=3");
        assert_eq!(form_params(&untyped).unwrap()["a"], "3");
        let other = req(
            Method::POST,
            "/x",
            &[("content-type", "application/json")],
            b"{}",
        );
        assert!(form_params(&other).unwrap().is_empty());
        assert!(form_params(&req(Method::POST, "/x", &[], b"a=%")).is_err());
    }

    #[test]
    fn gms_params_from_form_or_headers() {
        let r = req(Method::POST, "/x", &[("x-gms-service_id", "id%201")], b"");
        let form = json!({"_service_name": "cb"});
        let form = form.as_object().unwrap();
        assert_eq!(gms_param(form, &r, "_service_id").as_deref(), Some("id 1"));
        assert_eq!(gms_param(form, &r, "_service_name").as_deref(), Some("cb"));
        assert_eq!(gms_param(form, &r, "_data_id"), None);
    }
}
