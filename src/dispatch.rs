//! The one place that maps a [`Route`] to its handler in [`crate::api`], [`crate::builtin`]
//! or the Callback Services API (`callback/api/`), after the checks every client request passes: credentials
//! (`gms.api_auth`) and the per-IP limit on writes; which routes' bodies count as uploads.

use crate::access::check_api_auth;
use crate::api;
use crate::callback::api as callbacks;
use crate::config::{BuiltinKind, InternalAuth, ServiceKind};
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
        Route::ServiceStorageGetAll { id } => api::service_storage::get_all(gw, &id, req).await,
        Route::ServiceStorageGetKey { id, key } | Route::ServiceStorageBinary { id, key } => {
            api::service_storage::get_key(gw, &id, &key, req).await
        }
        Route::ServiceStorageUpdate { id } => api::service_storage::update(gw, &id, req).await,
        Route::ServiceStorageDeleteKey { id, key } => {
            api::service_storage::delete_key(gw, &id, &key, req).await
        }
        Route::StorageCreate { ttl } => api::storage::create(gw, &ttl, req).await,
        Route::StorageUpdate { id, ttl } => api::storage::update(gw, &id, &ttl, req).await,
        Route::StorageCustom { id, ttl } => api::storage::custom(gw, &id, &ttl, req).await,
        Route::StorageGetAll { id } => api::storage::get_all(gw, &id, req).await,
        Route::StorageGetKey { id, key } | Route::StorageBinary { id, key } => {
            api::storage::get_key(gw, &id, &key, req).await
        }
        Route::StorageDelete { id } => api::storage::delete(gw, &id, req).await,
        Route::NodeStatus => api::admin::node_status(gw, &req),
        Route::NodeChangeStatus { status } => api::admin::change_status(gw, &status, &req),
        Route::NodeHealth => api::admin::health(gw).await,
        Route::StatusPush { id } => api::admin::status_push(gw, &id, req).await,
        Route::TestPage(file) if gw.config.test_page => api::test_page::serve(&gw.config, file),
        Route::ServiceGet { service } => callbacks::hours::get(gw, &service, req),
        Route::CallbackCreate { service } => callbacks::create::create(gw, &service, req).await,
        Route::CallbackQuery { service } => {
            callbacks::query::query(gw, service.as_deref(), req).await
        }
        Route::CallbackCancel { service, id } => {
            callbacks::cancel::cancel(gw, &service, &id, req).await
        }
        Route::CallbackUpdate { service, id } => {
            callbacks::update::update(gw, &service, &id, req).await
        }
        Route::CallbackAvailability { service, version } => {
            callbacks::availability::availability(gw, &service, version, req).await
        }
        Route::CallbackAdminQueues => callbacks::admin::queues(gw, req).await,
        Route::CallbackAdminWatermarks => callbacks::admin::watermarks(gw, req).await,
        Route::CallbackAdminCancel => callbacks::bulk::cancel(gw, req).await,
        Route::CallbackAdminReport => callbacks::report::report(gw, req).await,
        Route::NotFound | Route::PassThrough | Route::TestPage(_) => {
            Err(ApiError::NotFound("no such API path".into()))
        }
        Route::MethodNotAllowed { allow } => Err(ApiError::MethodNotAllowed(allow)),
        Route::BadPath(m) => Err(ApiError::BadRequest(m)),
    }
}

/// What a route counts against the per-address limits of `gms.limits`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// Nothing: reads, deletes, the admin API, match-interaction (the IVR's, internal).
    Nothing,
    /// A write (`create_rate_per_ip`) and its body bytes (`upload_bytes_per_ip_per_s`).
    Write,
    /// Its body bytes only (a service request).
    Upload,
}

fn counted(gw: &Gateway, route: &Route) -> Counted {
    match route {
        Route::CreateService { service } if is_internal(gw, service) => Counted::Nothing,
        Route::CreateService { .. }
        | Route::StorageCreate { .. }
        | Route::StorageUpdate { .. }
        | Route::StorageCustom { .. }
        | Route::ServiceStorageUpdate { .. }
        | Route::CallbackCreate { .. } => Counted::Write,
        Route::ServiceRequest { .. } | Route::CallbackUpdate { .. } => Counted::Upload,
        _ => Counted::Nothing,
    }
}

/// Whether a route's body counts against the per-address upload byte rate: `answer.rs` counts
/// it as it arrives.
pub fn counts_upload(gw: &Gateway, route: &Route) -> bool {
    counted(gw, route) != Counted::Nothing
}

/// Client credentials on the service and storage APIs (when `gms.api_auth` is set), then the
/// per-IP limit on writes (upload bytes were counted as the body arrived). The admin API has
/// its own credentials; health has none; match-interaction has the internal ones
/// (`builtin::matching`).
fn admit(gw: &Gateway, route: &Route, req: &ApiRequest) -> Result<(), ApiError> {
    let client_api = matches!(
        route,
        Route::CreateService { .. }
            | Route::ServiceRequest { .. }
            | Route::DeleteService { .. }
            | Route::ServiceStorageGetAll { .. }
            | Route::ServiceStorageGetKey { .. }
            | Route::ServiceStorageBinary { .. }
            | Route::ServiceStorageUpdate { .. }
            | Route::ServiceStorageDeleteKey { .. }
            | Route::StorageCreate { .. }
            | Route::StorageUpdate { .. }
            | Route::StorageCustom { .. }
            | Route::StorageGetAll { .. }
            | Route::StorageGetKey { .. }
            | Route::StorageBinary { .. }
            | Route::StorageDelete { .. }
            | Route::ServiceGet { .. }
            | Route::CallbackCreate { .. }
            | Route::CallbackQuery { .. }
            | Route::CallbackCancel { .. }
            | Route::CallbackUpdate { .. }
            | Route::CallbackAvailability { .. }
    );
    // ORS reports callback states with the admin credentials (gms-callback.md §7.2, §13 Q14).
    let internal = matches!(route, Route::CreateService { service } if is_internal(gw, service))
        || matches!(route, Route::CallbackUpdate { .. } if api::admin::is_admin(gw, req));
    if let (true, false, Some(auth)) = (client_api, internal, &gw.config.api_auth) {
        check_api_auth(auth, req.api_key.as_deref(), req.authorization.as_deref())?;
    }
    match (&req.client_ip, counted(gw, route)) {
        (Some(ip), Counted::Write) => gw.client_limits.admit_write(ip),
        _ => Ok(()),
    }
}

/// Whether a create names an internal operation guarded by the internal credentials rather
/// than the client's (match-interaction, unless `internal_auth: none` opened it).
fn is_internal(gw: &Gateway, service: &str) -> bool {
    gw.config.internal.auth != InternalAuth::Open
        && gw
            .config
            .services
            .get(service)
            .is_some_and(|s| s.kind == ServiceKind::Builtin(BuiltinKind::MatchInteraction))
}
