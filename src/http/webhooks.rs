//! `/api/v1/webhooks/`: subscriptions to the shop's events, their signing
//! secrets and delivery logs (admins, or API keys with `webhooks:manage`).
//! A secret is answered only at creation and on a rotation.

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, QueryParams, ValidJson};
use super::pagination::{page, page_request};
use super::state::AppState;
use crate::actors::webhooks::messages::*;
use crate::domain::pagination::Page;
use crate::domain::validation::ValidationErrors;
use crate::domain::webhooks::DeliveryStatus;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks")
            .route(web::get().to(list_webhooks))
            .route(web::post().to(create_webhook)),
    )
    .service(
        web::resource("/webhooks/{id}")
            .route(web::get().to(get_webhook))
            .route(web::patch().to(update_webhook))
            .route(web::delete().to(delete_webhook)),
    )
    .service(
        web::resource("/webhooks/{id}/rotate-secret").route(web::post().to(rotate_webhook_secret)),
    )
    .service(
        web::resource("/webhooks/{id}/deliveries").route(web::get().to(list_webhook_deliveries)),
    )
    .service(
        web::resource("/webhooks/{id}/deliveries/{delivery_id}/redeliver")
            .route(web::post().to(redeliver_webhook)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_webhooks,
    create_webhook,
    get_webhook,
    update_webhook,
    delete_webhook,
    rotate_webhook_secret,
    list_webhook_deliveries,
    redeliver_webhook
))]
pub struct Api;

/// A delivery's status, as the deliveries filter names it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // read by the document only; the handler parses the raw query
enum DeliveryStatusName {
    Pending,
    Succeeded,
    Failed,
}

/// Body of `POST /webhooks/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookRequest {
    /// Where deliveries are POSTed: `https://` (plain `http://` only to
    /// loopback, where the instance allows it for development).
    #[schema(min_length = 1, max_length = 2048)]
    url: String,
    /// Event types (see docs/EVENTS.md), or `"*"` for every type.
    #[schema(min_items = 1, max_items = 64)]
    events: Vec<String>,
    /// What it is for (at most 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    description: String,
    /// Whether deliveries are made (default true).
    #[serde(default = "yes")]
    is_active: bool,
}

fn yes() -> bool {
    true
}

/// Body of `PATCH /webhooks/{id}/`: what is given changes. Setting
/// `is_active` to true re-enables a disabled endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookPatch {
    #[schema(min_length = 1, max_length = 2048)]
    url: Option<String>,
    #[schema(min_items = 1, max_items = 64)]
    events: Option<Vec<String>>,
    #[schema(max_length = 500)]
    description: Option<String>,
    is_active: Option<bool>,
}

/// Subscribes a URL to events. The answer holds the signing secret, once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", operation_id = "create_webhook",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "The endpoint, with its secret", body = EndpointWithSecret),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 422, description = "`validation_error`: a refused URL (not https, private address, credentials), an unknown event type"),
    ))]
async fn create_webhook(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<WebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let created = state
        .actors
        .webhooks
        .call(CreateEndpoint {
            url: body.url,
            events: body.events,
            description: body.description,
            is_active: body.is_active,
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Every subscription, oldest first (without secrets).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(crate::http::pagination::PageParams),
    responses(
        (status = 200, description = "One page of endpoints", body = Page<EndpointView>),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_webhooks(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Page<EndpointView>>, ApiError> {
    let paging = page_request(&QueryParams::from_request(&req))?;
    let (endpoints, count) = state
        .actors
        .webhooks
        .call(ListEndpoints {
            limit: paging.limit(),
            offset: paging.offset(),
        })
        .await?;
    Ok(Json(page(&req, paging, count, endpoints)?))
}

/// One subscription (without its secret).
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(("id" = String, Path, description = "The endpoint's id (a UUID)")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such endpoint"),
    ))]
async fn get_webhook(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let id = path_id(&id, "webhook endpoint")?;
    Ok(Json(state.actors.webhooks.call(GetEndpoint(id)).await?))
}

/// Changes a subscription; `is_active: true` re-enables a disabled one.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", operation_id = "update_webhook",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(("id" = String, Path, description = "The endpoint's id (a UUID)")),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such endpoint"),
        (status = 422, description = "`validation_error`: a refused URL, an unknown event type"),
    ))]
