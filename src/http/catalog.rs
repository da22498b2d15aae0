//! `/api/v1/categories/…` and `/api/v1/products/…`: reads are public (admins
//! also see inactive products), writes are admin only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::compression::{accepts_gzip, gzip};
use super::error::ApiError;
use super::extract::{path_id, AdminUser, MaybeAuthenticated, QueryParams, ValidJson};
use super::pagination::{base_url, page_links, page_request};
use super::state::AppState;
use super::variants::VariantRequest;
use crate::actors::catalog::messages::*;
use crate::actors::catalog::messages::{CategoryView, ProductView};
use crate::actors::read_view::Page;
use crate::domain::catalog::category::validate_category;
use crate::domain::catalog::listing::{ProductQuery, RawProductQuery};
use crate::domain::catalog::product::{ProductDraft, ProductPatch};
use crate::domain::catalog::variant::{ProductOption, VariantDraft};

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

/// Where a cached read was answered from.
#[derive(Clone, Copy)]
enum Served {
    /// This instance's in-process view: no hop, no copy of the page.
    View,
    /// The catalog actor (its Redis cache or the database).
    Actor(CacheStatus),
}

/// The page as the client takes it: its gzip copy when the client accepts
/// gzip and the page has one (kept in the view, never made per request).
fn page_response(req: &HttpRequest, page: Page, served: Served) -> HttpResponse {
    match page.gzip {
        Some(gzip) if accepts_gzip(req) => {
            let mut response = json_with_cache(gzip, served);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        _ => json_with_cache(page.body, served),
    }
}

fn json_with_cache(body: Bytes, served: Served) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    // Listings and products may be sent gzipped to one client and not to
    // another; caches in between must keep them apart.
    response.insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
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
    facets: Option<&[u8]>,
) -> Result<Bytes, ApiError> {
    let link =
        |l: Option<String>| serde_json::to_string(&l).map_err(|e| ApiError::Internal(e.into()));
    let head = format!(
        r#"{{"count":{count},"next":{},"previous":{},"results":"#,
        link(next)?,
        link(previous)?
    );
    let facets_len = facets.map_or(0, |f| f.len() + 10);
    let mut body = BytesMut::with_capacity(head.len() + results.len() + facets_len + 1);
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(results);
    if let Some(facets) = facets {
        body.extend_from_slice(br#","facets":"#);
        body.extend_from_slice(facets);
    }
    body.extend_from_slice(b"}");
    Ok(body.freeze())
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_categories,
    create_category,
    get_category,
    update_category,
    delete_category,
    list_products,
    get_product,
    create_product,
    replace_product,
    patch_product,
    delete_product
))]
pub struct Api;

/// Body of `POST /categories/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CategoryRequest {
    #[schema(min_length = 1, max_length = 100, pattern = "[^ \\t\\n\\r]")]
    name: String,
    /// Lower-case letters, digits and hyphens; derived from the name when
    /// absent.
    #[schema(max_length = 100, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    slug: Option<String>,
    parent_id: Option<Uuid>,
}

/// Body of `PATCH /categories/{id}/`: the fields to change; a `null`
/// `parent_id` makes it a root.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CategoryPatchRequest {
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 100,
        pattern = "[^ \\t\\n\\r]"
    )]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        max_length = 100,
        pattern = "^[a-z0-9]+(-[a-z0-9]+)*$"
    )]
    slug: Option<String>,
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<Uuid>)]
    parent_id: Option<Option<Uuid>>,
}

/// Lists categories by name.
#[utoipa::path(get, path = "/categories", tag = "catalog", operation_id = "list_categories",
    security((), ("bearer" = [])),
    params(crate::http::pagination::PageParams),
    responses(
        (status = 200, description = "One page of categories", body = crate::domain::pagination::Page<CategoryView>),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_categories(
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let paging = page_request(&QueryParams::from_request(&req))?;
    let key = format!("categories:{}:{}", paging.page, paging.page_size);
    let view = &state.actors.catalog_view;
    let (count, results, served) = match view.page(&key) {
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
                    // Only the results are kept; the page around them is
                    // built per request.
                    gzip: None,
                },
            );
            (count, results, Served::Actor(CacheStatus::Miss))
        }
    };
    let (next, previous) = page_links(&req, paging, count)?;
    Ok(json_with_cache(
        page_body(count, next, previous, &results, None)?,
        served,
    ))
}

