//! Messages the catalog actor answers: category and product management for
//! the edge, and stock reservations and snapshots for the orders actor.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::CatalogError;
use crate::domain::catalog::category::CategoryFields;
use crate::domain::catalog::image::ImagePatch;
use crate::domain::catalog::listing::ProductQuery;
use crate::domain::catalog::product::{ProductDraft, ProductPatch};
use crate::domain::catalog::stock::{Resolved, StockLine};
use crate::domain::catalog::variant::{OptionValues, ProductOption, VariantDraft, VariantPatch};
use crate::domain::pagination::PageRequest;
use crate::store::catalog::{
    CategoryRow, ProductFeatureRow, ProductRow, VariantRow, VariantSnapshot,
};
use crate::store::product_images::ImageRow;

/// Whether a read was served from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
}

impl CacheStatus {
    /// The `X-Cache` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
        }
    }
}

/// A serialised JSON document, shared between the cache and every waiter.
pub type Json = Arc<str>;

/// A cached read's answer: the document, where it came from, and what it
/// depends on (so the edge's view drops it only when that moves).
#[derive(Debug, Clone)]
pub struct CachedJson {
    pub json: Json,
    pub status: CacheStatus,
    pub deps: crate::domain::cache_scope::Dependencies,
}

/// A category as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CategoryView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

impl From<CategoryRow> for CategoryView {
    fn from(r: CategoryRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            slug: r.slug,
            parent_id: r.parent_id,
        }
    }
}

