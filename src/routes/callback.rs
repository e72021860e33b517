//! The Callback Services API's paths (`gms-callback.md` section 2): `callback` after
//! `/service/` is a reserved word, so every path under `{root}/service/callback` is the
//! Callback API's, never a service named `callback` nor a request on a service id `callback`.
//! The admin endpoints under `{root}/admin/callback/` are its too.

use http::Method;

use super::Route;

/// One operation of the Callback Services API; its fields are the path's segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRoute {
    /// `POST {root}/service/callback/{service}`: create, immediate or scheduled (§3).
    Create {
        /// The callback service's configured name.
        service: String,
    },
    /// `GET {root}/service/callback/{service}`: query one service's callbacks (§6.1).
    Query {
        /// The callback service's configured name.
        service: String,
    },
    /// `GET {root}/service/callback`: query across services, e.g. by `_id` (§6.1).
    QueryAll,
    /// `DELETE {root}/service/callback/{service}/{id}`: cancel (§4).
    Cancel {
        /// The callback service's configured name.
        service: String,
        /// The callback's id.
        id: String,
    },
    /// `PUT {root}/service/callback/{service}/{id}`: reschedule, update, or (ORS) a state (§5, §7).
    Update {
        /// The callback service's configured name.
        service: String,
        /// The callback's id.
        id: String,
    },
    /// `GET {root}/service/callback/{service}/availability`: free slots, V1 (§6.2).
    Availability {
        /// The callback service's configured name.
        service: String,
    },
    /// `GET {root}/admin/callback/queues` (§9).
    AdminQueues,
    /// `GET {root}/admin/callback/watermarks` (§9).
    AdminWatermarks,
    /// `POST {root}/admin/callback/cancel` (§9).
    AdminCancel,
    /// `POST {root}/admin/callback/reportcancelled` (§9).
    AdminReportCancelled,
}

impl CallbackRoute {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CallbackRoute::Create { .. } => "callback_create",
            CallbackRoute::Query { .. } => "callback_query",
            CallbackRoute::QueryAll => "callback_query_all",
            CallbackRoute::Cancel { .. } => "callback_cancel",
            CallbackRoute::Update { .. } => "callback_update",
            CallbackRoute::Availability { .. } => "callback_availability",
            CallbackRoute::AdminQueues => "callback_admin_queues",
            CallbackRoute::AdminWatermarks => "callback_admin_watermarks",
            CallbackRoute::AdminCancel => "callback_admin_cancel",
            CallbackRoute::AdminReportCancelled => "callback_admin_report_cancelled",
        }
    }

    /// The callback service the path names, if it names one.
    pub fn service(&self) -> Option<&str> {
        match self {
            CallbackRoute::Create { service }
            | CallbackRoute::Query { service }
            | CallbackRoute::Cancel { service, .. }
            | CallbackRoute::Update { service, .. }
            | CallbackRoute::Availability { service } => Some(service),
            _ => None,
        }
    }

    /// Whether it is one of the admin endpoints (admin credentials, not the client's).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            CallbackRoute::AdminQueues
                | CallbackRoute::AdminWatermarks
                | CallbackRoute::AdminCancel
                | CallbackRoute::AdminReportCancelled
        )
    }
}

