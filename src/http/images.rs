//! `/api/v1/products/{id}/images/…` (admins): one image per multipart
//! upload, its alternative text, position and variants changed as JSON.

use actix_multipart::Multipart;
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::StreamExt as _;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{path_id, AdminUser, ValidJson};
use super::state::AppState;
use crate::actors::catalog::messages::{
    AddProductImage, DeleteProductImage, ImageView, UpdateProductImage,
};
use crate::domain::catalog::image::ImagePatch;
use crate::domain::validation::ValidationErrors;

/// Longest text field of an upload (`alt`, `variant_ids`).
const MAX_TEXT_FIELD: usize = 16 * 1024;

/// The image routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/products/{id}/images").route(web::post().to(upload_image)))
        .service(
            web::resource("/products/{id}/images/{image_id}")
                .route(web::patch().to(patch_image))
                .route(web::delete().to(delete_image)),
        );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(upload_image, patch_image, delete_image))]
pub struct Api;

/// The parts of `POST /products/{id}/images/` (`multipart/form-data`);
/// no others are taken.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the document only
struct ImageUpload {
    /// One PNG, JPEG, WebP or GIF file, recognised by its content; at most
    /// `media.max_bytes` (10 MiB by default).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Alternative text, at most 500 characters.
    alt: Option<String>,
    /// Comma-separated ids of the product's variants it shows.
    variant_ids: Option<String>,
}

/// What one upload carried.
#[derive(Default)]
struct Parts {
    file: Option<BytesMut>,
    alt: Option<String>,
    variant_ids: Option<String>,
}

fn malformed(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest {
        code: "malformed_multipart",
        detail: format!("the multipart body cannot be read: {e}"),
    }
}

/// Reads the parts, refusing what is not one file and its two text fields
/// as soon as it is seen (a file over the limit stops the read).
async fn read_parts(mut form: Multipart, max_bytes: usize) -> Result<Parts, ApiError> {
    let mut parts = Parts::default();
    let mut errors = ValidationErrors::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(malformed)?;
        let name = field.name().unwrap_or_default().to_owned();
        let limit = match name.as_str() {
            "file" if parts.file.is_some() => {
                errors.add("file", "too_many", "send one file per upload");
                return Err(ApiError::Validation(errors));
            }
            "file" => max_bytes,
            "alt" | "variant_ids" => MAX_TEXT_FIELD,
            other => {
                errors.add(
                    other,
                    "unknown_field",
                    "the parts are file, alt and variant_ids",
                );
                return Err(ApiError::Validation(errors));
            }
        };
        let mut data = BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(malformed)?;
            if data.len() + chunk.len() > limit {
                if name == "file" {
                    return Err(ApiError::PayloadTooLarge { limit: max_bytes });
                }
                errors.add(&name, "too_long", format!("at most {MAX_TEXT_FIELD} bytes"));
                return Err(ApiError::Validation(errors));
            }
            data.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(data.to_vec()).map_err(|_| {
                ApiError::Validation(ValidationErrors::single(
                    &name,
                    "invalid",
                    "text fields are UTF-8",
                ))
            })
        };
        match name.as_str() {
            "file" => parts.file = Some(data),
            "alt" => parts.alt = Some(text()?),
            _ => parts.variant_ids = Some(text()?),
        }
    }
    Ok(parts)
}

fn variant_ids(raw: Option<&str>) -> Result<Vec<Uuid>, ApiError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Uuid::parse_str(s).map_err(|_| {
                ApiError::Validation(ValidationErrors::single(
                    "variant_ids",
                    "invalid",
                    "variant_ids are comma-separated UUIDs",
                ))
            })
        })
        .collect()
}

/// Adds an image to a product (admins only): one file, by content a PNG,
/// JPEG, WebP or GIF that decodes whole, with its dimensions recorded.
#[utoipa::path(post, path = "/products/{id}/images", tag = "catalog", operation_id = "upload_product_image",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The product's id")),
    request_body(content = ImageUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The image", body = ImageView),
        (status = 400, description = "`malformed_multipart`: the body is not readable multipart"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product"),
        (status = 413, description = "`payload_too_large`: the file is over `media.max_bytes`"),
        (status = 415, description = "`unsupported_media_type`: not `multipart/form-data`"),
        (status = 422, description = "`validation_error`: no file, two files, an unknown part, not an accepted image by content (`unsupported_type`), one that does not decode (`undecodable`), an unknown variant"),
    ))]
async fn upload_image(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let product_id = path_id(&id, "product")?;
    let is_multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::UnsupportedMediaType);
    }
    let form = Multipart::new(req.headers(), payload);
    let parts = read_parts(form, state.settings.media.max_bytes).await?;
    let Some(file) = parts.file else {
        return Err(ApiError::Validation(ValidationErrors::single(
            "file",
            "required",
            "send the image as the part named file",
        )));
    };
    let message = AddProductImage {
        product_id,
        bytes: file.freeze(),
        alt: parts.alt.unwrap_or_default(),
        variant_ids: variant_ids(parts.variant_ids.as_deref())?,
    };
    let image = state.actors.catalog.call(message).await?;
    Ok(HttpResponse::Created().json(image))
}

/// Body of `PATCH /products/{id}/images/{image_id}/` (at least one field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImagePatchRequest {
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, max_length = 500)]
    alt: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 10_000)]
    position: Option<i64>,
    /// The product's variants it shows (`[]`: the product as a whole).
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    variant_ids: Option<Vec<Uuid>>,
}

fn ids(path: &(String, String)) -> Result<(Uuid, Uuid), ApiError> {
    Ok((path_id(&path.0, "product")?, path_id(&path.1, "image")?))
}

/// Changes an image's alternative text, position or variants (admins only).
#[utoipa::path(patch, path = "/products/{id}/images/{image_id}", tag = "catalog", operation_id = "patch_product_image",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The product's id"),
        ("image_id" = Uuid, Path, description = "The image's id"),
    ),
    request_body = ImagePatchRequest,
    responses(
        (status = 200, description = "The image", body = ImageView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such image of it"),
        (status = 422, description = "`validation_error`: no field, a bad one, an unknown variant"),
    ))]
async fn patch_image(
    state: Data<AppState>,
    _admin: AdminUser,
    path: web::Path<(String, String)>,
    body: ValidJson<ImagePatchRequest>,
) -> Result<Json<ImageView>, ApiError> {
    let (product_id, image_id) = ids(&path)?;
    let ValidJson(b) = body;
    let patch = ImagePatch {
        alt: b.alt,
        position: b.position,
        variant_ids: b.variant_ids,
    };
    if patch.is_empty() {
        return Err(ApiError::Validation(ValidationErrors::single(
            "body",
            "empty",
            "give at least one field to change",
        )));
    }
    let message = UpdateProductImage {
        product_id,
        image_id,
        patch,
    };
    Ok(Json(state.actors.catalog.call(message).await?))
}

/// Deletes an image and its file (admins only).
#[utoipa::path(delete, path = "/products/{id}/images/{image_id}", tag = "catalog", operation_id = "delete_product_image",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The product's id"),
        ("image_id" = Uuid, Path, description = "The image's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such image of it"),
    ))]
async fn delete_image(
    state: Data<AppState>,
    _admin: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (product_id, image_id) = ids(&path)?;
    state
        .actors
        .catalog
        .call(DeleteProductImage {
            product_id,
            image_id,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
