//! Reads a request body under the configured limits into [`Params`] (contract section 2):
//! multipart (strings and files, streamed through `multer`: `multipart.rs`), urlencoded, a
//! flat JSON object, or nothing; then the query string, whose values lose to the body's.
//!
//! The body arrives as a stream of chunks so that this module never sees Pingora: the proxy
//! feeds it `session.read_request_body()`, unit tests feed it a vector.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

mod multipart;

use crate::config::Limits;
use crate::error::ApiError;
use crate::params::Params;
use crate::value::Value;

/// What the request's headers say about its parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyInfo<'a> {
    /// The Content-Type header.
    pub content_type: Option<&'a str>,
    /// The Content-Length header, if any (chunked bodies have none).
    pub content_length: Option<u64>,
    /// The query string, without '?'.
    pub query: Option<&'a str>,
}

enum Kind {
    Multipart(String),
    Urlencoded(Charset),
    Json,
    Other(String),
    Missing,
}

fn kind_of(content_type: Option<&str>) -> Result<Kind, ApiError> {
    let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Kind::Missing);
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match essence.as_str() {
        "multipart/form-data" => match multipart::boundary(ct) {
            Some(b) => Kind::Multipart(b),
            None => {
                return Err(ApiError::BadRequest(
                    "multipart/form-data without a usable boundary".into(),
                ))
            }
        },
        "application/x-www-form-urlencoded" => Kind::Urlencoded(charset_of(ct)),
        "application/json" => Kind::Json,
        _ => Kind::Other(essence),
    })
}

/// Reads the body and the query string into parameters, enforcing every limit.
pub async fn read_params<S>(
    info: BodyInfo<'_>,
    body: S,
    limits: &Limits,
) -> Result<Params, ApiError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    if let Some(len) = info.content_length {
        if len > limits.max_body_bytes {
            return Err(too_large_body(limits));
        }
    }
    let mut params = Params::default();
    match kind_of(info.content_type)? {
        Kind::Multipart(boundary) => {
            multipart::read(body, boundary, limits, &mut params).await?;
        }
        Kind::Urlencoded(charset) => {
            let bytes = collect(body, limits).await?;
            parse_urlencoded_as(&bytes, charset, limits, &mut params)?;
        }
        Kind::Json => {
            let bytes = collect(body, limits).await?;
            parse_json(&bytes, limits, &mut params)?;
        }
        Kind::Other(ct) => {
            if !collect(body, limits).await?.is_empty() {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "content type '{ct}' is not accepted: use multipart/form-data, \
                     application/x-www-form-urlencoded or application/json"
                )));
            }
        }
        Kind::Missing => {
            if !collect(body, limits).await?.is_empty() {
                return Err(ApiError::UnsupportedMediaType(
                    "a request body needs a Content-Type".into(),
                ));
            }
        }
    }
    if let Some(q) = info.query.filter(|q| !q.is_empty()) {
        parse_urlencoded(q.as_bytes(), limits, &mut params)?;
    }
    Ok(params)
}

fn too_large_body(limits: &Limits) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request body is larger than {} bytes",
        limits.max_body_bytes
    ))
}

/// Reads a whole body, failing as soon as it passes `max_body_bytes`.
pub async fn collect<S>(mut body: S, limits: &Limits) -> Result<Bytes, ApiError>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    // The common case is one chunk: it is kept as it is. Only a second one costs a copy.
    let mut first = Bytes::new();
    let mut joined = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(read_error)?;
        if (first.len() + joined.len() + chunk.len()) as u64 > limits.max_body_bytes {
            return Err(too_large_body(limits));
        }
        if first.is_empty() && joined.is_empty() {
            first = chunk;
            continue;
        }
        if !first.is_empty() {
            joined.reserve(first.len() + chunk.len());
            joined.extend_from_slice(&std::mem::take(&mut first));
        }
        joined.extend_from_slice(&chunk);
    }
    Ok(if joined.is_empty() {
        first
    } else {
        joined.freeze()
    })
}