/// The route of a path under an API root (`s`: its decoded segments) when it is the Callback
/// API's: a [`Route::Callback`], the 405 of one of its paths, or the 404 of a path under
/// `service/callback` that is none of them. `None`: not the Callback API's.
pub(super) fn route(method: &Method, s: &[&str]) -> Option<Route> {
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let own = |x: &str| x.to_string();
    let only = |allow| Some(Route::MethodNotAllowed { allow });
    let cb = |c| Some(Route::Callback(c));
    match s {
        ["service", "callback"] if get => cb(CallbackRoute::QueryAll),
        ["service", "callback"] => only("GET"),
        ["service", "callback", name] if post => cb(CallbackRoute::Create { service: own(name) }),
        ["service", "callback", name] if get => cb(CallbackRoute::Query { service: own(name) }),
        ["service", "callback", _] => only("GET, POST"),
        ["service", "callback", name, "availability"] if get => {
            cb(CallbackRoute::Availability { service: own(name) })
        }
        // Callback ids are UUIDs: `availability` is never one.
        ["service", "callback", _, "availability"] => only("GET"),
        ["service", "callback", name, id] if *method == Method::PUT => cb(CallbackRoute::Update {
            service: own(name),
            id: own(id),
        }),
        ["service", "callback", name, id] if *method == Method::DELETE => {
            cb(CallbackRoute::Cancel {
                service: own(name),
                id: own(id),
            })
        }
        ["service", "callback", _, _] => only("PUT, DELETE"),
        ["service", "callback", ..] => Some(Route::NotFound),
        ["admin", "callback", "queues"] if get => cb(CallbackRoute::AdminQueues),
        ["admin", "callback", "watermarks"] if get => cb(CallbackRoute::AdminWatermarks),
        ["admin", "callback", "queues" | "watermarks"] => only("GET"),
        ["admin", "callback", "cancel"] if post => cb(CallbackRoute::AdminCancel),
        ["admin", "callback", "reportcancelled"] if post => cb(CallbackRoute::AdminReportCancelled),
        ["admin", "callback", "cancel" | "reportcancelled"] => only("POST"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: Method, path: &str) -> Route {
        super::super::route(&m, path, &["/genesys/1".to_string()])
    }

    fn cb(c: CallbackRoute) -> Route {
        Route::Callback(c)
    }

    #[test]
    fn callback_paths_are_the_callback_apis() {
        let name = || "cb_new".to_string();
        let id = || "7f8e".to_string();
        for (m, path, want) in [
            (
                Method::POST,
                "service/callback/cb_new",
                cb(CallbackRoute::Create { service: name() }),
            ),
            (
                Method::GET,
                "service/callback/cb_new",
                cb(CallbackRoute::Query { service: name() }),
            ),
            (Method::GET, "service/callback", cb(CallbackRoute::QueryAll)),
            (
                Method::DELETE,
                "service/callback/cb_new/7f8e",
                cb(CallbackRoute::Cancel {
                    service: name(),
                    id: id(),
                }),
            ),
            (
                Method::PUT,
                "service/callback/cb_new/7f8e",
                cb(CallbackRoute::Update {
                    service: name(),
                    id: id(),
                }),
            ),
            (
                Method::GET,
                "service/callback/cb_new/availability",
                cb(CallbackRoute::Availability { service: name() }),
            ),
            (
                Method::GET,
                "admin/callback/queues",
                cb(CallbackRoute::AdminQueues),
            ),
            (
                Method::GET,
                "admin/callback/watermarks",
                cb(CallbackRoute::AdminWatermarks),
            ),
            (
                Method::POST,
                "admin/callback/cancel",
                cb(CallbackRoute::AdminCancel),
            ),
            (
                Method::POST,
                "admin/callback/reportcancelled",
                cb(CallbackRoute::AdminReportCancelled),
            ),
            // Never a service named `callback`, nor a request or storage of an id `callback`.
            (
                Method::POST,
                "service/callback",
                Route::MethodNotAllowed { allow: "GET" },
            ),
            (
                Method::DELETE,
                "service/callback",
                Route::MethodNotAllowed { allow: "GET" },
            ),
            (
                Method::DELETE,
                "service/callback/cb_new",
                Route::MethodNotAllowed { allow: "GET, POST" },
            ),
            (
                Method::GET,
                "service/callback/cb_new/7f8e",
                Route::MethodNotAllowed {
                    allow: "PUT, DELETE",
                },
            ),
            (
                Method::GET,
                "service/callback/storage/binary/k",
                Route::NotFound,
            ),
            (
                Method::PUT,
                "service/callback/cb_new/availability",
                Route::MethodNotAllowed { allow: "GET" },
            ),
            (
                Method::DELETE,
                "admin/callback/queues",
                Route::MethodNotAllowed { allow: "GET" },
            ),
        ] {
            assert_eq!(r(m, &format!("/genesys/1/{path}")), want, "{path}");
        }
    }
}
