//! `multipart/form-data` bodies (RFC 7578) streamed through `multer`: parts are read as they
//! arrive, so a file over `max_file_bytes` (or a value over `max_field_bytes`) is refused with
//! a 413 while it arrives, and the whole body is held to `max_body_bytes` by multer's stream
//! limit. What a part may hold (names, counts, UTF-8, NUL) is checked as for the other formats.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use multer::{Constraints, Multipart, SizeLimit};

use super::{check_count, check_name, check_text, read_error, too_large_body};
use crate::config::Limits;
use crate::error::ApiError;
use crate::params::Params;
use crate::value::{FileValue, Value};

/// The boundary of a `multipart/form-data` Content-Type, if it has a usable one (not empty).
/// RFC 2046 caps it at 70 characters; longer ones are accepted, as before (tests/hostile.rs).
pub(super) fn boundary(content_type: &str) -> Option<String> {
    multer::parse_boundary(content_type)
        .ok()
        .filter(|b| !b.is_empty() && b.bytes().all(|c| c == b' ' || c.is_ascii_graphic()))
}

fn malformed(e: &multer::Error) -> ApiError {
    ApiError::BadRequest(format!("malformed multipart body: {e}"))
}

/// What a multer error means for the client: a limit (413), a broken read of the body (408 or
/// 400, as for every format), or a body that is not well-formed multipart (400).
fn api_error(e: multer::Error, limits: &Limits) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } => too_large_body(limits),
        multer::Error::FieldSizeExceeded { limit, field_name } => {
            ApiError::PayloadTooLarge(format!(
                "part '{}' is larger than {limit} bytes",
                field_name.unwrap_or_default()
            ))
        }
        multer::Error::StreamReadFailed(cause) => match cause.downcast::<io::Error>() {
            Ok(io) => read_error(*io),
            Err(other) => ApiError::BadRequest(format!("cannot read the request body: {other}")),
        },
        other => malformed(&other),
    }
}

/// Reads every part of the body into `params`.
pub(super) async fn read<S>(
    mut body: S,
    boundary: String,
    limits: &Limits,
    params: &mut Params,
) -> Result<(), ApiError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    // An empty body has no parts (multer would call it an incomplete stream).
    let first = loop {
        match body.next().await {
            None => return Ok(()),
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(chunk) => break chunk,
        }
    };
    let body = futures::stream::iter([first]).chain(body);
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(limits.max_body_bytes)
            // The larger of the two per-part limits; each part's own is checked as it arrives.
            .per_field(limits.max_file_bytes.max(limits.max_field_bytes)),
    );
    let mut parts = Multipart::with_constraints(body, boundary, constraints);
    while let Some(mut field) = parts.next_field().await.map_err(|e| api_error(e, limits))? {
        check_count(params, limits)?;
        let Some(name) = field.name().map(str::to_string) else {
            return Err(ApiError::BadRequest(
                if field
                    .headers()
                    .contains_key(http::header::CONTENT_DISPOSITION)
                {
                    "a multipart part has no name (or one that is not UTF-8)"
                } else {
                    "a multipart part has no Content-Disposition"
                }
                .into(),
            ));
        };
        check_name(&name, limits)?;
        let filename = field.file_name().map(str::to_string);
        let content_type = field
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let limit = if filename.is_some() {
            limits.max_file_bytes
        } else {
            limits.max_field_bytes
        };
        let too_large = || {
            ApiError::PayloadTooLarge(match &filename {
                Some(_) => format!("file '{name}' is larger than {limit} bytes"),
                None => format!("value of '{name}' is longer than {limit} bytes"),
            })
        };
        // The common case is one chunk: it is kept as it is. Only a second one costs a copy.
        let mut first = Bytes::new();
        let mut joined = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| api_error(e, limits))? {
            if (first.len() + joined.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            if first.is_empty() && joined.is_empty() {
                first = chunk;
            } else {
                if !first.is_empty() {
                    joined.extend_from_slice(&std::mem::take(&mut first));
                }
                joined.extend_from_slice(&chunk);
            }
        }
        let content = if joined.is_empty() {
            first
        } else {
            joined.freeze()
        };
        let value = match filename {
            // A browser sends an empty, nameless file for a file input left empty.
            Some(f) if f.is_empty() && content.is_empty() => continue,
            Some(filename) => {
                check_text("a filename", &filename)?;
                Value::File(FileValue {
                    filename,
                    content_type: content_type.unwrap_or_else(|| "application/octet-stream".into()),
                    bytes: content,
                })
            }
            None => {
                let text = std::str::from_utf8(&content).map_err(|_| {
                    ApiError::BadRequest(format!("value of '{name}' is not valid UTF-8"))
                })?;
                check_text("a parameter value", text)?;
                Value::Text(text.to_string())
            }
        };
        params.push(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            boundary("multipart/form-data;boundary=\"----x y\"").as_deref(),
            Some("----x y")
        );
        for bad in [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; other=1",
        ] {
            assert_eq!(boundary(bad), None, "{bad}");
        }
        let long = format!("multipart/form-data; boundary={}", "a".repeat(200));
        assert_eq!(boundary(&long).map(|b| b.len()), Some(200));
    }

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 10_000,
            max_fields: 5,
            max_field_bytes: 20,
            max_file_bytes: 100,
            ..Limits::default()
        }
    }

    async fn parts(chunks: Vec<&'static [u8]>) -> Result<Params, ApiError> {
        let body = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let mut p = Params::default();
        read(body, "XyZ".into(), &limits(), &mut p).await.map(|_| p)
    }

    #[tokio::test]
    async fn a_file_over_the_limit_is_refused_before_the_body_ends() {
        // The file's first 101 bytes, and then nothing more for ever: the 413 comes anyway.
        let head: &'static [u8] =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f\"\r\n\r\n";
        let big: &'static [u8] = Box::leak(vec![b'x'; 101].into_boxed_slice());
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(head)),
            Ok(Bytes::from_static(big)),
        ])
        .chain(futures::stream::pending());
        let mut p = Params::default();
        let l = limits();
        let read = read(Box::pin(body), "XyZ".into(), &l, &mut p);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("refused while the body is still arriving")
            .unwrap_err();
        assert_eq!(e.status(), 413, "{e}");
    }

    #[tokio::test]
    async fn preamble_padding_and_epilogue_are_ignored_and_an_empty_body_has_no_parts() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
--XyZ  \r\ncontent-disposition: form-data; filename=\"c.jpg\"; name=pic\r\n\
Content-Type: image/jpeg\r\n\r\n\x00\r\n\xff\r\n--XyZ--\r\nepilogue";
        let p = parts(vec![body]).await.unwrap();
        assert_eq!(p.text("a"), Some("1"));
        assert_eq!(p.len(), 2);
        assert!(parts(vec![]).await.unwrap().is_empty());
    }
}
