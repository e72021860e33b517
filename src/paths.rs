//! Path spellings: the normal form of a path, its place under an API root, its segments
//! decoded, and the readings of a more lenient server (issue 15, item 4).
//!
//! A web tier may normalize paths (GMS runs on a servlet container that does) and would then
//! serve API and admin paths without the gateway's checks, so [`crate::routes`] routes every
//! path outside the roots on its normal form ([`normalize`]: unreserved percent-escapes
//! decoded, `//` collapsed, dot segments removed, RFC 3986 6.2.2), the roots matched without
//! regard to case, and refuses a path a lenient server would read as an API path
//! ([`slips_into_api`]: an encoded `/` or `\`, a backslash, a `;` parameter).

use std::borrow::Cow;

/// `path` in normal form (RFC 3986 6.2.2): percent-escapes of unreserved characters decoded,
/// empty segments (`//`) collapsed, `.` and `..` segments removed (5.2.4). Other escapes and
/// the case of every letter are kept. Borrowed when there is nothing to change, which is the
/// case of almost every request.
pub fn normalize(path: &str) -> Cow<'_, str> {
    let b = path.as_bytes();
    let plain = !b.contains(&b'%')
        && memchr::memmem::find(b, b"//").is_none()
        && memchr::memmem::find(b, b"/.").is_none();
    if plain || !path.starts_with('/') {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        trailing_slash = false;
        match *seg {
            "" | "." => trailing_slash = i == last,
            ".." => {
                kept.pop();
                trailing_slash = i == last;
            }
            s => kept.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if trailing_slash || kept.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Decodes the escapes of unreserved characters (`ALPHA / DIGIT / - . _ ~`); every other byte,
/// and every malformed escape, stays as it is.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = (b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
                .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
                .flatten()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(c) = hex.filter(|c| c.is_ascii_alphanumeric() || b"-._~".contains(c)) {
                out.push(c);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    // Only ASCII escapes were decoded into ASCII: the bytes are as valid UTF-8 as the input.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether a path outside the API roots would be an API path to a lenient server: one that
/// decodes `%2F` and `%5C` in paths, takes `\` for `/`, or drops `;` path parameters.
pub(crate) fn slips_into_api(path: &str, prefixes: &[String]) -> bool {
    let b = path.as_bytes();
    let suspect = b.contains(&b'\\')
        || b.contains(&b';')
        || b.windows(3).any(|w| {
            w[0] == b'%'
                && (w[1..].eq_ignore_ascii_case(b"2f") || w[1..].eq_ignore_ascii_case(b"5c"))
        });
    if !suspect {
        return false;
    }
    let lenient = path
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%5C", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    let without_params: Vec<&str> = lenient
        .split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect();
    let lenient = without_params.join("/");
    let normal = normalize(&lenient);
    prefixes.iter().any(|p| under_root(&normal, p).is_some())
}

/// The part of `path` after `root` and its slash, if `path` is under `root` (compared without
/// regard to case: a web tier on a case-blind file system would serve either spelling).
pub(crate) fn under_root<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let head = path.get(..root.len())?;
    if !head.eq_ignore_ascii_case(root) {
        return None;
    }
    after_root(&path[root.len()..])
}

/// What follows a root, if it ends there or at a `/`: the path under the root.
pub(crate) fn after_root(rest: &str) -> Option<&str> {
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// Percent-decodes one path segment; it must be UTF-8 without control characters or '/'.
pub(crate) fn decode_segment(s: &str) -> Result<Cow<'_, str>, String> {
    if !s.contains('%') {
        if s.chars().any(char::is_control) {
            return Err("path segment holds a control character".into());
        }
        return Ok(Cow::Borrowed(s));
    }
    if !valid_percent_escapes(s.as_bytes()) {
        return Err(format!("bad percent-encoding in path segment '{s}'"));
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
    let d = String::from_utf8(bytes).map_err(|_| "path segment is not valid UTF-8".to_string())?;
    if d.chars().any(char::is_control) || d.contains('/') {
        return Err("path segment holds a control character or '/'".into());
    }
    Ok(Cow::Owned(d))
}

/// Whether every '%' starts a two-hex-digit escape (percent_decode silently keeps bad ones).
fn valid_percent_escapes(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form() {
        for (path, normal) in [
            ("/a/b", "/a/b"),
            ("/a//b/", "/a/b/"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/", "/"),
            ("/%61%2F%7e%zz", "/a%2F~%zz"),
            ("/.well-known/x", "/.well-known/x"),
        ] {
            assert_eq!(normalize(path), normal, "{path}");
        }
        assert!(matches!(
            normalize("/genesys/1/storage/x"),
            Cow::Borrowed(_)
        ));
    }
}