/// Creates a category (admins only); the slug is derived from the name
/// when not given.
#[utoipa::path(post, path = "/categories", tag = "catalog", operation_id = "create_category",
    security(("bearer" = [])),
    request_body = CategoryRequest,
    responses(
        (status = 201, description = "The category", body = CategoryView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 409, description = "`slug_taken`: another category has this slug"),
        (status = 422, description = "`validation_error`: blank or long name, bad slug, unknown parent"),
    ))]
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

/// One category.
#[utoipa::path(get, path = "/categories/{id}", tag = "catalog", operation_id = "get_category",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The category's id (a UUID)")),
    responses(
        (status = 200, description = "The category", body = CategoryView),
        (status = 404, description = "`not_found`: no such category"),
    ))]
async fn get_category(
    state: Data<AppState>,
    id: web::Path<String>,
) -> Result<Json<CategoryView>, ApiError> {
    let id = path_id(&id, "category")?;
    Ok(Json(state.actors.catalog.call(GetCategory(id)).await?))
}

/// Changes a category's name, slug or parent (admins only); a parent that
/// would make a cycle is refused.
#[utoipa::path(patch, path = "/categories/{id}", tag = "catalog", operation_id = "update_category",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The category's id (a UUID)")),
    request_body = CategoryPatchRequest,
    responses(
        (status = 200, description = "The category", body = CategoryView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such category"),
        (status = 409, description = "`slug_taken`: another category has this slug"),
        (status = 422, description = "`validation_error`: invalid field, unknown parent, or a cycle"),
    ))]
async fn update_category(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<CategoryPatchRequest>,
) -> Result<Json<CategoryView>, ApiError> {
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

/// Deletes an empty category (admins only).
#[utoipa::path(delete, path = "/categories/{id}", tag = "catalog", operation_id = "delete_category",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The category's id (a UUID)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such category"),
        (status = 409, description = "`category_has_products` or `category_has_children`: empty it first"),
    ))]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProductRequest {
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r]")]
    name: String,
    /// Derived from the name when absent.
    #[schema(max_length = 100, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    slug: Option<String>,
    /// The default variant's SKU, for a product without options (required
    /// then on create); a product with options sets it on each variant.
    #[schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\r]")]
    sku: Option<String>,
    #[schema(max_length = 10000)]
    description: Option<String>,
    category_id: Option<Uuid>,
    /// The default variant's price in minor units of `currency` (cents for
    /// USD), as `sku`.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    price: Option<i64>,
    /// ISO 4217 code, e.g. `USD`, of every variant's price.
    #[schema(example = "USD", min_length = 3, max_length = 3)]
    currency: String,
    /// The default variant's stock, as `sku`.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    stock: Option<i64>,
    /// At most 20 tags of at most 40 characters.
    #[schema(max_items = 20)]
    tags: Option<Vec<String>>,
    is_active: Option<bool>,
    /// 0 to 3 options, e.g. `{"name": "size", "values": ["S", "M"]}`.
    #[schema(max_items = 3)]
    options: Option<Vec<ProductOption>>,
    /// Tax-class code the product is taxed under; default `standard`. Only
    /// its form is checked: a class the shop has not defined is charged at
    /// no rate.
    #[schema(
        example = "standard",
        min_length = 1,
        max_length = 50,
        pattern = "^[a-z0-9_-]+$"
    )]
    tax_class: Option<String>,
    /// On create only: 1 to 250 variants, made with the product in one
    /// transaction (required when there are options). Later changes go
    /// through `/products/{id}/variants/`.
    #[schema(max_items = 250)]
    variants: Option<Vec<VariantRequest>>,
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
            options: r.options,
            tax_class: r.tax_class,
            variants: r
                .variants
                .map(|vs| vs.into_iter().map(VariantDraft::from).collect()),
        }
    }
}

