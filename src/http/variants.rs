//! `/api/v1/products/{id}/variants/…`: a product's variants, read by
//! anyone who can see the product's listing fields, changed by admins.

use std::collections::BTreeMap;

use actix_web::web::{self, Data, Json};
use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, ValidJson};
use super::state::AppState;
use crate::actors::catalog::messages::{
    CreateVariant, DeleteVariant, GetVariant, ListVariants, UpdateVariant, VariantView,
};
use crate::domain::catalog::variant::{VariantDraft, VariantPatch};
use crate::domain::validation::ValidationErrors;

/// The variant routes; registered before `/products/{id_or_slug}` would
/// not matter (more segments), but beside it for the reader.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/products/{id}/variants")
            .route(web::get().to(list_variants))
            .route(web::post().to(create_variant)),
    )
    .service(
        web::resource("/products/{id}/variants/{variant_id}")
            .route(web::get().to(get_variant))
            .route(web::patch().to(patch_variant))
            .route(web::delete().to(delete_variant)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_variants,
    create_variant,
    get_variant,
    patch_variant,
    delete_variant
))]
pub struct Api;

/// A variant in `POST /products/` or `POST /products/{id}/variants/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    /// Unique over the shop.
    #[schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\r]")]
    sku: String,
    /// One value of each of the product's options, by option name; absent
    /// or `{}` for a product without options.
    options: Option<BTreeMap<String, String>>,
    /// In minor units of the product's currency.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    price: i64,
    /// The "was" price shown struck through.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    compare_at_price: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    stock: i64,
    /// Default 0.
    #[schema(minimum = 0, maximum = 10_000_000)]
    weight_grams: Option<i64>,
    /// Whether the variant is shipped; default `true`. `false` for
    /// digital goods and services, which shipping is not charged for.
    requires_shipping: Option<bool>,
    /// Default `true`.
    is_active: Option<bool>,
    /// Display order among the product's variants; default 0.
    #[schema(minimum = 0, maximum = 10_000)]
    position: Option<i64>,
}

impl From<VariantRequest> for VariantDraft {
    fn from(r: VariantRequest) -> Self {
        VariantDraft {
            sku: r.sku,
            options: r.options.unwrap_or_default(),
            price: r.price,
            compare_at_price: r.compare_at_price,
            stock: r.stock,
            weight_grams: r.weight_grams,
            requires_shipping: r.requires_shipping,
            is_active: r.is_active,
            position: r.position,
        }
    }
}

/// Body of `PATCH /products/{id}/variants/{variant_id}/` (at least one
/// field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VariantPatchRequest {
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "[^ \\t\\n\\r]"
    )]
    sku: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 1_000_000_000_000_i64)]
    price: Option<i64>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_i64)]
    compare_at_price: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 1_000_000_000)]
    stock: Option<i64>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 10_000_000)]
    weight_grams: Option<i64>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    requires_shipping: Option<bool>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 10_000)]
    position: Option<i64>,
}

/// A product's variants, by position then id. Admins only: customers read
/// them on the product.
#[utoipa::path(get, path = "/products/{id}/variants", tag = "catalog", operation_id = "list_variants",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The variants", body = [VariantView]),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product"),
    ))]
async fn list_variants(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<Vec<VariantView>>, ApiError> {
    let id = path_id(&id, "product")?;
    Ok(Json(state.actors.catalog.call(ListVariants(id)).await?))
}

/// Adds a variant to a product (admins only); it names one value of each
/// of the product's options, in a combination no other variant has.
#[utoipa::path(post, path = "/products/{id}/variants", tag = "catalog", operation_id = "create_variant",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    request_body = VariantRequest,
    responses(
        (status = 201, description = "The variant", body = VariantView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product"),
        (status = 409, description = "`sku_taken`, `variant_exists` (another variant has these option values), or a `stock` the home location cannot take (`stock_below_held`, `no_active_location`)"),
        (status = 422, description = "`validation_error`: a bad field, an option missing, unknown or with a value the option lacks, or 250 variants already"),
    ))]
async fn create_variant(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<VariantRequest>,
) -> Result<HttpResponse, ApiError> {
    let product_id = path_id(&id, "product")?;
    let view = state
        .actors
        .catalog
        .call(CreateVariant {
            product_id,
            draft: body.0.into(),
            admin: admin.0.user_id,
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

pub(super) fn ids(path: &(String, String)) -> Result<(uuid::Uuid, uuid::Uuid), ApiError> {
    Ok((path_id(&path.0, "product")?, path_id(&path.1, "variant")?))
}

/// One variant of a product (admins only).
#[utoipa::path(get, path = "/products/{id}/variants/{variant_id}", tag = "catalog", operation_id = "get_variant",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("variant_id" = uuid::Uuid, Path, description = "The variant's id"),
    ),
    responses(
        (status = 200, description = "The variant", body = VariantView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such variant of it"),
    ))]
async fn get_variant(
    state: Data<AppState>,
    _admin: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<Json<VariantView>, ApiError> {
    let (product_id, variant_id) = ids(&path)?;
    Ok(Json(
        state
            .actors
            .catalog
            .call(GetVariant {
                product_id,
                variant_id,
            })
            .await?,
    ))
}

/// Changes some fields of a variant (admins only).
#[utoipa::path(patch, path = "/products/{id}/variants/{variant_id}", tag = "catalog", operation_id = "patch_variant",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("variant_id" = uuid::Uuid, Path, description = "The variant's id"),
    ),
    request_body = VariantPatchRequest,
    responses(
        (status = 200, description = "The variant", body = VariantView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such variant of it"),
        (status = 409, description = "`sku_taken`, `variant_exists` (another variant has these option values), or a `stock` the home location cannot take (`stock_below_held`, `no_active_location`)"),
        (status = 422, description = "`validation_error`: no field given, or a bad one"),
    ))]
async fn patch_variant(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: ValidJson<VariantPatchRequest>,
) -> Result<Json<VariantView>, ApiError> {
    let (product_id, variant_id) = ids(&path)?;
    let ValidJson(b) = body;
    let patch = VariantPatch {
        sku: b.sku,
        options: b.options,
        price: b.price,
        compare_at_price: b.compare_at_price,
        stock: b.stock,
        weight_grams: b.weight_grams,
        requires_shipping: b.requires_shipping,
        is_active: b.is_active,
        position: b.position,
    };
    if patch.is_empty() {
        return Err(ApiError::Validation(ValidationErrors::single(
            "body",
            "empty",
            "give at least one field to change",
        )));
    }
    Ok(Json(
        state
            .actors
            .catalog
            .call(UpdateVariant {
                product_id,
                variant_id,
                patch,
                admin: admin.0.user_id,
            })
            .await?,
    ))
}

/// Deletes a variant (admins only): not a product's last, and not one
/// orders hold; deactivate it instead.
#[utoipa::path(delete, path = "/products/{id}/variants/{variant_id}", tag = "catalog", operation_id = "delete_variant",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("variant_id" = uuid::Uuid, Path, description = "The variant's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such variant of it"),
        (status = 409, description = "`last_variant` (delete the product instead), or `variant_in_use`: orders hold it"),
    ))]
async fn delete_variant(
    state: Data<AppState>,
    _admin: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (product_id, variant_id) = ids(&path)?;
    state
        .actors
        .catalog
        .call(DeleteVariant {
            product_id,
            variant_id,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
