//! `GET /media/…`: product image files. A key names one content forever
//! (its digest is in the name), so files are cached as immutable and the
//! digest is their entity tag.

use actix_web::http::header;
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::error::ApiError;
use super::state::AppState;
use crate::actors::catalog::messages::GetMedia;
use crate::domain::catalog::image::parse_media_key;

/// The media route, outside `/api/v1` (files, not API resources).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/media/products/{product}/{file}").route(web::get().to(media)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(media))]
pub struct Api;

/// One image file, with its type, entity tag and a year's cache lifetime.
#[utoipa::path(get, path = "/media/products/{product}/{file}", tag = "catalog", operation_id = "get_media",
    params(
        ("product" = String, Path, description = "The product's id, as in an image's `url`"),
        ("file" = String, Path, description = "`<image id>-<digest>.<png|jpg|webp|gif>`, as in an image's `url`"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "image/*"),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 404, description = "`not_found`: no such file"),
    ))]
async fn media(
    req: HttpRequest,
    state: Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (product, file) = path.into_inner();
    let key = format!("products/{product}/{file}");
    let (kind, digest) = parse_media_key(&key).ok_or(ApiError::NotFound("media"))?;
    let etag = format!("\"{digest}\"");
    let cache = "public, max-age=31536000, immutable";
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let bytes = state
        .actors
        .catalog
        .call(GetMedia(key.clone()))
        .await?
        .ok_or(ApiError::NotFound("media"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, kind.content_type()))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(bytes))
}