async fn update_webhook(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<WebhookPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    let id = path_id(&id, "webhook endpoint")?;
    let body = body.0;
    Ok(Json(
        state
            .actors
            .webhooks
            .call(UpdateEndpoint {
                id,
                url: body.url,
                events: body.events,
                description: body.description,
                is_active: body.is_active,
            })
            .await?,
    ))
}

/// Removes a subscription and its delivery log.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(("id" = String, Path, description = "The endpoint's id (a UUID)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such endpoint"),
    ))]
async fn delete_webhook(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "webhook endpoint")?;
    state.actors.webhooks.call(DeleteEndpoint(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, answered once. The old one keeps signing beside
/// it for 24 hours (both signatures are sent), so subscribers can switch
/// without missing a delivery.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotate_webhook_secret",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(("id" = String, Path, description = "The endpoint's id (a UUID)")),
    responses(
        (status = 200, description = "The endpoint, with its new secret", body = EndpointWithSecret),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such endpoint"),
    ))]
async fn rotate_webhook_secret(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let id = path_id(&id, "webhook endpoint")?;
    Ok(Json(state.actors.webhooks.call(RotateSecret(id)).await?))
}

/// An endpoint's deliveries, newest first: status, attempts, the last
/// answer's code and start, the next attempt.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(
        ("id" = String, Path, description = "The endpoint's id (a UUID)"),
        crate::http::pagination::PageParams,
        ("status" = Option<DeliveryStatusName>, Query, description = "Only deliveries in this status"),
    ),
    responses(
        (status = 200, description = "One page of deliveries", body = Page<DeliveryView>),
        (status = 400, description = "`invalid_query`: an unknown status"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such endpoint, or the page is past the last"),
    ))]
async fn list_webhook_deliveries(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let endpoint_id = path_id(&id, "webhook endpoint")?;
    let params = QueryParams::from_request(&req);
    let paging = page_request(&params)?;
    let status = match params.get("status") {
        None => None,
        Some(s) => match DeliveryStatus::parse(s.trim()) {
            Some(status) => Some(status.as_str().to_owned()),
            None => {
                return Err(ApiError::InvalidQuery(ValidationErrors::single(
                    "status",
                    "invalid",
                    "pending, succeeded or failed",
                )))
            }
        },
    };
    let (deliveries, count) = state
        .actors
        .webhooks
        .call(ListDeliveries {
            endpoint_id,
            status,
            limit: paging.limit(),
            offset: paging.offset(),
        })
        .await?;
    Ok(Json(page(&req, paging, count, deliveries)?))
}

/// Sends a delivery again, now, with a fresh retry schedule (same event
/// id, same body: subscribers de-duplicate it as before).
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks", operation_id = "redeliver_webhook",
    security(("bearer" = []), ("api_key" = ["webhooks:manage"])),
    params(
        ("id" = String, Path, description = "The endpoint's id (a UUID)"),
        ("delivery_id" = String, Path, description = "The delivery's id (a UUID)"),
    ),
    responses(
        (status = 202, description = "Due now", body = DeliveryView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such endpoint or delivery"),
        (status = 409, description = "`endpoint_disabled`: re-enable the endpoint first"),
    ))]
async fn redeliver_webhook(
    state: Data<AppState>,
    _admin: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let endpoint_id = path_id(&path.0, "webhook endpoint")?;
    let delivery_id = path_id(&path.1, "webhook delivery")?;
    let delivery = state
        .actors
        .webhooks
        .call(Redeliver {
            endpoint_id,
            delivery_id,
        })
        .await?;
    Ok(HttpResponse::Accepted().json(delivery))
}
