//! Property tests of the pure request parsers (issue 6): body parsing (`form`) and routing
//! (`routes`) on generated input. They run in the normal suite, a few hundred cases each, so
//! they take seconds; the cargo-fuzz targets in `fuzz/` search the same code for longer.
//!
//! Properties: nothing panics; every failure is the client's (400, 413 or 415); well-formed
//! input round-trips (urlencoded, JSON, multipart); a path under an API root never passes
//! through to the web tier, and a malformed one is NotFound or BadPath.

use std::io;

use bytes::Bytes;
use gms_gateway::ApiError;
use gms_gateway::Limits;
use gms_gateway::Params;
use gms_gateway::Value;
use gms_gateway::{normalize, route, Route};
use gms_gateway::{parse_json, parse_urlencoded, read_params, BodyInfo};
use http::Method;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;

/// Limits small enough for generated input to cross each of them.
fn limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
        max_fields: 16,
        max_field_bytes: 64,
        max_file_bytes: 1024,
        ..Limits::default()
    }
}

fn prefixes() -> Vec<String> {
    vec!["/genesys/1".into(), "/GMS-web/gms/1".into()]
}

/// A parse failure must be the client's fault.
fn client_fault(e: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(e.status(), 400 | 413 | 415),
        "status {} for {e}",
        e.status()
    );
    Ok(())
}

/// The text values of parsed parameters, first of each name, in order.
fn texts(params: Params) -> Vec<(String, String)> {
    params
        .into_fields()
        .into_iter()
        .map(|(k, v)| match v {
            Value::Text(t) => (k, t),
            Value::File(f) => (k, format!("<file {}>", f.filename)),
        })
        .collect()
}

/// The first value of each name, in order: what `Params` keeps of repeated names.
fn first_of_each(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        if !out.iter().any(|(o, _)| o == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

/// `body` as a stream of `size`-byte chunks.
fn chunks(
    body: &[u8],
    size: usize,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + Unpin {
    let parts: Vec<io::Result<Bytes>> = body
        .chunks(size.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts)
}

fn read(
    content_type: Option<&str>,
    body: &[u8],
    chunk: usize,
    query: Option<&str>,
) -> Result<Params, ApiError> {
    let info = BodyInfo {
        content_type,
        content_length: Some(body.len() as u64),
        query,
    };
    futures::executor::block_on(read_params(info, chunks(body, chunk), &limits()))
}

/// Parameter names every body format can carry as they are.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}"
}

/// Text values: any characters but NUL, within `max_field_bytes`.
fn value() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,16}"
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((name(), value()), 0..12)
}

fn encode(s: &str, plus_for_space: bool) -> String {
    let e = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    if plus_for_space {
        e.replace("%20", "+")
    } else {
        e
    }
}

