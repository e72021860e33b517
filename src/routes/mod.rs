//! Method + path -> [`Route`]: which API operation a request is, before any body is read
//! (contract sections 1, 4, 7, 8). Paths outside the API roots pass through to the web tier.
//!
//! No spelling of an API path reaches the web tier (issue 15, item 4). A path under an API root
//! as sent is routed as sent: its segments are ids and keys, where `.` and `..` are names,
//! never steps up. Any other path is routed on its normal form (`paths.rs`): if that is under a
//! root, the request is the API's; if a more lenient server would read it as an API path, it is
//! refused with a 400 rather than passed on.

use std::borrow::Cow;

use http::Method;

use crate::callback::Version;
use crate::paths::{after_root, decode_segment, normalize, slips_into_api, under_root};

/// The API operation a request asks for.
// Each variant's doc is its path; its fields are the path's segments of the same names.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST {root}/service/{service}`
    CreateService { service: String },
    /// `POST` or `GET {root}/service/{id}/{request}` (a GET's query parameters are taken as a
    /// POST's body parameters: contract 4.2)
    ServiceRequest { id: String, request: String },
    /// `DELETE {root}/service/{id}`
    DeleteService { id: String },
    /// `GET {root}/service/{id}/storage`: the service's user data (`gms-callback.md` 11.7)
    ServiceStorageGetAll { id: String },
    /// `GET {root}/service/{id}/storage/{key}`
    ServiceStorageGetKey { id: String, key: String },
    /// `GET {root}/service/{id}/storage/binary/{key}`
    ServiceStorageBinary { id: String, key: String },
    /// `POST {root}/service/{id}/storage`: merges into the service's user data
    ServiceStorageUpdate { id: String },
    /// `DELETE {root}/service/{id}/storage/{key}`: one key
    ServiceStorageDeleteKey { id: String, key: String },
    /// `POST {root}/storage/{ttl}`
    StorageCreate { ttl: String },
    /// `POST {root}/storage/{id}/{ttl}`
    StorageUpdate { id: String, ttl: String },
    /// `POST {root}/storage/custom/{id}/{ttl}`
    StorageCustom { id: String, ttl: String },
    /// `GET {root}/storage/{id}`
    StorageGetAll { id: String },
    /// `GET {root}/storage/{id}/{key}`
    StorageGetKey { id: String, key: String },
    /// `GET {root}/storage/binary/{id}/{key}`
    StorageBinary { id: String, key: String },
    /// `DELETE {root}/storage/{id}`
    StorageDelete { id: String },
    /// `GET {root}/admin/node/status`
    NodeStatus,
    /// `POST {root}/admin/node/changestatus/{status}`
    NodeChangeStatus { status: String },
    /// `GET {root}/admin/node/health`
    NodeHealth,
    /// `POST {root}/admin/service/{id}/status`
    StatusPush { id: String },
    /// `GET {root}/admin/servicetest.{html,js,css}`: the optional service test page.
    TestPage(PageFile),
    /// `GET {root}/service/{service}`: an office-hours or capacity service's API
    /// (`gms-callback.md` §10).
    ServiceGet { service: String },
    /// `POST {root}/service/callback/{service}` (`gms-callback.md` §3)
    CallbackCreate { service: String },
    /// `GET {root}/service/callback/{service}`, or `GET {root}/service/callback` across
    /// services (§6.1)
    CallbackQuery { service: Option<String> },
    /// `DELETE {root}/service/callback/{service}/{id}` (§4)
    CallbackCancel { service: String, id: String },
    /// `PUT {root}/service/callback/{service}/{id}` (§5, §7.2)
    CallbackUpdate { service: String, id: String },
    /// `GET {root}/service/callback/{service}/availability` (V1), and the same path under the
    /// V2 root, e.g. `/genesys/2` ([`v2_root`]) (§6.2)
    CallbackAvailability { service: String, version: Version },
    /// `GET {root}/admin/callback/queues` (§9)
    CallbackAdminQueues,
    /// `GET {root}/admin/callback/watermarks` (§9)
    CallbackAdminWatermarks,
    /// `POST {root}/admin/callback/cancel` (§9)
    CallbackAdminCancel,
    /// `POST {root}/admin/callback/reportcancelled` (§9)
    CallbackAdminReport,
    /// Under an API root, but no such path.
    NotFound,
    /// A known path with the wrong method; `allow` lists the path's methods (the `Allow` header).
    MethodNotAllowed { allow: &'static str },
    /// A path segment that does not decode to clean UTF-8.
    BadPath(String),
    /// Not under an API root: the web tier's.
    PassThrough,
}

