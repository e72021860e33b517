//! The built-in services (contract section 5): access numbers and codes that let a phone call be
//! matched to the app session that asked for it.

mod matching;
pub mod reserve;

use crate::config::{BuiltinKind, ServiceConfig};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;

/// Answers a create of a built-in service.
pub async fn create(
    gw: &Gateway,
    svc: &ServiceConfig,
    kind: BuiltinKind,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    match kind {
        BuiltinKind::RequestInteraction => reserve::request_interaction(gw, svc, req).await,
        BuiltinKind::RequestAccess => reserve::request_access(gw, svc, req).await,
        BuiltinKind::MatchInteraction => matching::match_interaction(gw, svc, req).await,
    }
}
