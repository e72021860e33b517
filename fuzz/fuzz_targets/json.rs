//! `form::parse_json` on arbitrary bytes: never panics; an error is a 400 or a 413.
#![no_main]

use gms_gateway::parse_json;
use gms_gateway::Params;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut params = Params::default();
    match parse_json(data, &common::limits(), &mut params) {
        Ok(()) => common::check_params(&params),
        Err(e) => common::check_error(&e),
    }
});