/// One file of the service test page (`gms.test_page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFile {
    /// `servicetest.html`: the page, with the configured services in it.
    Html,
    /// `servicetest.js`: its script (a file of its own, so the CSP can forbid inline script).
    Script,
    /// `servicetest.css`: its style sheet.
    Style,
}

/// What a route reads from the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyUse {
    /// Nothing: the body (if any) is left unread, and the connection closes after the reply.
    Ignore,
    /// Parameters from the body and the query string.
    Params,
    /// The raw bytes (a pushed status is stored as sent).
    Raw,
}

impl Route {
    /// What the handler reads from the body.
    pub fn body_use(&self) -> BodyUse {
        match self {
            Route::CreateService { .. }
            | Route::ServiceRequest { .. }
            | Route::ServiceStorageUpdate { .. }
            | Route::StorageCreate { .. }
            | Route::StorageUpdate { .. }
            | Route::StorageCustom { .. }
            | Route::ServiceGet { .. }
            | Route::CallbackCreate { .. }
            | Route::CallbackQuery { .. }
            | Route::CallbackCancel { .. }
            | Route::CallbackUpdate { .. }
            | Route::CallbackAvailability { .. }
            | Route::CallbackAdminQueues
            | Route::CallbackAdminWatermarks => BodyUse::Params,
            // JSON bodies with arrays (`ids`, `exported_properties`), which parameters cannot
            // hold: the handlers parse them.
            Route::StatusPush { .. } | Route::CallbackAdminCancel | Route::CallbackAdminReport => {
                BodyUse::Raw
            }
            _ => BodyUse::Ignore,
        }
    }

    /// The callback service a Callback API path names, if it names one.
    pub fn callback_service(&self) -> Option<&str> {
        match self {
            Route::CallbackCreate { service }
            | Route::CallbackCancel { service, .. }
            | Route::CallbackUpdate { service, .. }
            | Route::CallbackAvailability { service, .. } => Some(service),
            Route::CallbackQuery { service } => service.as_deref(),
            _ => None,
        }
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Route::CreateService { .. } => "service_create",
            Route::ServiceRequest { .. } => "service_request",
            Route::DeleteService { .. } => "service_delete",
            Route::ServiceStorageGetAll { .. } => "service_storage_get_all",
            Route::ServiceStorageGetKey { .. } => "service_storage_get_key",
            Route::ServiceStorageBinary { .. } => "service_storage_binary",
            Route::ServiceStorageUpdate { .. } => "service_storage_update",
            Route::ServiceStorageDeleteKey { .. } => "service_storage_delete_key",
            Route::StorageCreate { .. } => "storage_create",
            Route::StorageUpdate { .. } => "storage_update",
            Route::StorageCustom { .. } => "storage_custom",
            Route::StorageGetAll { .. } => "storage_get_all",
            Route::StorageGetKey { .. } => "storage_get_key",
            Route::StorageBinary { .. } => "storage_binary",
            Route::StorageDelete { .. } => "storage_delete",
            Route::NodeStatus => "node_status",
            Route::NodeChangeStatus { .. } => "node_change_status",
            Route::NodeHealth => "node_health",
            Route::StatusPush { .. } => "status_push",
            Route::TestPage(_) => "test_page",
            Route::ServiceGet { .. } => "service_get",
            Route::CallbackCreate { .. } => "callback_create",
            Route::CallbackQuery { .. } => "callback_query",
            Route::CallbackCancel { .. } => "callback_cancel",
            Route::CallbackUpdate { .. } => "callback_update",
            Route::CallbackAvailability { .. } => "callback_availability",
            Route::CallbackAdminQueues => "callback_admin_queues",
            Route::CallbackAdminWatermarks => "callback_admin_watermarks",
            Route::CallbackAdminCancel => "callback_admin_cancel",
            Route::CallbackAdminReport => "callback_admin_report",
            Route::NotFound => "not_found",
            Route::MethodNotAllowed { .. } => "method_not_allowed",
            Route::BadPath(_) => "bad_path",
            Route::PassThrough => "pass_through",
        }
    }

    /// Whether its errors carry `code` and `phrase` besides `exception` and `message`: every
    /// route of the Callback Services API (its admin endpoints included) and of office hours
    /// and capacity (`gms-callback.md` §3.4).
    pub fn coded_errors(&self) -> bool {
        matches!(
            self,
            Route::ServiceGet { .. }
                | Route::CallbackCreate { .. }
                | Route::CallbackQuery { .. }
                | Route::CallbackCancel { .. }
                | Route::CallbackUpdate { .. }
                | Route::CallbackAvailability { .. }
                | Route::CallbackAdminQueues
                | Route::CallbackAdminWatermarks
                | Route::CallbackAdminCancel
                | Route::CallbackAdminReport
        )
    }
}