/// A body that stopped arriving (the proxy's read timeout) is a 408; a refusal made while it
/// arrived (an [`ApiError`] in the stream, e.g. the per-address upload rate) is that error; any
/// other broken read a 400. The reader's own words (Pingora's error text) go to the debug log,
/// not to the client.
fn read_error(e: io::Error) -> ApiError {
    if let Some(refused) = e.get_ref().and_then(|e| e.downcast_ref::<ApiError>()) {
        return refused.clone();
    }
    if e.kind() == io::ErrorKind::TimedOut {
        return ApiError::RequestTimeout;
    }
    log::debug!("cannot read a request body: {e}");
    ApiError::BadRequest(
        "cannot read the request body: the connection broke or its framing is malformed".into(),
    )
}

fn check_count(params: &Params, limits: &Limits) -> Result<(), ApiError> {
    if params.len() >= limits.max_fields {
        return Err(ApiError::PayloadTooLarge(format!(
            "more than {} parameters",
            limits.max_fields
        )));
    }
    Ok(())
}

fn check_name(name: &str, limits: &Limits) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::BadRequest("a parameter has an empty name".into()));
    }
    if name.len() as u64 > limits.max_field_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "a parameter name is longer than {} bytes",
            limits.max_field_bytes
        )));
    }
    check_text("parameter name", name)
}

fn check_text(what: &str, s: &str) -> Result<(), ApiError> {
    if s.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "{what} contains a NUL character"
        )));
    }
    Ok(())
}

fn check_value_len(name: &str, len: usize, limits: &Limits) -> Result<(), ApiError> {
    if len as u64 > limits.max_field_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "value of '{name}' is longer than {} bytes",
            limits.max_field_bytes
        )));
    }
    Ok(())
}

/// How the bytes of a urlencoded body's escapes are read: UTF-8, or ISO-8859-1 when the
/// Content-Type says so (RestAssured, which GMS's QA suite uses, sends `charset=ISO-8859-1`
/// and encodes by it, as servlet containers such as GMS's decode). Any other charset is read
/// as UTF-8, as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Utf8,
    Latin1,
}

/// The charset a Content-Type names for a urlencoded body.
fn charset_of(content_type: &str) -> Charset {
    let named = content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"'))
    });
    match named {
        Some(c)
            if ["iso-8859-1", "iso8859-1", "latin1", "iso_8859-1", "l1"]
                .iter()
                .any(|n| c.eq_ignore_ascii_case(n)) =>
        {
            Charset::Latin1
        }
        _ => Charset::Utf8,
    }
}

/// Bytes as text in `charset`: ISO-8859-1 maps each byte to the code point of its value.
fn to_text(bytes: Vec<u8>, charset: Charset) -> Result<String, ApiError> {
    match charset {
        Charset::Utf8 => String::from_utf8(bytes)
            .map_err(|_| ApiError::BadRequest("a parameter is not valid UTF-8".into())),
        Charset::Latin1 => Ok(bytes.into_iter().map(char::from).collect()),
    }
}

/// Decodes one urlencoded component strictly: `+` is a space, escapes must be well formed, the
/// result must be text in `charset` (the `form_urlencoded` crate would replace bad bytes
/// silently).
fn decode_component(raw: &[u8], charset: Charset) -> Result<String, ApiError> {
    let bad_escape = || ApiError::BadRequest("bad percent-encoding in a parameter".into());
    // Most values need no decoding at all: validate and copy once.
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return to_text(raw.to_vec(), charset);
    }
    // One pass: decode, rejecting an escape without two hex digits (percent_decode would keep
    // it silently).
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let (Some(&h), Some(&l)) = (raw.get(i + 1), raw.get(i + 2)) else {
                    return Err(bad_escape());
                };
                if !(h.is_ascii_hexdigit() && l.is_ascii_hexdigit()) {
                    return Err(bad_escape());
                }
                out.push(hex(h) << 4 | hex(l));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    to_text(out, charset)
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b.to_ascii_lowercase().wrapping_sub(b'a').wrapping_add(10),
    }
}

/// Parses `a=1&b=2` (UTF-8) into `params`.
pub fn parse_urlencoded(
    input: &[u8],
    limits: &Limits,
    params: &mut Params,
) -> Result<(), ApiError> {
    parse_urlencoded_as(input, Charset::Utf8, limits, params)
}

