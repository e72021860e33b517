//! Per-service storage (`gms-callback.md` 11.7; the Android sample's `CallbackApi`): the
//! Storage API's operations on a service's user data (its `_data_id`), reached through the
//! service's id, with the service's owner rules (`gms_user`). Handled here, never relayed to
//! ORS. Replies are the Storage API's own ([`storage::values_reply`], [`storage::value_reply`]).
//!
//! Each use renews the service and its data (contract 4.1). A service whose data has expired
//! (data `_ttl` is shorter than `_service_ttl`) has empty storage, until a write starts it
//! afresh.

use serde_json::json;

use super::service::find;
use super::storage::{self, check_id};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::store::ServiceRecord;
use crate::value::Fields;

/// The 404 of a key the service's storage does not hold.
fn no_key(key: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("key '{key}' not found in service '{id}'"))
}

/// The service's data id, as its storage is keyed.
fn data_id(record: &ServiceRecord) -> String {
    record.data_id.hyphenated().to_string()
}

/// A live service the requester may use, renewed by this use, and its stored fields (none
/// when its data has expired).
async fn service_and_fields(
    gw: &Gateway,
    id: &str,
    req: &ApiRequest,
) -> Result<(ServiceRecord, Fields), ApiError> {
    let record = find(gw, id, req).await?;
    let fields = gw
        .store
        .get_data(&data_id(&record))
        .await?
        .map(|d| d.fields)
        .unwrap_or_default();
    gw.store.touch_service(&record).await?;
    Ok((record, fields))
}

/// `GET {root}/service/{id}/storage`: every value, files as binary URLs.
pub async fn get_all(gw: &Gateway, id: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let (record, fields) = service_and_fields(gw, id, &req).await?;
    Ok(storage::values_reply(gw, &req, &data_id(&record), &fields))
}

/// `GET {root}/service/{id}/storage/{key}` and `.../storage/binary/{key}`: one value.
pub async fn get_key(
    gw: &Gateway,
    id: &str,
    key: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    check_id(key)?;
    let (_, fields) = service_and_fields(gw, id, &req).await?;
    let value = storage::take_value(fields, key).ok_or_else(|| no_key(key, id))?;
    Ok(storage::value_reply(value))
}

/// `POST {root}/service/{id}/storage`: merges the body into the service's data, as the Storage
/// API's update does (underscore keys included: storage has no service parameters).
pub async fn update(gw: &Gateway, id: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let record = find(gw, id, &req).await?;
    gw.merge_user_data(&record, req.params.into_fields())
        .await?;
    gw.store.touch_service(&record).await?;
    Ok(Reply::json(&json!({ "id": data_id(&record) })))
}

/// `DELETE {root}/service/{id}/storage/{key}`: one key; 404 when it is not there.
pub async fn delete_key(
    gw: &Gateway,
    id: &str,
    key: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    check_id(key)?;
    let record = find(gw, id, &req).await?;
    let data = data_id(&record);
    let deleted = gw
        .store
        .delete_data_key(&data, record.owner.as_deref(), key)
        .await?;
    gw.store.touch_service(&record).await?;
    if !deleted {
        return Err(no_key(key, id));
    }
    Ok(Reply::json(&json!({ "id": data })))
}
