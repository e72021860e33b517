//! The one place that maps a [`Route`] to its handler in [`crate::api`] or
//! [`crate::builtin`], after the checks every client request passes: credentials
//! (`gms.api_auth`) and the per-IP limit on creates.

use crate::access::check_api_auth;
use crate::api;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::routes::Route;

/// Answers an API route. Pass-through routes never reach here.
pub async fn dispatch(gw: &Gateway, route: Route, req: ApiRequest) -> Result<Reply, ApiError> {
    admit(gw, &route, &req)?;
    match route {
        Route::CreateService { service } => api::service::create(gw, &service, req).await,
        Route::ServiceRequest { id, request } => {
            api::service::request(gw, &id, &request, req).await
        }
        Route::DeleteService { id } => api::service::delete(gw, &id, req).await,
        Route::StorageCreate { ttl } => api::storage::create(gw, &ttl, req).await,
        Route::StorageUpdate { id, ttl } => api::storage::update(gw, &id, &ttl, req).await,
        Route::StorageCustom { id, ttl } => api::storage::custom(gw, &id, &ttl, req).await,
        Route::StorageGetAll { id } => api::storage::get_all(gw, &id, req).await,
        Route::StorageGetKey { id, key } => api::storage::get_key(gw, &id, &key, req, false).await,
        Route::StorageBinary { id, key } => api::storage::get_key(gw, &id, &key, req, true).await,
        Route::StorageDelete { id } => api::storage::delete(gw, &id, req).await,
        Route::NodeStatus => api::admin::node_status(gw, &req),
        Route::NodeChangeStatus { status } => api::admin::change_status(gw, &status, &req),
        Route::NodeHealth => api::admin::health(gw).await,
        Route::StatusPush { id } => api::admin::status_push(gw, &id, req).await,
        Route::TestPage(file) if gw.config.test_page => api::test_page::serve(&gw.config, file),
        Route::NotFound | Route::PassThrough | Route::TestPage(_) => {
            Err(ApiError::NotFound("no such API path".into()))
        }
        Route::MethodNotAllowed { allow } => Err(ApiError::MethodNotAllowed(allow)),
        Route::BadPath(m) => Err(ApiError::BadRequest(m)),
    }
}

/// Client credentials on the service and storage APIs (when `gms.api_auth` is set), then the
/// per-IP limit on creates. The admin API has its own credentials; health has none.
fn admit(gw: &Gateway, route: &Route, req: &ApiRequest) -> Result<(), ApiError> {
    let client_api = matches!(
        route,
        Route::CreateService { .. }
            | Route::ServiceRequest { .. }
            | Route::DeleteService { .. }
            | Route::StorageCreate { .. }
            | Route::StorageUpdate { .. }
            | Route::StorageCustom { .. }
            | Route::StorageGetAll { .. }
            | Route::StorageGetKey { .. }
            | Route::StorageBinary { .. }
            | Route::StorageDelete { .. }
    );
    if let (true, Some(auth)) = (client_api, &gw.config.api_auth) {
        check_api_auth(auth, req.api_key.as_deref(), req.authorization.as_deref())?;
    }
    if let (Route::CreateService { .. }, Some(limiter), Some(ip)) =
        (route, &gw.create_limiter, &req.client_ip)
    {
        limiter.admit(ip)?;
    }
    Ok(())
}