/// The most path segments under an API root that any route has.
const MAX_SEGMENTS: usize = 6;

/// Finds the route of a request. `path` excludes the query string.
pub fn route(method: &Method, path: &str, prefixes: &[String]) -> Route {
    let normal;
    let as_sent = prefixes
        .iter()
        .find_map(|p| path.strip_prefix(p.as_str()).and_then(after_root));
    let under = match as_sent {
        Some(rest) => Some(rest),
        None => {
            normal = normalize(path);
            prefixes.iter().find_map(|p| under_root(&normal, p))
        }
    };
    let Some(rest) = under else {
        if let Some(route) = v2_route(method, path, prefixes) {
            return route;
        }
        if slips_into_api(path, prefixes) {
            return Route::BadPath(
                "this path outside the API reads as an API path once its encoded '/' or '\\', \
                 backslashes or ';' parameters are undone"
                    .into(),
            );
        }
        return Route::PassThrough;
    };
    // Segments live in arrays, not vectors: routing runs on every API request.
    let mut raw = [""; MAX_SEGMENTS];
    let mut n = 0;
    // A trailing `/` is no route. An empty segment inside (`service//callback`, as the Android
    // sample's first commit writes its availability URL, which GMS served) is skipped, as
    // normal form collapses `//`; it cannot climb to another path.
    if rest.ends_with('/') {
        return Route::NotFound;
    }
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if n == MAX_SEGMENTS {
            return Route::NotFound;
        }
        raw[n] = part;
        n += 1;
    }
    let mut seg: [Cow<'_, str>; MAX_SEGMENTS] = Default::default();
    for (slot, part) in seg.iter_mut().zip(&raw[..n]) {
        match decode_segment(part) {
            Ok(d) => *slot = d,
            Err(m) => return Route::BadPath(m),
        }
    }
    let mut s = [""; MAX_SEGMENTS];
    for (slot, c) in s.iter_mut().zip(&seg[..n]) {
        *slot = c;
    }
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    let own = |x: &str| x.to_string();
    let only = |allow| Route::MethodNotAllowed { allow };
    let put = *method == Method::PUT;
    match &s[..n] {
        // The Callback Services API: `callback` after `/service/` is reserved (gms-callback.md
        // §2); no service may have that name.
        ["service", "callback"] if get => Route::CallbackQuery { service: None },
        ["service", "callback"] => only("GET"),
        ["service", "callback", a] if post => Route::CallbackCreate { service: own(a) },
        ["service", "callback", a] if get => Route::CallbackQuery {
            service: Some(own(a)),
        },
        ["service", "callback", _] => only("GET, POST"),
        ["service", "callback", a, "availability"] if get => Route::CallbackAvailability {
            service: own(a),
            version: Version::V1,
        },
        // Never a callback id (those are UUIDs).
        ["service", "callback", _, "availability"] => only("GET"),
        ["service", "callback", a, b] if put => Route::CallbackUpdate {
            service: own(a),
            id: own(b),
        },
        ["service", "callback", a, b] if delete => Route::CallbackCancel {
            service: own(a),
            id: own(b),
        },
        ["service", "callback", _, _] => only("PUT, DELETE"),
        ["service", a] if post => Route::CreateService { service: own(a) },
        ["service", a] if delete => Route::DeleteService { id: own(a) },
        ["service", a] if get => Route::ServiceGet { service: own(a) },
        ["service", _] => only("GET, POST, DELETE"),
        // A service's storage before its requests: `storage` is never a request for ORS.
        ["service", a, "storage"] if get => Route::ServiceStorageGetAll { id: own(a) },
        ["service", a, "storage"] if post => Route::ServiceStorageUpdate { id: own(a) },
        ["service", _, "storage"] => only("GET, POST"),
        ["service", a, "storage", "binary", k] if get => Route::ServiceStorageBinary {
            id: own(a),
            key: own(k),
        },
        ["service", _, "storage", "binary", _] => only("GET"),
        ["service", a, "storage", k] if get => Route::ServiceStorageGetKey {
            id: own(a),
            key: own(k),
        },
        ["service", a, "storage", k] if delete => Route::ServiceStorageDeleteKey {
            id: own(a),
            key: own(k),
        },
        ["service", _, "storage", _] => only("GET, DELETE"),
        ["service", a, b] if post || get => Route::ServiceRequest {
            id: own(a),
            request: own(b),
        },
        ["service", _, _] => only("GET, POST"),
        ["storage", "binary", a, b] if get => Route::StorageBinary {
            id: own(a),
            key: own(b),
        },
        ["storage", "binary", _, _] => only("GET"),
        ["storage", "custom", a, b] if post => Route::StorageCustom {
            id: own(a),
            ttl: own(b),
        },
        ["storage", "custom", _, _] => only("POST"),
        ["storage", a] if post => Route::StorageCreate { ttl: own(a) },
        ["storage", a] if get => Route::StorageGetAll { id: own(a) },
        ["storage", a] if delete => Route::StorageDelete { id: own(a) },
        ["storage", _] => only("GET, POST, DELETE"),
        ["storage", a, b] if post => Route::StorageUpdate {
            id: own(a),
            ttl: own(b),
        },
        ["storage", a, b] if get => Route::StorageGetKey {
            id: own(a),
            key: own(b),
        },
        ["storage", _, _] => only("GET, POST"),
        ["admin", "node", "status"] if get => Route::NodeStatus,
        ["admin", "node", "health"] if get => Route::NodeHealth,
        ["admin", "node", "status" | "health"] => only("GET"),
        ["admin", "node", "changestatus", st] if post => {
            Route::NodeChangeStatus { status: own(st) }
        }
        ["admin", "node", "changestatus", _] => only("POST"),
        ["admin", "service", a, "status"] if post => Route::StatusPush { id: own(a) },
        ["admin", "service", _, "status"] => only("POST"),
        ["admin", "callback", "queues"] if get => Route::CallbackAdminQueues,
        ["admin", "callback", "watermarks"] if get => Route::CallbackAdminWatermarks,
        ["admin", "callback", "queues" | "watermarks"] => only("GET"),
        ["admin", "callback", "cancel"] if post => Route::CallbackAdminCancel,
        ["admin", "callback", "reportcancelled"] if post => Route::CallbackAdminReport,
        ["admin", "callback", "cancel" | "reportcancelled"] => only("POST"),
        // GET only: any other method gets the 404 of an unknown path, as when the page is off.
        ["admin", "servicetest.html"] if get => Route::TestPage(PageFile::Html),
        ["admin", "servicetest.js"] if get => Route::TestPage(PageFile::Script),
        ["admin", "servicetest.css"] if get => Route::TestPage(PageFile::Style),
        _ => Route::NotFound,
    }
}