/// Body of `PATCH /products/{id}/`: the fields to change (at least one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProductPatchRequest {
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "[^ \\t\\n\\r]"
    )]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        max_length = 100,
        pattern = "^[a-z0-9]+(-[a-z0-9]+)*$"
    )]
    slug: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "[^ \\t\\n\\r]"
    )]
    sku: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, max_length = 10000)]
    description: Option<String>,
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<Uuid>)]
    category_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 1_000_000_000_000_i64)]
    price: Option<i64>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, min_length = 3, max_length = 3)]
    currency: Option<String>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, minimum = 0, maximum = 1_000_000_000)]
    stock: Option<i64>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, max_items = 20)]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false)]
    is_active: Option<bool>,
    /// The whole new list of options. Values may be added and options
    /// reordered; an option or value that variants use cannot go, and no
    /// option can be added while variants exist (409).
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(nullable = false, max_items = 3)]
    options: Option<Vec<ProductOption>>,
    /// A tax-class code, as on create.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 50,
        pattern = "^[a-z0-9_-]+$"
    )]
    tax_class: Option<String>,
}

#[derive(Deserialize)]
struct CachedList<'a> {
    count: i64,
    #[serde(borrow)]
    results: &'a RawValue,
    #[serde(borrow, default)]
    facets: Option<&'a RawValue>,
}

/// Lists products, filtered, searched and ordered. Customers and visitors
/// see active products only; admins see all.
#[utoipa::path(get, path = "/products", tag = "catalog", operation_id = "list_products",
    security((), ("bearer" = [])),
    params(
        crate::http::pagination::PageParams,
        ("category" = Option<String>, Query, description = "A category id or slug; its subcategories are included"),
        ("min_price" = Option<i64>, Query, description = "Lowest price, in minor units", minimum = 0, maximum = 1_000_000_000_000_i64),
        ("max_price" = Option<i64>, Query, description = "Highest price, in minor units, not below `min_price`", minimum = 0, maximum = 1_000_000_000_000_i64),
        ("q" = Option<String>, Query, description = "Full-text search over name, description and tags (`search` is an alias)", max_length = 200),
        ("search" = Option<String>, Query, description = "Alias of `q`", max_length = 200),
        ("in_stock" = Option<bool>, Query, description = "Only products with stock"),
        ("tags" = Option<String>, Query, description = "Comma-separated tags; a product must have them all"),
        ("ordering" = Option<String>, Query, description = "`price`, `-price`, `name`, `-name`, `created_at` or `-created_at` (default newest first)"),
        ("facets" = Option<bool>, Query, description = "Add `facets` to the page: counts per category, tag and option value, the price range and in/out of stock, over the whole filtered result, each ignoring its own filter"),
        ("option.{name}" = Option<String>, Query, description = "`option.size=M,L`: products with an active variant of one of these values; several options must all hold, each on some active variant (at most 3 options, 100 values each)"),
    ),
    responses(
        (status = 200, description = "One page of products; with `facets=true`, also `facets` (schema `Facets`)", body = crate::domain::pagination::Page<ProductView>,
            headers(("x-cache" = String, description = "`HIT`, `MISS` or `BYPASS`: where the page came from"))),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
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
    if let Some(page) = view.page(&key) {
        return Ok(page_response(&req, page, Served::View));
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
        options: params.prefixed("option."),
        facets: params.get("facets"),
    })
    .map_err(ApiError::InvalidQuery)?;
    let paging = query.page;
    let CachedJson { json, status, deps } = state
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
        cached.facets.map(|f| f.get().as_bytes()),
    )?;
    let page = Page {
        count: cached.count,
        gzip: gzip(&body),
        body,
    };
    view.put_with(ticket, key, page.clone(), deps);
    Ok(page_response(&req, page, Served::Actor(status)))
}

/// One product, by id or slug. Inactive products are visible to admins
/// only.
#[utoipa::path(get, path = "/products/{id_or_slug}", tag = "catalog", operation_id = "get_product",
    security((), ("bearer" = [])),
    params(("id_or_slug" = String, Path, description = "The product's id (a UUID) or slug")),
    responses(
        (status = 200, description = "The product", body = ProductView,
            headers(("x-cache" = String, description = "`HIT`, `MISS` or `BYPASS`"))),
        (status = 404, description = "`not_found`: no such (visible) product"),
    ))]
