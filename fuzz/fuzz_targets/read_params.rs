//! `form::read_params` over a chunked stream, mostly multipart: never panics; an error is a 400,
//! 413 or 415.
//!
//! Input layout: byte 0 picks the Content-Type (see `CONTENT_TYPES`), byte 1 the chunk size the
//! body is split into (1..=256, so part boundaries fall across chunks), the rest is the body.
#![no_main]

use std::io;

use bytes::Bytes;
use gms_gateway::{read_params, BodyInfo};
use libfuzzer_sys::fuzz_target;

mod common;

/// Multipart first: it is the parser with the most state (boundaries, part headers, chunks).
const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("multipart/form-data; boundary=XyZ"),
    Some("multipart/form-data; boundary=XyZ"),
    Some("multipart/form-data; boundary=XyZ"),
    Some("multipart/form-data; boundary=\"a b\""),
    Some("application/x-www-form-urlencoded"),
    Some("application/json"),
    Some("text/plain"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let [sel, chunk, body @ ..] = data else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(*sel) % CONTENT_TYPES.len()];
    let size = usize::from(*chunk) + 1;
    let chunks: Vec<io::Result<Bytes>> = body
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let info = BodyInfo {
        content_type,
        content_length: Some(body.len() as u64),
        query: Some("q=1"),
    };
    let limits = common::limits();
    let read = read_params(info, futures::stream::iter(chunks), &limits);
    match futures::executor::block_on(read) {
        Ok(params) => common::check_params(&params),
        Err(e) => common::check_error(&e),
    }
});