const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("multipart/form-data; boundary=XyZ"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json"),
    Some("multipart/form-data"),
    Some("text/plain"),
    None,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn urlencoded_never_panics_and_fails_only_as_4xx(input in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut p = Params::default();
        if let Err(e) = parse_urlencoded(&input, &limits(), &mut p) {
            client_fault(&e)?;
        }
    }

    #[test]
    fn urlencoded_pairs_round_trip(pairs in pairs(), plus in any::<bool>()) {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k, plus), encode(v, plus)))
            .collect::<Vec<_>>()
            .join("&");
        let mut p = Params::default();
        parse_urlencoded(body.as_bytes(), &limits(), &mut p).expect("well-formed pairs");
        prop_assert_eq!(texts(p), first_of_each(&pairs));
    }

    #[test]
    fn json_never_panics_and_fails_only_as_4xx(input in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut p = Params::default();
        if let Err(e) = parse_json(&input, &limits(), &mut p) {
            client_fault(&e)?;
        }
    }

    #[test]
    fn json_like_text_never_panics(input in r#"[{}\[\]",:0-9a-z\\ ]{0,80}"#) {
        let mut p = Params::default();
        if let Err(e) = parse_json(input.as_bytes(), &limits(), &mut p) {
            client_fault(&e)?;
        }
    }

    #[test]
    fn json_objects_round_trip(pairs in pairs()) {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut p = Params::default();
        parse_json(serde_json::Value::Object(map.clone()).to_string().as_bytes(), &limits(), &mut p)
            .expect("a flat object");
        let mut got = texts(p);
        got.sort();
        let mut want: Vec<(String, String)> = map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        want.sort();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_body_of_any_type_in_any_chunks_fails_only_as_4xx(
        ct in 0..CONTENT_TYPES.len(),
        body in prop::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
        query in prop::option::of("[a-z=&%0-9]{0,20}"),
    ) {
        if let Err(e) = read(CONTENT_TYPES[ct], &body, chunk, query.as_deref()) {
            client_fault(&e)?;
        }
    }

    #[test]
    fn multipart_parts_round_trip_across_chunk_splits(
        pairs in pairs(),
        chunk in 1usize..40,
    ) {
        prop_assume!(pairs.iter().all(|(_, v)| !v.contains("XyZ")));
        let mut body = Vec::new();
        for (k, v) in &pairs {
            body.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        let p = read(Some("multipart/form-data; boundary=XyZ"), &body, chunk, None)
            .expect("a well-formed multipart body");
        prop_assert_eq!(texts(p), first_of_each(&pairs));
    }

    #[test]
    fn multipart_cut_anywhere_fails_only_as_4xx(
        pairs in pairs(),
        cut in any::<prop::sample::Index>(),
        chunk in 1usize..40,
    ) {
        let mut body = Vec::new();
        for (k, v) in &pairs {
            body.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        let cut = cut.index(body.len());
        if let Err(e) = read(Some("multipart/form-data; boundary=XyZ"), &body[..cut], chunk, None) {
            client_fault(&e)?;
        }
    }

    #[test]
    fn route_never_panics_and_never_passes_an_api_path_through(
        method in prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::DELETE),
            Just(Method::PUT),
            Just(Method::TRACE),
            "[A-Z]{1,12}".prop_map(|m| Method::from_bytes(m.as_bytes()).expect("a token")),
        ],
        path in prop_oneof![
            any::<String>(),
            "(/genesys/1|/GMS-web/gms/1|/genesys|/app)(/[^/]{0,12}){0,8}/?",
        ],
    ) {
        let r = route(&method, &path, &prefixes());
        let normal = normalize(&path);
        prop_assert_eq!(normalize(&normal), normal.clone(), "normalizing twice: {:?}", path);
        let under = |p: &str, root: &str| {
            p.get(..root.len()).is_some_and(|head| head.eq_ignore_ascii_case(root))
                && matches!(p.as_bytes().get(root.len()), None | Some(b'/'))
        };
        // Under a root as sent or once normalized: the API's, never passed through.
        let api = prefixes().iter().any(|root| under(&path, root) || under(&normal, root));
        if api {
            prop_assert!(r != Route::PassThrough, "{} {:?} -> {:?}", method, path, r);
        }
        // Passed through only when the normal form is outside every root.
        if r == Route::PassThrough {
            prop_assert!(!api, "{} {:?}", method, path);
        }
    }

    #[test]
    fn malformed_api_paths_are_not_found_or_bad_path(
        root in prop::sample::select(vec!["/genesys/1", "/GMS-web/gms/1"]),
        segments in prop::collection::vec("[^/]{0,10}", 0..8),
        bad in prop::sample::select(vec!["%zz", "%", "%f", "%00", "%2F", "%FF", "%C3%28", "\u{7}"]),
        at in any::<prop::sample::Index>(),
        method in prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE]),
    ) {
        let mut segments = segments;
        let at = at.index(segments.len() + 1);
        segments.insert(at, format!("x{bad}"));
        let path = format!("{root}/{}", segments.join("/"));
        let r = route(&method, &path, &prefixes());
        prop_assert!(
            matches!(r, Route::NotFound | Route::BadPath(_)),
            "{} {:?} -> {:?}", method, path, r
        );
    }

    #[test]
    fn encoded_storage_ids_and_keys_route_back_to_themselves(
        id in "[^\\p{Cc}/]{1,20}",
        key in "[^\\p{Cc}/]{1,20}",
    ) {
        let path = format!("/genesys/1/storage/{}/{}", encode(&id, false), encode(&key, false));
        prop_assert_eq!(
            route(&Method::GET, &path, &prefixes()),
            Route::StorageGetKey { id, key }
        );
    }
}
