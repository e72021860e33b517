//! Query by properties (contract `gms-callback.md` §6.1): `GET {root}/service/callback/{name}`
//! (one service) and `GET {root}/service/callback` (every callback service), filters joined
//! by `operand` (`AND`, the default, or `OR`), `!value` for "not value". The reply is an array
//! of records by desired time, at most [`MAX_RECORDS`]; only the requester's callbacks (as for
//! every service, `gms_user`) unless it has the admin credentials.

use super::view::record_object;
use super::{errors, visible, Service};
use crate::callback::record::CUSTOMER_NUMBER;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::{json_array, Reply};
use crate::store::callback::{Field, Operand, Query, Term};
use crate::value::Value;

/// The most records one query answers (ours, §6.1).
pub const MAX_RECORDS: usize = 1000;

/// `GET {root}/service/callback[/{name}]`.
pub async fn query(gw: &Gateway, name: Option<&str>, req: ApiRequest) -> Result<Reply, ApiError> {
    let services: Vec<String> = match name {
        Some(name) => vec![Service::named(gw, name)?.name().to_string()],
        None => gw.config.callback.services.clone(),
    };
    let lookup_keys = lookup_keys(gw, &services);
    let mut operand = Operand::And;
    let mut terms = Vec::new();
    for (key, value) in req.params.iter() {
        let Value::Text(value) = value else {
            return Err(errors::invalid_parameter(format!("'{key}' must be text")));
        };
        if key == "operand" {
            operand = match value.to_ascii_uppercase().as_str() {
                "AND" => Operand::And,
                "OR" => Operand::Or,
                _ => {
                    return Err(errors::invalid_parameter(format!(
                        "operand must be AND or OR, not '{value}'"
                    )))
                }
            };
            continue;
        }
        let field = match key {
            "_id" => Field::Id,
            "_callback_state" => Field::State,
            "_callback_reason" => Field::Reason,
            k if lookup_keys.iter().any(|l| l == k) => Field::Lookup(k.to_string()),
            k => {
                return Err(errors::invalid_parameter(format!(
                    "'{k}' is not a filter: _id, _callback_state, _callback_reason or a lookup key ({})",
                    lookup_keys.join(", ")
                )))
            }
        };
        terms.push(match value.strip_prefix('!') {
            Some(not) => Term::not(field, not),
            None => Term::is(field, value),
        });
    }
    if terms.is_empty() {
        return Err(errors::invalid_parameter(
            "a query needs at least one filter (_id, _callback_state, _callback_reason or a lookup key)",
        ));
    }
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let query = Query::new(terms, operand, MAX_RECORDS);
    let found = gw.store.callbacks().query(&names, &query).await?;
    if !found.complete {
        log::info!(
            "a callback query stopped at the scan bound; its answer may miss records ({names:?})"
        );
    }
    Ok(json_array(
        found
            .records
            .iter()
            .filter(|r| visible(gw, &req, r))
            .map(|r| record_object(gw, &req, r).finish()),
    ))
}

/// The lookup keys of `services` (across services, their union).
fn lookup_keys(gw: &Gateway, services: &[String]) -> Vec<String> {
    let mut keys = vec![CUSTOMER_NUMBER.to_string()];
    for name in services {
        if let Ok(svc) = Service::named(gw, name) {
            for k in &svc.callback.lookup_keys {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    keys
}
