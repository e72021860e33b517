//! Splits a whole `multipart/form-data` body (RFC 7578, RFC 2046 section 5.1) into its parts.
//!
//! The body is parsed in memory, where [`crate::form`] has already read it under
//! `max_body_bytes`: every part's content is then a `Bytes::slice` of the body, so a file
//! is never copied on its way to the store, and one pass with one prepared delimiter search
//! finds every part. What a part may hold (names, sizes, counts) is checked by the caller.

use bytes::Bytes;
use memchr::memmem;

use crate::error::ApiError;

/// Headers a part may have; real clients send two or three.
const MAX_PART_HEADERS: usize = 16;

/// One part: the parameters of its Content-Disposition, its Content-Type and its content.
#[derive(Debug)]
pub struct Part {
    /// The `name` parameter (always present: a part without one is an error).
    pub name: String,
    /// The `filename` parameter: present for file inputs, even when empty.
    pub filename: Option<String>,
    /// The part's Content-Type, when it has a printable one.
    pub content_type: Option<String>,
    /// The content, a slice of the body.
    pub content: Bytes,
}

/// The boundary of a `multipart/form-data` Content-Type, if it has a usable one: not empty, no
/// control characters. RFC 2046 caps it at 70 characters; longer ones are accepted, as
/// the gateway did before (tests/hostile.rs holds it to that).
pub fn boundary(content_type: &str) -> Option<String> {
    let (_, rest) = content_type.split_once(';')?;
    let b = params(rest.as_bytes())
        .find(|(name, _)| name.eq_ignore_ascii_case(b"boundary"))
        .map(|(_, v)| v)?;
    let ok = !b.is_empty() && b.iter().all(|&c| c == b' ' || c.is_ascii_graphic());
    ok.then(|| String::from_utf8(b).ok()).flatten()
}

/// The parts of `body`, in order. An empty body has none.
pub fn parts(body: Bytes, boundary: &str) -> Parts {
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"\r\n--");
    delimiter.extend_from_slice(boundary.as_bytes());
    // The first delimiter may open the body (no CRLF before it) or follow a preamble.
    let start = if body.starts_with(&delimiter[2..]) {
        Some(0)
    } else {
        memmem::find(&body, &delimiter).map(|i| i + 2)
    };
    let state = match start {
        _ if body.is_empty() => State::Done,
        Some(at) => State::AtDelimiter(at),
        None => State::Failed,
    };
    Parts {
        finder: memmem::Finder::new(&delimiter).into_owned(),
        body,
        state,
    }
}

/// Iterator over the parts of a body; after an error it ends.
pub struct Parts {
    body: Bytes,
    finder: memmem::Finder<'static>,
    state: State,
}

#[derive(Clone, Copy)]
enum State {
    /// At a `--boundary` (without its leading CRLF).
    AtDelimiter(usize),
    /// No delimiter where one must be.
    Failed,
    Done,
}

fn malformed(why: &str) -> ApiError {
    ApiError::BadRequest(format!("malformed multipart body: {why}"))
}

impl Iterator for Parts {
    type Item = Result<Part, ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = match self.state {
            State::Done => return None,
            State::Failed => {
                self.state = State::Done;
                return Some(Err(malformed("no boundary line where one is needed")));
            }
            State::AtDelimiter(at) => at,
        };
        let got = self.part_at(at);
        if got.is_err() {
            self.state = State::Done;
        }
        got.transpose()
    }
}

impl Parts {
    /// Reads the part whose delimiter starts at `at`; `None` at the closing delimiter.
    fn part_at(&mut self, at: usize) -> Result<Option<Part>, ApiError> {
        let body = &self.body[..];
        let after = at + self.finder.needle().len() - 2;
        let rest = &body[after..];
        if rest.starts_with(b"--") {
            // The closing delimiter; whatever follows is an epilogue, ignored.
            self.state = State::Done;
            return Ok(None);
        }
        // Transport padding (spaces and tabs), then the line's CRLF.
        let pad = rest
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(rest.len());
        if !rest[pad..].starts_with(b"\r\n") {
            return Err(malformed("a boundary line does not end in CRLF"));
        }
        let head_start = after + pad + 2;
        let mut slots = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
        let (head_len, headers) = match httparse::parse_headers(&body[head_start..], &mut slots) {
            Ok(httparse::Status::Complete((n, h))) => (n, h),
            Ok(httparse::Status::Partial) => {
                return Err(malformed("it ends inside the headers of a part"))
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(malformed("a part has too many headers"))
            }
            Err(_) => return Err(malformed("a part has a broken header")),
        };
        let mut disposition = None;
        let mut content_type = None;
        for h in headers.iter() {
            if h.name.eq_ignore_ascii_case("content-disposition") {
                disposition.get_or_insert(h.value);
            } else if h.name.eq_ignore_ascii_case("content-type") {
                content_type.get_or_insert(h.value);
            }
        }
        let Some(disposition) = disposition else {
            return Err(ApiError::BadRequest(
                "a multipart part has no Content-Disposition".into(),
            ));
        };
        let (name, filename) = disposition_names(disposition)?;
        let content_start = head_start + head_len;
        let Some(len) = self.finder.find(&body[content_start..]) else {
            return Err(malformed("it ends before its closing boundary"));
        };
        let content_type = content_type
            .map(|v| v.trim_ascii())
            .filter(|v| !v.is_empty() && v.iter().all(|&c| c == b' ' || c.is_ascii_graphic()))
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string);
        let content = self.body.slice(content_start..content_start + len);
        self.state = State::AtDelimiter(content_start + len + 2);
        Ok(Some(Part {
            name,
            filename,
            content_type,
            content,
        }))
    }
}

