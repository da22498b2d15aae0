//! `/api/v1/auth/me/addresses/…`: the caller's address book. Each
//! customer sees and changes only their own; another customer's address
//! is not found.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::error::ApiError;
use super::extract::{path_id, Authenticated, QueryParams, ValidJson};
use super::pagination::{page, page_request};
use super::state::AppState;
use crate::actors::auth::messages::{
    AddressView, CreateAddress, DeleteAddress, GetAddress, ListAddresses, UpdateAddress,
};
use crate::domain::auth::address_book::{AddressDraft, AddressPatch};
use crate::domain::orders::address::ShippingAddress;
use crate::domain::pagination::Page;
use crate::domain::validation::ValidationErrors;

/// The address book's routes. Registered before the `/auth` scope, which
/// would otherwise claim every path under it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth/me/addresses")
            // Personal data: never kept by a shared cache.
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .service(
                web::resource("")
                    .route(web::get().to(list_addresses))
                    .route(web::post().to(create_address)),
            )
            .service(
                web::resource("/{id}")
                    .route(web::get().to(get_address))
                    .route(web::patch().to(patch_address))
                    .route(web::delete().to(delete_address)),
            ),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_addresses,
    create_address,
    get_address,
    patch_address,
    delete_address
))]
pub struct Api;

/// The caller's addresses, oldest first (at most 20).
#[utoipa::path(get, path = "/auth/me/addresses", tag = "auth", operation_id = "list_addresses",
    security(("bearer" = [])),
    params(crate::http::pagination::PageParams),
    responses(
        (status = 200, description = "One page of the caller's addresses", body = Page<AddressView>),
        (status = 401, description = "`not_authenticated` or `token_not_valid`"),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_addresses(
    req: HttpRequest,
    state: Data<AppState>,
    user: Authenticated,
) -> Result<Json<Page<AddressView>>, ApiError> {
    let paging = page_request(&QueryParams::from_request(&req))?;
    let all = state
        .actors
        .auth
        .call(ListAddresses {
            user_id: user.0.user_id,
        })
        .await?;
    let count = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let results = all
        .into_iter()
        .skip(usize::try_from(paging.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(paging.limit()).unwrap_or_default())
        .collect();
    Ok(Json(page(&req, paging, count, results)?))
}

/// Adds an address. The first one becomes the default for shipping and
/// billing unless the body says otherwise; making an address a default
/// takes that default from the caller's other address.
#[utoipa::path(post, path = "/auth/me/addresses", tag = "auth", operation_id = "create_address",
    security(("bearer" = [])),
    request_body = AddressDraft,
    responses(
        (status = 201, description = "The address", body = AddressView),
        (status = 401, description = "`not_authenticated` or `token_not_valid`"),
        (status = 409, description = "`address_limit`: the book already holds 20 addresses"),
        (status = 422, description = "`validation_error`: a missing or bad field"),
    ))]
async fn create_address(
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<AddressDraft>,
) -> Result<HttpResponse, ApiError> {
    let address = state
        .actors
        .auth
        .call(CreateAddress {
            user_id: user.0.user_id,
            draft: body.0,
        })
        .await?;
    Ok(HttpResponse::Created().json(address))
}

/// One of the caller's addresses.
#[utoipa::path(get, path = "/auth/me/addresses/{id}", tag = "auth", operation_id = "get_address",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The address's id")),
    responses(
        (status = 200, description = "The address", body = AddressView),
        (status = 401, description = "`not_authenticated` or `token_not_valid`"),
        (status = 404, description = "`not_found`: no such address in the caller's book"),
    ))]
async fn get_address(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<AddressView>, ApiError> {
    let id = path_id(&id, "address")?;
    let address = state
        .actors
        .auth
        .call(GetAddress {
            user_id: user.0.user_id,
            id,
        })
        .await?;
    Ok(Json(address))
}

/// Changes some fields of one of the caller's addresses. Placed orders
/// keep the copy they were placed with.
#[utoipa::path(patch, path = "/auth/me/addresses/{id}", tag = "auth", operation_id = "patch_address",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The address's id")),
    request_body = AddressPatch,
    responses(
        (status = 200, description = "The address", body = AddressView),
        (status = 401, description = "`not_authenticated` or `token_not_valid`"),
        (status = 404, description = "`not_found`: no such address in the caller's book"),
        (status = 422, description = "`validation_error`: no field given, or a bad one"),
    ))]
async fn patch_address(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
    body: ValidJson<AddressPatch>,
) -> Result<Json<AddressView>, ApiError> {
    let id = path_id(&id, "address")?;
    let patch = body.0;
    if is_empty(&patch) {
        return Err(ApiError::Validation(ValidationErrors::single(
            "body",
            "empty",
            "give at least one field to change",
        )));
    }
    let address = state
        .actors
        .auth
        .call(UpdateAddress {
            user_id: user.0.user_id,
            id,
            patch,
        })
        .await?;
    Ok(Json(address))
}

fn is_empty(p: &AddressPatch) -> bool {
    p.name.is_none()
        && p.line1.is_none()
        && p.line2.is_none()
        && p.city.is_none()
        && p.region.is_none()
        && p.postal_code.is_none()
        && p.country.is_none()
        && p.phone.is_none()
        && p.is_default_shipping.is_none()
        && p.is_default_billing.is_none()
}

/// Removes one of the caller's addresses; a default it was is then unset.
#[utoipa::path(delete, path = "/auth/me/addresses/{id}", tag = "auth", operation_id = "delete_address",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The address's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`not_authenticated` or `token_not_valid`"),
        (status = 404, description = "`not_found`: no such address in the caller's book"),
    ))]
async fn delete_address(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "address")?;
    state
        .actors
        .auth
        .call(DeleteAddress {
            user_id: user.0.user_id,
            id,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An order's shipping address from its body: the inline address, or a
/// copy of one of the caller's book (`shipping_address_id`; another
/// customer's is 404). Exactly one must be given. The order keeps the copy,
/// so later edits of the book never change it.
pub async fn shipping_address_of(
    state: &AppState,
    user_id: uuid::Uuid,
    inline: Option<ShippingAddress>,
    id: Option<uuid::Uuid>,
) -> Result<ShippingAddress, ApiError> {
    match (inline, id) {
        (Some(address), None) => address.validate().map_err(ApiError::Validation),
        (None, Some(id)) => {
            let a = state.actors.auth.call(GetAddress { user_id, id }).await?;
            Ok(ShippingAddress {
                name: a.name,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                region: a.region,
                postal_code: a.postal_code,
                country: a.country,
                phone: a.phone,
            })
        }
        (Some(_), Some(_)) => Err(ApiError::Validation(ValidationErrors::single(
            "shipping_address_id",
            "conflict",
            "give shipping_address or shipping_address_id, not both",
        ))),
        (None, None) => Err(ApiError::Validation(ValidationErrors::single(
            "shipping_address",
            "required",
            "give shipping_address, or shipping_address_id naming one of your addresses",
        ))),
    }
}
