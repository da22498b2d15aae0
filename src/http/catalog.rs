//! `/api/v1/categories/…` and `/api/v1/products/…`: reads are public (admins
//! also see inactive products), writes are admin only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{AdminUser, MaybeAuthenticated, QueryParams, ValidJson};
use super::pagination::{base_url, page_links, page_request};
use super::state::AppState;
use crate::actors::catalog::messages::*;
use crate::domain::catalog::category::validate_category;
use crate::domain::catalog::listing::{ProductQuery, RawProductQuery};
use crate::domain::catalog::product::{ProductDraft, ProductPatch};
use crate::store::catalog::{CategoryRow, ProductRow};
use crate::store::read_view::Page;

/// The collections (`/categories`, `/products`): fixed paths, registered
/// first so the router reaches them without trying a pattern.
pub fn collection_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/products")
            .route(web::get().to(list_products))
            .route(web::post().to(create_product)),
    )
    .service(
        web::resource("/categories")
            .route(web::get().to(list_categories))
            .route(web::post().to(create_category)),
    );
}

/// One category or product; after the recommendation routes, whose
/// `/products/recommendations` this pattern would otherwise take.
pub fn item_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/categories/{id}")
            .route(web::get().to(get_category))
            .route(web::patch().to(update_category))
            .route(web::delete().to(delete_category)),
    )
    .service(
        web::resource("/products/{id_or_slug}")
            .route(web::get().to(get_product))
            .route(web::put().to(replace_product))
            .route(web::patch().to(patch_product))
            .route(web::delete().to(delete_product)),
    );
}

/// Distinguishes "absent" (`None`) from "null" (`Some(None)`) in a patch.
fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A path id; anything that is not a UUID names nothing (404).
fn path_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(what))
}

/// Where a cached read was answered from.
#[derive(Clone, Copy)]
enum Served {
    /// This instance's in-process view: no hop, no copy of the page.
    View,
    /// The catalog actor (its Redis cache or the database).
    Actor(CacheStatus),
}

fn json_with_cache(body: Bytes, served: Served) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    match served {
        Served::View => response
            .insert_header(("x-cache", "HIT"))
            .insert_header(("x-cache-layer", "view")),
        Served::Actor(cache) => response.insert_header(("x-cache", cache.as_str())),
    };
    response.body(body)
}