/// The `name` and `filename` parameters of a Content-Disposition value.
fn disposition_names(value: &[u8]) -> Result<(String, Option<String>), ApiError> {
    let params_start = value
        .iter()
        .position(|&b| b == b';')
        .map_or(value.len(), |i| i + 1);
    let mut name = None;
    let mut filename = None;
    for (k, v) in params(&value[params_start..]) {
        if k.eq_ignore_ascii_case(b"name") {
            name.get_or_insert(v);
        } else if k.eq_ignore_ascii_case(b"filename") {
            filename.get_or_insert(v);
        }
    }
    let text = |what: &str, v: Vec<u8>| {
        String::from_utf8(v)
            .map_err(|_| ApiError::BadRequest(format!("a multipart {what} is not valid UTF-8")))
    };
    let Some(name) = name else {
        return Err(ApiError::BadRequest("a multipart part has no name".into()));
    };
    Ok((
        text("part name", name)?,
        filename.map(|f| text("filename", f)).transpose()?,
    ))
}

/// The `name=value` parameters of a header value after its first `;`: values are tokens or
/// quoted strings. Inside quotes only `\"` is an escape: browsers send backslashes in file
/// names as they are.
fn params(mut s: &[u8]) -> impl Iterator<Item = (&[u8], Vec<u8>)> {
    std::iter::from_fn(move || loop {
        s = s.trim_ascii_start();
        if s.is_empty() {
            return None;
        }
        let name_end = s
            .iter()
            .position(|&b| b == b'=' || b == b';')
            .unwrap_or(s.len());
        let name = s[..name_end].trim_ascii();
        if s.get(name_end) != Some(&b'=') {
            // A parameter without a value: skipped.
            s = s.get(name_end + 1..).unwrap_or_default();
            continue;
        }
        let v = s[name_end + 1..].trim_ascii_start();
        let (value, rest) = match v.strip_prefix(b"\"") {
            Some(q) => quoted(q),
            None => {
                let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
                (v[..end].trim_ascii().to_vec(), &v[end..])
            }
        };
        // Past the value, up to and over the next `;`.
        s = match rest.iter().position(|&b| b == b';') {
            Some(i) => &rest[i + 1..],
            None => &[],
        };
        return Some((name, value));
    })
}

/// A quoted string's value (after its opening quote) and what follows its closing quote; an
/// unclosed quote runs to the end.
fn quoted(q: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut out = Vec::with_capacity(q.len());
    let mut i = 0;
    while i < q.len() {
        match q[i] {
            b'"' => return (out, &q[i + 1..]),
            b'\\' if q.get(i + 1) == Some(&b'"') => {
                out.push(b'"');
                i += 1;
            }
            b => out.push(b),
        }
        i += 1;
    }
    (out, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &'static [u8], boundary: &str) -> Result<Vec<Part>, ApiError> {
        parts(Bytes::from_static(body), boundary).collect()
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            boundary("multipart/form-data; charset=utf-8; BOUNDARY=\"a b;c\"").as_deref(),
            Some("a b;c")
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

    #[test]
    fn parts_names_files_and_preamble() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
--XyZ  \r\ncontent-disposition: form-data; filename=\"c:\\x\\\"q\\\".jpg\"; name=pic\r\n\
Content-Type: image/jpeg\r\n\r\n\x00\r\n\xff\r\n--XyZ--\r\nepilogue";
        let p = all(body, "XyZ").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name.as_str(), &p[0].content[..]), ("a", &b"1"[..]));
        assert_eq!(p[0].filename, None);
        assert_eq!(p[1].name, "pic");
        assert_eq!(p[1].filename.as_deref(), Some("c:\\x\"q\".jpg"));
        assert_eq!(p[1].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(&p[1].content[..], b"\x00\r\n\xff");
    }

    #[test]
    fn empty_body_has_no_parts_and_broken_bodies_fail() {
        assert!(all(b"", "XyZ").unwrap().is_empty());
        for bad in [
            &b"not multipart"[..],
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n",
            b"--XyZ\r\nContent-Disposition: form-data\r\n\r\n1\r\n--XyZ--",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\n1\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"\xff\"\r\n\r\n1\r\n--XyZ--",
            b"--XyZjunk\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--",
            b"--XyZ",
        ] {
            let got = all(bad, "XyZ");
            assert!(got.is_err(), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(got.unwrap_err().status(), 400);
        }
    }
}
