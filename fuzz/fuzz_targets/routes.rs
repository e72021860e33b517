//! `route` on arbitrary methods and paths: never panics, and a path under an API root, as sent
//! or once normalized (roots matched without regard to case), never passes through to the web
//! tier (a malformed one is NotFound or BadPath instead). Normalizing twice changes nothing.
#![no_main]

use gms_gateway::{normalize, route, Route};
use http::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Byte 0 picks a method (or an odd one); the rest is the path, as Pingora hands it over.
    let [sel, path @ ..] = data else {
        return;
    };
    let method = match sel % 6 {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::DELETE,
        3 => Method::TRACE,
        4 => Method::from_bytes(b"FROB").expect("a valid token"),
        _ => Method::PUT,
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let prefixes = vec!["/genesys/1".to_string(), "/GMS-web/gms/1".to_string()];
    let r = route(&method, path, &prefixes);
    let normal = normalize(path);
    assert_eq!(normalize(&normal), normal, "{path:?}");
    let under = |p: &str, root: &str| {
        p.get(..root.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(root))
            && matches!(p.as_bytes().get(root.len()), None | Some(b'/'))
    };
    let api = prefixes
        .iter()
        .any(|root| under(path, root) || under(&normal, root));
    if api {
        assert_ne!(r, Route::PassThrough, "{method} {path:?}");
    }
});
