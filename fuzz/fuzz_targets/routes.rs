//! `routes::route` on arbitrary methods and paths: never panics, and a path under an API root
//! never passes through to the web tier (a malformed one is NotFound or BadPath instead).
#![no_main]

use gms_gateway::routes::{route, Route};
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
    let under_root = prefixes
        .iter()
        .any(|p| path == p || path.starts_with(&format!("{p}/")));
    assert_eq!(
        r == Route::PassThrough,
        !under_root,
        "{method} {path:?} -> {r:?}"
    );
});