/// A DRF page around `results`, which are already a JSON array: the page's
/// bytes are spliced in, never parsed again.
fn page_body(
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: &[u8],
) -> Result<Bytes, ApiError> {
    let link =
        |l: Option<String>| serde_json::to_string(&l).map_err(|e| ApiError::Internal(e.into()));
    let head = format!(
        r#"{{"count":{count},"next":{},"previous":{},"results":"#,
        link(next)?,
        link(previous)?
    );
    let mut body = BytesMut::with_capacity(head.len() + results.len() + 1);
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(results);
    body.extend_from_slice(b"}");
    Ok(body.freeze())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryRequest {
    name: String,
    slug: Option<String>,
    parent_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryPatchRequest {
    name: Option<String>,
    slug: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    parent_id: Option<Option<Uuid>>,
}

async fn list_categories(
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let paging = page_request(&QueryParams::from_request(&req))?;
    let key = format!("categories:{}:{}", paging.page, paging.page_size);
    let view = &state.actors.catalog_view;
    let (count, results, served) = match view.get(&key) {
        Some(entry) => (entry.count, entry.body, Served::View),
        None => {
            let ticket = view.ticket();
            let (rows, count) = state.actors.catalog.call(ListCategories(paging)).await?;
            let results =
                Bytes::from(serde_json::to_vec(&rows).map_err(|e| ApiError::Internal(e.into()))?);
            view.put(
                ticket,
                key,
                Page {
                    count,
                    body: results.clone(),
                },
            );
            (count, results, Served::Actor(CacheStatus::Miss))
        }
    };
    let (next, previous) = page_links(&req, paging, count)?;
    Ok(json_with_cache(
        page_body(count, next, previous, &results)?,
        served,
    ))
}

async fn create_category(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<CategoryRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(body) = body;
    let fields = validate_category(&body.name, body.slug.as_deref(), body.parent_id)
        .map_err(ApiError::Validation)?;
    let row = state.actors.catalog.call(CreateCategory(fields)).await?;
    Ok(HttpResponse::Created().json(row))
}

async fn get_category(
    state: Data<AppState>,
    id: web::Path<String>,
) -> Result<Json<CategoryRow>, ApiError> {
    let id = path_id(&id, "category")?;
    Ok(Json(state.actors.catalog.call(GetCategory(id)).await?))
}

async fn update_category(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<CategoryPatchRequest>,
) -> Result<Json<CategoryRow>, ApiError> {
    let id = path_id(&id, "category")?;
    let ValidJson(body) = body;
    let row = state
        .actors
        .catalog
        .call(UpdateCategory {
            id,
            name: body.name,
            slug: body.slug,
            parent_id: body.parent_id,
        })
        .await?;
    Ok(Json(row))
}

async fn delete_category(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "category")?;
    state.actors.catalog.call(DeleteCategory(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /products/` and `PUT /products/{id}/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductRequest {
    name: String,
    slug: Option<String>,
    sku: String,
    description: Option<String>,
    category_id: Option<Uuid>,
    price: i64,
    currency: String,
    stock: i64,
    tags: Option<Vec<String>>,
    is_active: Option<bool>,
}

impl From<ProductRequest> for ProductDraft {
    fn from(r: ProductRequest) -> Self {
        ProductDraft {
            name: r.name,
            slug: r.slug,
            sku: r.sku,
            description: r.description,
            category_id: r.category_id,
            price: r.price,
            currency: r.currency,
            stock: r.stock,
            tags: r.tags,
            is_active: r.is_active,
        }
    }
}

/// Body of `PATCH /products/{id}/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductPatchRequest {
    name: Option<String>,
    slug: Option<String>,
    sku: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    category_id: Option<Option<Uuid>>,
    price: Option<i64>,
    currency: Option<String>,
    stock: Option<i64>,
    tags: Option<Vec<String>>,
    is_active: Option<bool>,
}

#[derive(Deserialize)]
struct CachedList<'a> {
    count: i64,
    #[serde(borrow)]
    results: &'a RawValue,
}

async fn list_products(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
) -> Result<HttpResponse, ApiError> {
    let include_inactive = user.is_admin();
    // The whole response is kept under what it depends on: who may see
    // inactive products, the links' base, and the raw query. A hit skips
    // parsing (only a query that parsed was ever stored), hashing and
    // building links.
    let key = format!(
        "list:{include_inactive}:{}{}?{}",
        base_url(&req),
        req.path(),
        req.query_string()
    );
    let view = &state.actors.catalog_view;
    if let Some(page) = view.get(&key) {
        return Ok(json_with_cache(page.body, Served::View));
    }
    let ticket = view.ticket();
    let params = QueryParams::from_request(&req);
    let query = ProductQuery::parse(RawProductQuery {
        category: params.get("category"),
        min_price: params.get("min_price"),
        max_price: params.get("max_price"),
        // DRF's SearchFilter calls it `search`; the Django system's
        // clients send that.
        q: params.get("q").or_else(|| params.get("search")),
        in_stock: params.get("in_stock"),
        tags: params.get("tags"),
        ordering: params.get("ordering"),
        page: params.get("page"),
        page_size: params.get("page_size"),
    })
    .map_err(ApiError::InvalidQuery)?;
    let paging = query.page;
    let (json, cache) = state
        .actors
        .catalog
        .call(ListProducts {
            query,
            include_inactive,
        })
        .await?;
    // Parsed once per miss, to split the count from the results.
    let cached: CachedList<'_> = serde_json::from_str(&json)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cached listing: {e}")))?;
    let (next, previous) = page_links(&req, paging, cached.count)?;
    let body = page_body(
        cached.count,
        next,
        previous,
        cached.results.get().as_bytes(),
    )?;
    view.put(
        ticket,
        key,
        Page {
            count: cached.count,
            body: body.clone(),
        },
    );
    Ok(json_with_cache(body, Served::Actor(cache)))
}

async fn get_product(
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id_or_slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = match Uuid::parse_str(&id_or_slug) {
        Ok(id) => ProductKey::Id(id),
        Err(_) => ProductKey::Slug(id_or_slug.to_lowercase()),
    };
    let include_inactive = user.is_admin();
    let view_key = match &key {
        ProductKey::Id(id) => format!("product:{include_inactive}:id:{id}"),
        ProductKey::Slug(slug) => format!("product:{include_inactive}:slug:{slug}"),
    };
    let view = &state.actors.catalog_view;
    if let Some(entry) = view.get(&view_key) {
        return Ok(json_with_cache(entry.body, Served::View));
    }
    let ticket = view.ticket();
    let (json, cache) = state
        .actors
        .catalog
        .call(GetProduct {
            key,
            include_inactive,
        })
        .await?;
    let body = Bytes::copy_from_slice(json.as_bytes());
    view.put(
        ticket,
        view_key,
        Page {
            count: 0,
            body: body.clone(),
        },
    );
    Ok(json_with_cache(body, Served::Actor(cache)))
}

async fn create_product(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<ProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .actors
        .catalog
        .call(CreateProduct(body.0.into()))
        .await?;
    Ok(HttpResponse::Created().json(row))
}

async fn replace_product(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<ProductRequest>,
) -> Result<Json<ProductRow>, ApiError> {
    let id = path_id(&id, "product")?;
    let change = ProductChange::Full(body.0.into());
    Ok(Json(
        state
            .actors
            .catalog
            .call(UpdateProduct { id, change })
            .await?,
    ))
}

async fn patch_product(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<ProductPatchRequest>,
) -> Result<Json<ProductRow>, ApiError> {
    let id = path_id(&id, "product")?;
    let ValidJson(b) = body;
    let patch = ProductPatch {
        name: b.name,
        slug: b.slug,
        sku: b.sku,
        description: b.description,
        category_id: b.category_id,
        price: b.price,
        currency: b.currency,
        stock: b.stock,
        tags: b.tags,
        is_active: b.is_active,
    };
    if patch.is_empty() {
        return Err(ApiError::Validation(
            crate::domain::validation::ValidationErrors::single(
                "body",
                "empty",
                "give at least one field to change",
            ),
        ));
    }
    let change = ProductChange::Partial(patch);
    Ok(Json(
        state
            .actors
            .catalog
            .call(UpdateProduct { id, change })
            .await?,
    ))
}

async fn delete_product(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "product")?;
    state.actors.catalog.call(DeleteProduct(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
