//! Built-in services: request-interaction, request-access, match-interaction.
//!
//! This file holds the helpers; the tests are in one module per concern: `create` (bodies,
//! options, parameters), `pool` (numbers and codes, allocation, concurrency), `expiry` (TTLs),
//! `matching` (match-interaction), `access` (request-access).

#[path = "../common/mod.rs"]
mod common;

mod access;
mod create;
mod expiry;
mod matching;
mod pool;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn gw() -> Gateway {
    Gateway::start(STD_GMS)
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

fn expires_in(v: &Value) -> f64 {
    v.get("_expires_in")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no numeric _expires_in in {v}"))
}

/// A coded reservation on DNIS; returns (id, number, code).
fn coded(gw: &Gateway, phone: &str, extra: &[(&str, &str)]) -> (String, String, String) {
    let mut f = vec![("_phone_number", phone), ("_provide_code", "true")];
    f.extend_from_slice(extra);
    let v = gw.create_ok("request-interaction", &f);
    (
        str_field(&v, "_id").to_string(),
        str_field(&v, "_access_number").to_string(),
        str_field(&v, "_access_code").to_string(),
    )
}