/// A product variant as clients see it: what is priced, stocked, carted
/// and ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VariantView {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku: String,
    /// One value of each of the product's options, by option name.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub options: OptionValues,
    /// In minor units of the product's currency.
    pub price: i64,
    /// The "was" price shown struck through, if any.
    pub compare_at_price: Option<i64>,
    pub stock: i32,
    pub weight_grams: i32,
    /// Whether the variant is shipped; `false` for digital goods and
    /// services, which need no shipping method and are not charged for it.
    pub requires_shipping: bool,
    pub is_active: bool,
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<VariantRow> for VariantView {
    fn from(r: VariantRow) -> Self {
        Self {
            id: r.id,
            product_id: r.product_id,
            sku: r.sku,
            options: r.options.0,
            price: r.price,
            compare_at_price: r.compare_at_price,
            stock: r.stock,
            weight_grams: r.weight_grams,
            requires_shipping: r.requires_shipping,
            is_active: r.is_active,
            position: r.position,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A product image as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImageView {
    pub id: Uuid,
    /// Where the file is served (`/media/…`, cached as immutable).
    pub url: String,
    pub alt: String,
    pub width: i32,
    pub height: i32,
    pub content_type: String,
    /// Size of the file.
    pub bytes: i32,
    pub position: i32,
    /// The variants it shows; empty for the product as a whole.
    pub variant_ids: Vec<Uuid>,
}

impl From<ImageRow> for ImageView {
    fn from(r: ImageRow) -> Self {
        Self {
            id: r.id,
            url: format!("/media/{}", r.key),
            alt: r.alt,
            width: r.width,
            height: r.height,
            content_type: r.content_type,
            bytes: r.bytes,
            position: r.position,
            variant_ids: r.variant_ids,
        }
    }
}

/// A product as clients see it, with its options and variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProductView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// The default variant's SKU; `null` when the product has options.
    pub sku: Option<String>,
    pub description: String,
    pub category_id: Option<Uuid>,
    /// Lowest active variant price, in minor units of `currency`.
    pub price: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units in stock over the active variants.
    pub stock: i32,
    pub tags: Vec<String>,
    pub is_active: bool,
    pub options: Vec<ProductOption>,
    /// Tax-class code the product is taxed under (default `standard`); a
    /// class the shop has not defined is charged at no rate.
    #[schema(example = "standard")]
    pub tax_class: String,
    /// By position, then id.
    pub variants: Vec<VariantView>,
    /// By position, then id.
    pub images: Vec<ImageView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductView {
    /// The product with its variants and images (each by position, then
    /// id).
    pub fn new(r: ProductRow, variants: Vec<VariantRow>, images: Vec<ImageRow>) -> Self {
        Self {
            id: r.id,
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
            options: r.options.0,
            tax_class: r.tax_class,
            variants: variants.into_iter().map(VariantView::from).collect(),
            images: images.into_iter().map(ImageView::from).collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Create a category.
#[derive(Debug, Message)]
#[rtype(result = "Result<CategoryView, CatalogError>")]
pub struct CreateCategory(pub CategoryFields);

/// One page of categories, by slug.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<CategoryView>, i64), CatalogError>")]
pub struct ListCategories(pub PageRequest);

/// One category.
#[derive(Debug, Message)]
#[rtype(result = "Result<CategoryView, CatalogError>")]
pub struct GetCategory(pub Uuid);

/// Change a category. Fields absent from the patch keep their value;
/// `parent_id: Some(None)` makes it a root.
#[derive(Debug, Message)]
#[rtype(result = "Result<CategoryView, CatalogError>")]
pub struct UpdateCategory {
    pub id: Uuid,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub parent_id: Option<Option<Uuid>>,
}

/// Delete a category that has no products and no children.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct DeleteCategory(pub Uuid);

/// Create a product.
#[derive(Debug, Message)]
#[rtype(result = "Result<ProductView, CatalogError>")]
pub struct CreateProduct {
    pub draft: ProductDraft,
    /// Recorded on the opening stock's ledger rows.
    pub admin: Uuid,
}

/// How a product is named in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductKey {
    Id(Uuid),
    Slug(String),
}

/// One product as JSON, cached. Inactive products are found only when
/// `include_inactive` (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<CachedJson, CatalogError>")]
pub struct GetProduct {
    pub key: ProductKey,
    pub include_inactive: bool,
}

/// One page of products as `{"count": n, "results": [...]}`, cached.
#[derive(Debug, Message)]
#[rtype(result = "Result<CachedJson, CatalogError>")]
pub struct ListProducts {
    pub query: ProductQuery,
    pub include_inactive: bool,
}

/// Replace (`Full`) or change (`Partial`) a product.
#[derive(Debug)]
pub enum ProductChange {
    Full(ProductDraft),
    Partial(ProductPatch),
}

/// Update a product.
#[derive(Debug, Message)]
#[rtype(result = "Result<ProductView, CatalogError>")]
pub struct UpdateProduct {
    pub id: Uuid,
    pub change: ProductChange,
    /// Recorded on the ledger row of a stock change.
    pub admin: Uuid,
}

/// Delete a product that no reservation refers to.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct DeleteProduct(pub Uuid);

/// Hold stock for every line or for none. Idempotent by `reservation_id`:
/// a retry of a reservation that exists succeeds without holding twice,
/// and one released before it arrived is refused (`ReservationNotHeld`).
#[derive(Debug, Message)]
#[rtype(result = "Result<ReservationOutcome, CatalogError>")]
pub struct ReserveStock {
    pub reservation_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// Hold an order's stock and return the variants as they are while held,
/// in one catalog call and one transaction (the order is priced from these
/// snapshots). Each line names a variant, or a product with one variant.
/// If a line names nothing, a product whose variant it must name, or an
/// inactive variant, nothing is held and `held` is `false`, so the caller
/// can name the bad lines; too little stock is `InsufficientStock`, as for
/// [`ReserveStock`].
#[derive(Debug, Message)]
#[rtype(result = "Result<HeldForOrder, CatalogError>")]
pub struct ReserveForOrder {
    pub reservation_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// What [`ReserveForOrder`] found and did.
#[derive(Debug, Clone)]
pub struct HeldForOrder {
    /// Whether the stock is now held under the reservation id.
    pub held: bool,
    /// What each id the lines named turned out to be.
    pub resolved: BTreeMap<Uuid, Resolved>,
    /// The named variants that exist, locked while read.
    pub snapshots: Vec<VariantSnapshot>,
}

/// The result of a reservation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationOutcome {
    /// Stock was held now.
    Reserved,
    /// This reservation id was already processed; nothing changed.
    AlreadyReserved,
}

/// Return a held reservation's stock. Idempotent: releasing a released
/// reservation changes nothing, an unknown one is recorded as released (so
/// it can never be held later), and a committed one is refused.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct ReleaseReservation(pub Uuid);

/// Mark a held reservation paid for: it no longer expires, and its units
/// stay held until fulfilments ship them (`ShipReservation`). Idempotent:
/// committing twice changes nothing; a released or expired one is refused.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct CommitReservation(pub Uuid);

/// What each id names (a variant, or a product with one variant), and the
/// named variants' name, price, currency, activity and stock.
#[derive(Debug, Message)]
#[rtype(result = "Result<ItemSnapshots, CatalogError>")]
pub struct GetItemSnapshots(pub Vec<Uuid>);

/// The answer to [`GetItemSnapshots`].
#[derive(Debug, Clone, Default)]
pub struct ItemSnapshots {
    /// What each asked id names.
    pub resolved: BTreeMap<Uuid, Resolved>,
    /// The variants named, by variant id.
    pub snapshots: BTreeMap<Uuid, VariantSnapshot>,
}

impl ItemSnapshots {
    /// The variant an asked id names, if it names exactly one.
    pub fn variant(&self, id: Uuid) -> Option<&VariantSnapshot> {
        match self.resolved.get(&id)? {
            Resolved::Variant(v) => self.snapshots.get(v),
            _ => None,
        }
    }
}

/// Add an image to a product: checked by content (PNG, JPEG, WebP, GIF),
/// decoded whole, stored, and recorded after the product's others.
#[derive(Debug, Message)]
#[rtype(result = "Result<ImageView, CatalogError>")]
pub struct AddProductImage {
    pub product_id: Uuid,
    pub bytes: bytes::Bytes,
    pub alt: String,
    /// Variants of the product it shows.
    pub variant_ids: Vec<Uuid>,
}

/// Change an image's alternative text, position or variants.
#[derive(Debug, Message)]
#[rtype(result = "Result<ImageView, CatalogError>")]
pub struct UpdateProductImage {
    pub product_id: Uuid,
    pub image_id: Uuid,
    pub patch: ImagePatch,
}

/// Remove an image and its file.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct DeleteProductImage {
    pub product_id: Uuid,
    pub image_id: Uuid,
}

/// The file under a media key, if there is one.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<bytes::Bytes>, CatalogError>")]
pub struct GetMedia(pub String);

/// A product's variants, by position then id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<VariantView>, CatalogError>")]
pub struct ListVariants(pub Uuid);

/// One variant of a product.
#[derive(Debug, Message)]
#[rtype(result = "Result<VariantView, CatalogError>")]
pub struct GetVariant {
    pub product_id: Uuid,
    pub variant_id: Uuid,
}

/// Add a variant to a product; it must name one value of each option, in a
/// combination no sibling has.
#[derive(Debug, Message)]
#[rtype(result = "Result<VariantView, CatalogError>")]
pub struct CreateVariant {
    pub product_id: Uuid,
    pub draft: VariantDraft,
    /// Recorded on the opening stock's ledger row.
    pub admin: Uuid,
}

/// Change a variant.
#[derive(Debug, Message)]
#[rtype(result = "Result<VariantView, CatalogError>")]
pub struct UpdateVariant {
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub patch: VariantPatch,
    /// Recorded on the ledger row of a stock change.
    pub admin: Uuid,
}

/// Delete a variant that is not its product's last and that no open
/// reservation holds.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct DeleteVariant {
    pub product_id: Uuid,
    pub variant_id: Uuid,
}

/// Return expired reservations to stock now (the actor also does this on a
/// timer).
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, CatalogError>")]
pub struct SweepReservations;

/// For the recommender: up to `limit` products after `after` (by id), with
/// category, tags, price, stock and activity.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ProductFeatureRow>, CatalogError>")]
pub struct GetProductFeatures {
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// For the recommender: every category's id, parent and slug.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(Uuid, Option<Uuid>, String)>, CatalogError>")]
pub struct GetCategoryParents;

/// Current rows of the given products (missing ids are left out), for
/// rendering recommendations as the catalog shows products.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ProductView>, CatalogError>")]
pub struct GetProductsByIds(pub Vec<Uuid>);