async fn get_product(
    req: HttpRequest,
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
    if let Some(entry) = view.page(&view_key) {
        return Ok(page_response(&req, entry, Served::View));
    }
    let ticket = view.ticket();
    let CachedJson { json, status, deps } = state
        .actors
        .catalog
        .call(GetProduct {
            key,
            include_inactive,
        })
        .await?;
    let body = Bytes::copy_from_slice(json.as_bytes());
    let page = Page {
        count: 0,
        gzip: gzip(&body),
        body,
    };
    view.put_with(ticket, view_key, page.clone(), deps);
    Ok(page_response(&req, page, Served::Actor(status)))
}

/// Creates a product (admins only).
#[utoipa::path(post, path = "/products", tag = "catalog", operation_id = "create_product",
    security(("bearer" = [])),
    request_body = ProductRequest,
    responses(
        (status = 201, description = "The product, with its variants", body = ProductView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 409, description = "`sku_taken`, `slug_taken`, `variant_exists` (two variants name the same option values), or `no_active_location` (stock given, no stock location active)"),
        (status = 422, description = "`validation_error`: an invalid field, unknown currency or category, a variant that does not name one value of each option"),
    ))]
async fn create_product(
    state: Data<AppState>,
    admin: AdminUser,
    body: ValidJson<ProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .actors
        .catalog
        .call(CreateProduct {
            draft: body.0.into(),
            admin: admin.0.user_id,
        })
        .await?;
    Ok(HttpResponse::Created().json(row))
}

/// Replaces every field of a product (admins only).
#[utoipa::path(put, path = "/products/{id_or_slug}", tag = "catalog", operation_id = "replace_product",
    security(("bearer" = [])),
    params(("id_or_slug" = String, Path, description = "The product's id (a UUID); slugs are not accepted for writes")),
    request_body = ProductRequest,
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product"),
        (status = 409, description = "`sku_taken`, `slug_taken`, an options change variants forbid (`option_in_use`, `option_value_in_use`, `option_added_with_variants`), or a `stock` change the home location cannot take (`stock_below_held`, `no_active_location`)"),
        (status = 422, description = "`validation_error`: an invalid field, unknown currency or category, `variants` given, or `sku`/`price`/`stock` on a product with options (`set_on_variants`)"),
    ))]
async fn replace_product(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<ProductRequest>,
) -> Result<Json<ProductView>, ApiError> {
    let id = path_id(&id, "product")?;
    let change = ProductChange::Full(body.0.into());
    Ok(Json(
        state
            .actors
            .catalog
            .call(UpdateProduct {
                id,
                change,
                admin: admin.0.user_id,
            })
            .await?,
    ))
}

/// Changes some fields of a product (admins only).
#[utoipa::path(patch, path = "/products/{id_or_slug}", tag = "catalog", operation_id = "patch_product",
    security(("bearer" = [])),
    params(("id_or_slug" = String, Path, description = "The product's id (a UUID); slugs are not accepted for writes")),
    request_body = ProductPatchRequest,
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product"),
        (status = 409, description = "`sku_taken`, `slug_taken`, an options change variants forbid (`option_in_use`, `option_value_in_use`, `option_added_with_variants`), or a `stock` change the home location cannot take (`stock_below_held`, `no_active_location`)"),
        (status = 422, description = "`validation_error`: no field given, an invalid one, or `sku`/`price`/`stock` on a product with options (`set_on_variants`)"),
    ))]
async fn patch_product(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<ProductPatchRequest>,
) -> Result<Json<ProductView>, ApiError> {
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
        options: b.options,
        tax_class: b.tax_class,
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
            .call(UpdateProduct {
                id,
                change,
                admin: admin.0.user_id,
            })
            .await?,
    ))
}

/// Deletes a product no order refers to (admins only); deactivate it
/// otherwise.
#[utoipa::path(delete, path = "/products/{id_or_slug}", tag = "catalog", operation_id = "delete_product",
    security(("bearer" = [])),
    params(("id_or_slug" = String, Path, description = "The product's id (a UUID)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product"),
        (status = 409, description = "`product_in_use`: orders refer to it; deactivate it instead"),
    ))]
async fn delete_product(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "product")?;
    state.actors.catalog.call(DeleteProduct(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