/// Parses `a=1&b=2`, its escapes' bytes read in `charset`, into `params`.
fn parse_urlencoded_as(
    input: &[u8],
    charset: Charset,
    limits: &Limits,
    params: &mut Params,
) -> Result<(), ApiError> {
    for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        check_count(params, limits)?;
        let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if raw_name.len() as u64 > limits.max_field_bytes.saturating_mul(3) {
            return Err(ApiError::PayloadTooLarge(
                "a parameter name is too long".into(),
            ));
        }
        let name = decode_component(raw_name, charset)?;
        check_name(&name, limits)?;
        if raw_value.len() as u64 > limits.max_field_bytes.saturating_mul(3) {
            check_value_len(&name, raw_value.len(), limits)?;
        }
        let value = decode_component(raw_value, charset)?;
        check_value_len(&name, value.len(), limits)?;
        check_text("a parameter value", &value)?;
        params.push(name, Value::Text(value));
    }
    Ok(())
}

/// Parses a flat JSON object: string values, numbers and booleans (as text).
pub fn parse_json(input: &[u8], limits: &Limits, params: &mut Params) -> Result<(), ApiError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(input)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))?;
    let serde_json::Value::Object(map) = v else {
        return Err(ApiError::BadRequest(
            "the JSON body must be an object".into(),
        ));
    };
    for (name, value) in map {
        check_count(params, limits)?;
        check_name(&name, limits)?;
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "JSON value of '{name}' must be a string, number or boolean"
                )))
            }
        };
        check_value_len(&name, text.len(), limits)?;
        check_text("a parameter value", &text)?;
        params.push(name, Value::Text(text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1000,
            max_fields: 5,
            max_field_bytes: 20,
            max_file_bytes: 100,
            max_ttl: 86400,
            ..Limits::default()
        }
    }

    fn stream(chunks: Vec<&'static [u8]>) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))))
    }

    async fn read(
        ct: Option<&str>,
        chunks: Vec<&'static [u8]>,
        query: Option<&str>,
    ) -> Result<Params, ApiError> {
        let info = BodyInfo {
            content_type: ct,
            content_length: None,
            query,
        };
        read_params(info, stream(chunks), &limits()).await
    }

    const MP: &str = "multipart/form-data; boundary=XyZ";

    #[tokio::test]
    async fn urlencoded_strict_and_query_loses() {
        let p = read(
            Some("application/x-www-form-urlencoded"),
            vec![b"a=1+2&b=%C3%A9", b"&a=9"],
            Some("a=q&c=3"),
        )
        .await
        .unwrap();
        assert_eq!(p.text("a"), Some("1 2"));
        assert_eq!(p.text("b"), Some("é"));
        assert_eq!(p.text("c"), Some("3"));
        for bad in [&b"a=%zz"[..], b"a=%ff", b"a=%00", b"=x"] {
            let r = read(Some("application/x-www-form-urlencoded"), vec![bad], None).await;
            assert_eq!(
                r.unwrap_err().status(),
                400,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn a_latin1_form_is_read_in_latin1_and_its_query_in_utf8() {
        for ct in [
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
            "application/x-www-form-urlencoded;charset=\"latin1\"",
        ] {
            let p = read(
                Some(ct),
                vec![b"name=Ren%E9e&town=K\xf6ln"],
                Some("q=%C3%A9"),
            )
            .await
            .unwrap();
            assert_eq!(p.text("name"), Some("Renée"), "{ct}");
            assert_eq!(p.text("town"), Some("Köln"), "{ct}");
            assert_eq!(p.text("q"), Some("é"), "{ct}");
        }
        let utf8 = "application/x-www-form-urlencoded; charset=UTF-8";
        assert_eq!(
            read(Some(utf8), vec![b"name=Ren%E9e"], None)
                .await
                .unwrap_err()
                .status(),
            400
        );
        let nul = read(
            Some("application/x-www-form-urlencoded; charset=ISO-8859-1"),
            vec![b"a=%00"],
            None,
        );
        assert_eq!(nul.await.unwrap_err().status(), 400);
    }

    #[tokio::test]
    async fn limits_give_413() {
        let ct = Some("application/x-www-form-urlencoded");
        assert_eq!(
            read(ct, vec![b"a=123456789012345678901"], None)
                .await
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(
            read(ct, vec![b"a&b&c&d&e&f"], None)
                .await
                .unwrap_err()
                .status(),
            413
        );
        let big: &'static [u8] = Box::leak(vec![b'x'; 1001].into_boxed_slice());
        assert_eq!(read(ct, vec![big], None).await.unwrap_err().status(), 413);
        let info = BodyInfo {
            content_type: ct,
            content_length: Some(5000),
            query: None,
        };
        assert_eq!(
            read_params(info, stream(vec![]), &limits())
                .await
                .unwrap_err()
                .status(),
            413
        );
    }

    #[tokio::test]
    async fn json_flat_object_only() {
        let p = read(
            Some("application/json; charset=utf-8"),
            vec![br#"{"a":"x","n":5,"b":true}"#],
            None,
        )
        .await
        .unwrap();
        assert_eq!(p.text("n"), Some("5"));
        assert_eq!(p.text("b"), Some("true"));
        for bad in [
            &br#"[1]"#[..],
            br#"{"a":{"b":1}}"#,
            br#"{"a":null}"#,
            b"{",
            br#"{"a":"\u0000"}"#,
        ] {
            let r = read(Some("application/json"), vec![bad], None).await;
            assert_eq!(r.unwrap_err().status(), 400);
        }
    }

    #[tokio::test]
    async fn multipart_strings_and_files_across_chunks() {
        let body: &'static [u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"_phone_number\"\r\n\r\n555\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"pic\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\x00\x01\xff\r\n--XyZ--\r\n";
        let (a, b) = body.split_at(50);
        let p = read(Some(MP), vec![a, b], None).await.unwrap();
        assert_eq!(p.text("_phone_number"), Some("555"));
        let ud = p.clone().into_user_data();
        let Value::File(f) = &ud[0].1 else {
            panic!("not a file")
        };
        assert_eq!(f.filename, "a.jpg");
        assert_eq!(f.content_type, "image/jpeg");
        assert_eq!(&f.bytes[..], b"\x00\x01\xff");
    }

    #[tokio::test]
    async fn multipart_errors() {
        let r = read(Some("multipart/form-data"), vec![b"x"], None).await;
        assert_eq!(r.unwrap_err().status(), 400);
        let r = read(Some(MP), vec![b"--other\r\n\r\nzzz"], None).await;
        assert_eq!(r.unwrap_err().status(), 400);
        let noname: &'static [u8] =
            b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--\r\n";
        assert_eq!(
            read(Some(MP), vec![noname], None)
                .await
                .unwrap_err()
                .status(),
            400
        );
        let file: &'static [u8] = Box::leak(
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f\"\r\n\r\n{}\r\n--XyZ--\r\n",
                "x".repeat(101)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        assert_eq!(
            read(Some(MP), vec![file], None).await.unwrap_err().status(),
            413
        );
        let huge: &'static [u8] = Box::leak(vec![b'-'; 1200].into_boxed_slice());
        assert_eq!(
            read(Some(MP), vec![huge], None).await.unwrap_err().status(),
            413
        );
    }

    #[tokio::test]
    async fn other_content_types() {
        assert_eq!(
            read(Some("text/plain"), vec![b"hi"], None)
                .await
                .unwrap_err()
                .status(),
            415
        );
        assert!(read(Some("text/plain"), vec![], None)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            read(None, vec![b"hi"], None).await.unwrap_err().status(),
            415
        );
        assert_eq!(
            read(None, vec![], Some("a=1")).await.unwrap().text("a"),
            Some("1")
        );
    }

    #[tokio::test]
    async fn a_stalled_body_is_408_a_broken_one_400_and_a_refused_one_its_error_in_every_format() {
        let refused = || io::Error::other(ApiError::TooManyRequests(1));
        for ct in [MP, "application/x-www-form-urlencoded", "application/json"] {
            for (error, status) in [
                (io::Error::new(io::ErrorKind::TimedOut, "read failed"), 408),
                (io::Error::other("read failed"), 400),
                (refused(), 429),
            ] {
                let kind = error.kind();
                let body = futures::stream::iter(vec![
                    Ok(Bytes::from_static(
                        b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"",
                    )),
                    Err(error),
                ]);
                let info = BodyInfo {
                    content_type: Some(ct),
                    ..BodyInfo::default()
                };
                let e = read_params(info, body, &limits()).await.unwrap_err();
                assert_eq!(e.status(), status, "{ct} {kind:?}: {e}");
            }
        }
    }
}