/// The V2 root of an API root that ends in `/1` (`/genesys/1` -> `/genesys/2`): availability
/// V2 lives there, and nothing else does (gms-callback.md §1, §6.2).
pub fn v2_root(root: &str) -> Option<String> {
    root.strip_suffix("/1").map(|base| format!("{base}/2"))
}

/// Availability V2 (`GET {v2 root}/service/callback/{service}/availability`), the one API path
/// under a V2 root; every other path there stays the web tier's. Matched as sent, or in normal
/// form as the API roots are.
fn v2_route(method: &Method, path: &str, prefixes: &[String]) -> Option<Route> {
    let normal = normalize(path);
    let rest = prefixes
        .iter()
        .filter_map(|p| v2_root(p))
        .find_map(|root| {
            path.strip_prefix(root.as_str())
                .and_then(after_root)
                .or_else(|| under_root(&normal, &root))
                .map(str::to_string)
        })?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ["service", "callback", name, "availability"] = parts[..] else {
        return None;
    };
    let service = match decode_segment(name) {
        Ok(d) if !d.is_empty() => d.into_owned(),
        Ok(_) => return None,
        Err(m) => return Some(Route::BadPath(m)),
    };
    Some(if *method == Method::GET {
        Route::CallbackAvailability {
            service,
            version: Version::V2,
        }
    } else {
        Route::MethodNotAllowed { allow: "GET" }
    })
}

#[cfg(test)]
mod tests;
