//! The Callback Services API (`gms-callback.md`): not served yet. Every one of its routes gets
//! here and is answered with a 404 that says so, never as a service named `callback`; with
//! `gms.fallback_to_backend` the plugin passes them to the web tier instead (`plugin.rs`).
//! The handlers of issue 18 replace [`answer`]'s body, one arm per [`CallbackRoute`].

use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::routes::CallbackRoute;

/// Answers a Callback Services API request.
pub async fn answer(
    _gw: &Gateway,
    route: &CallbackRoute,
    _req: ApiRequest,
) -> Result<Reply, ApiError> {
    Err(not_served(route))
}

/// The 404 of a Callback API route while the API is not served: it names the callback service
/// when the path does.
pub fn not_served(route: &CallbackRoute) -> ApiError {
    ApiError::NotFound(match route.service() {
        Some(name) => format!(
            "no callback service '{name}' is configured: this gateway does not serve the Callback Services API yet"
        ),
        None => "this gateway does not serve the Callback Services API yet".to_string(),
    })
}
