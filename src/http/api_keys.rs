//! `/api/v1/api-keys/`: keys for the systems that call the shop (admins
//! only, and never with a key). The secret is answered once, at creation.

use actix_web::web::{self, Data, Json};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, ValidJson};
use super::state::AppState;
use crate::actors::auth::api_keys::*;
use crate::domain::auth::api_keys::Scope;
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api-keys")
            .route(web::get().to(list_api_keys))
            .route(web::post().to(create_api_key)),
    )
    .service(
        web::resource("/api-keys/{id}")
            .route(web::get().to(get_api_key))
            .route(web::delete().to(revoke_api_key)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list_api_keys, create_api_key, get_api_key, revoke_api_key))]
pub struct Api;

/// Body of `POST /api-keys/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ApiKeyRequest {
    /// What it is for (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r]")]
    name: String,
    /// At least one scope.
    #[schema(min_items = 1, max_items = 5)]
    scopes: Vec<Scope>,
    /// When it stops working (RFC 3339, in the future); never by default.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// Makes an API key (admins only). The answer is the only one that holds
/// its secret (`key`); only a digest of it is kept.
#[utoipa::path(post, path = "/api-keys", tag = "auth", operation_id = "create_api_key",
    security(("bearer" = [])),
    request_body = ApiKeyRequest,
    responses(
        (status = 201, description = "The key, with its secret", body = CreatedApiKey),
        (status = 403, description = "`permission_denied`: admins only (an API key included)"),
        (status = 422, description = "`validation_error`: no name, no scopes or an unknown one, an expiry in the past"),
    ))]
async fn create_api_key(
    state: Data<AppState>,
    admin: AdminUser,
    body: ValidJson<ApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = ValidationErrors::new();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add("name", "invalid", "1 to 200 characters");
    }
    if body.scopes.is_empty() {
        errors.add("scopes", "empty", "at least one scope");
    }
    // As the document says: each scope at most once in effect, so never
    // more entries than there are scopes.
    if body.scopes.len() > crate::domain::auth::api_keys::Scope::ALL.len() {
        errors.add("scopes", "too_many", "at most one entry per scope");
    }
    let scopes = body.scopes;
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        errors.add("expires_at", "past", "must be in the future");
    }
    errors.into_result().map_err(ApiError::Validation)?;
    let created = state
        .actors
        .auth
        .call(CreateApiKey {
            by: admin.0,
            name,
            scopes,
            expires_at: body.expires_at,
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Every API key, oldest first, revoked ones included (admins only).
#[utoipa::path(get, path = "/api-keys", tag = "auth", operation_id = "list_api_keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys, without their secrets", body = Vec<ApiKeyView>),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn list_api_keys(
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json(state.actors.auth.call(ListApiKeys).await?))
}

/// One API key (admins only).
#[utoipa::path(get, path = "/api-keys/{id}", tag = "auth", operation_id = "get_api_key",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (a UUID)")),
    responses(
        (status = 200, description = "The key, without its secret", body = ApiKeyView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such key"),
    ))]
async fn get_api_key(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let id = path_id(&id, "api key")?;
    Ok(Json(state.actors.auth.call(GetApiKey(id)).await?))
}

/// Revokes an API key (admins only): refused on every instance from the
/// next request. The record stays, revoked.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "auth", operation_id = "revoke_api_key",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (a UUID)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such key"),
    ))]
async fn revoke_api_key(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "api key")?;
    state.actors.auth.call(RevokeApiKey(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
