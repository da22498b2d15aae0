//! The work behind each catalog message.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures_util::future::{LocalBoxFuture, Shared};
use futures_util::FutureExt as _;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::CatalogError;
use super::messages::*;
use crate::actors::catalog::cache::{CatalogCache, Lookup, Version};
use crate::actors::read_view::CatalogView;
use crate::domain::cache_scope::{Dependencies, ProductsMoved};
use crate::domain::catalog::allocation::{allocate, Source};
use crate::domain::catalog::category::{creates_cycle, validate_category};
use crate::domain::catalog::facets::Facets;
use crate::domain::catalog::listing_index::{ListingFilter, ListingIndex};
use crate::domain::catalog::stock::{
    normalize_lines, resolve_lines, shortfalls, Resolved, Shortfall, StockLevel, StockLine,
};
use crate::domain::catalog::variant::{check_option_change, repeated_combination};
use crate::domain::events::{EventType, StockReason};
use crate::domain::validation::ValidationErrors;
use crate::store::catalog::{
    self as store, constraints, ProductFilter, ProductRow, VariantSnapshot,
};
use crate::store::database::retry_on_contention;
use crate::store::media::MediaStore;
use crate::store::product_images::ImageRow;
use crate::store::stock::{self as stock_store, Allocation};

/// PostgreSQL's codes for unique and foreign-key violations.
const UNIQUE_VIOLATION: &str = "23505";
const FOREIGN_KEY_VIOLATION: &str = "23503";
/// Most expired reservations returned to stock per sweep statement.
const SWEEP_BATCH: i64 = 500;

type Flight = Shared<LocalBoxFuture<'static, Result<(Json, Dependencies), Rc<CatalogError>>>>;

/// The catalog's state, shared by every in-flight handler on the actor's
/// thread.
#[derive(Clone)]
pub struct CatalogService {
    pub(super) pool: PgPool,
    cache: CatalogCache,
    view: CatalogView,
    pub(super) media: MediaStore,
    reservation_ttl_secs: i64,
    /// Loads in progress, by cache key: concurrent misses of one key wait
    /// for one database query instead of each running their own.
    inflight: Rc<RefCell<HashMap<String, Flight>>>,
    /// The facet index and the cache version it was built under.
    listing_index: Rc<RefCell<Option<IndexSlot>>>,
}

type IndexFlight = Shared<LocalBoxFuture<'static, Result<Rc<ListingIndex>, Rc<CatalogError>>>>;

/// A facet index (built or being built) and what it is valid for: the
/// cache version (`Version::index_key`: generation, and the last bumps
/// of stock across zero and of prices) read before its rows were, so
/// every write that bumped those up to then is in it; a later one bumps
/// past it. Stock moves that leave every product's sign alone leave it
/// valid: the index reads stock only as "has some".
struct IndexSlot {
    generation: String,
    started: Instant,
    flight: IndexFlight,
}

/// Whether a constraint violation came from writing a row or deleting one;
/// the same foreign key means "unknown parent" on write and "still in use"
/// on delete.
#[derive(Clone, Copy)]
pub(super) enum Op {
    Write,
    Delete,
}

pub(super) fn map_db_error(e: sqlx::Error, op: Op) -> CatalogError {
    let (code, constraint) = match &e {
        sqlx::Error::Database(db) => (
            db.code().map(|c| c.into_owned()),
            db.constraint().map(str::to_owned),
        ),
        _ => (None, None),
    };
    match (code.as_deref(), constraint.as_deref(), op) {
        (Some(UNIQUE_VIOLATION), Some(constraints::CATEGORY_SLUG), _) => CatalogError::Taken {
            entity: "category",
            field: "slug",
        },
        (Some(UNIQUE_VIOLATION), Some(constraints::PRODUCT_SLUG), _) => CatalogError::Taken {
            entity: "product",
            field: "slug",
        },
        (Some(UNIQUE_VIOLATION), Some(constraints::VARIANT_SKU), _) => CatalogError::Taken {
            entity: "variant",
            field: "sku",
        },
        (Some(UNIQUE_VIOLATION), Some(constraints::VARIANT_OPTIONS), _) => {
            CatalogError::VariantExists
        }
        (Some(FOREIGN_KEY_VIOLATION), Some(constraints::PRODUCT_CATEGORY), Op::Write) => {
            CatalogError::Validation(ValidationErrors::single(
                "category_id",
                "unknown",
                "no category has this id",
            ))
        }
        (Some(FOREIGN_KEY_VIOLATION), Some(constraints::PRODUCT_CATEGORY), Op::Delete) => {
            CatalogError::CategoryHasProducts
        }
        (Some(FOREIGN_KEY_VIOLATION), Some(constraints::CATEGORY_PARENT), Op::Write) => {
            CatalogError::Validation(ValidationErrors::single(
                "parent_id",
                "unknown",
                "no category has this id",
            ))
        }
        (Some(FOREIGN_KEY_VIOLATION), Some(constraints::CATEGORY_PARENT), Op::Delete) => {
            CatalogError::CategoryHasChildren
        }
        (Some(FOREIGN_KEY_VIOLATION), Some(constraints::RESERVED_VARIANT), _) => {
            CatalogError::ProductInUse
        }
        _ => e.into(),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, CatalogError> {
    serde_json::to_string(value).map_err(|e| CatalogError::Unexpected(e.into()))
}

/// The cached body of a listing page; the edge adds the page links.
#[derive(Serialize)]
struct ListBody<'a> {
    count: i64,
    results: &'a [ProductView],
    #[serde(skip_serializing_if = "Option::is_none")]
    facets: Option<Facets>,
}

/// Beyond this many moved products a write invalidates everything.
const MAX_SCOPED_PRODUCTS: usize = 500;

/// What one attempt at holding stock found.
enum Hold {
    /// Held now; what the ids named, the variants as locked, and what
    /// moved.
    Held {
        resolved: BTreeMap<Uuid, Resolved>,
        snapshots: Vec<VariantSnapshot>,
        moved: ProductsMoved,
    },
    /// A reservation with this id exists already, in this status (or none:
    /// it vanished between the insert and the read).
    Existing(Option<String>),
    /// Some lines cannot be served; nothing was held.
    Short {
        resolved: BTreeMap<Uuid, Resolved>,
        snapshots: Vec<VariantSnapshot>,
        short: Vec<Shortfall>,
    },
}

/// What each of `ids` names, as the store resolved them.
async fn resolve(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, Resolved>, sqlx::Error> {
    Ok(store::resolve_items(conn, ids)
        .await?
        .into_iter()
        .map(|r| {
            let named = match (r.variant_id, r.candidates) {
                (Some(id), 1) => Resolved::Variant(id),
                (Some(_), _) => Resolved::NeedsVariant,
                (None, _) => Resolved::Unknown,
            };
            (r.requested, named)
        })
        .collect())
}

/// Products with their variants and images, in the order given.
pub(super) async fn with_variants(
    pool: &PgPool,
    rows: Vec<ProductRow>,
) -> Result<Vec<ProductView>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut variants: HashMap<Uuid, Vec<store::VariantRow>> = HashMap::new();
    for v in store::variants_of(pool, &ids).await? {
        variants.entry(v.product_id).or_default().push(v);
    }
    let mut images: HashMap<Uuid, Vec<ImageRow>> = HashMap::new();
    for i in crate::store::product_images::of_products(pool, &ids).await? {
        images.entry(i.product_id).or_default().push(i);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let own = variants.remove(&r.id).unwrap_or_default();
            let pictures = images.remove(&r.id).unwrap_or_default();
            ProductView::new(r, own, pictures)
        })
        .collect())
}

fn not_held(status: Option<String>) -> CatalogError {
    CatalogError::ReservationNotHeld(status.unwrap_or_else(|| "unknown".to_owned()))
}

impl CatalogService {
    /// A service around the catalog pool and cache. Must be built on the
    /// actor's own thread (the in-flight table is thread-local).
    pub fn new(
        pool: PgPool,
        cache: CatalogCache,
        view: CatalogView,
        media: MediaStore,
        reservation_ttl_secs: i64,
    ) -> Self {
        Self {
            pool,
            cache,
            view,
            media,
            reservation_ttl_secs,
            inflight: Rc::default(),
            listing_index: Rc::default(),
        }
    }

    /// The listing index valid under cache version `generation` (an index
    /// key): the one built (or being built) under it if it is no older than
    /// cached values may be (a restarted Redis may count again from zero);
    /// else a new one when `build`, or `None`. Concurrent callers share one
    /// build.
    async fn listing_index(
        &self,
        generation: &str,
        build: bool,
    ) -> Result<Option<Rc<ListingIndex>>, CatalogError> {
        let current = self
            .listing_index
            .borrow()
            .as_ref()
            .filter(|slot| {
                slot.generation == generation && slot.started.elapsed() < self.cache.ttl()
            })
            .map(|slot| slot.flight.clone());
        let flight = match current {
            Some(flight) => flight,
            None if !build => return Ok(None),
            None => {
                let pool = self.pool.clone();
                let flight = async move {
                    let (categories, products) = store::listing_sources(&pool)
                        .await
                        .map_err(CatalogError::from)?;
                    Ok(Rc::new(ListingIndex::build(categories, products)))
                }
                .map(|r: Result<_, CatalogError>| r.map_err(Rc::new))
                .boxed_local()
                .shared();
                *self.listing_index.borrow_mut() = Some(IndexSlot {
                    generation: generation.to_owned(),
                    started: Instant::now(),
                    flight: flight.clone(),
                });
                flight
            }
        };
        match flight.clone().await {
            Ok(index) => Ok(Some(index)),
            Err(e) => {
                // Not kept: the next caller tries again.
                let mut slot = self.listing_index.borrow_mut();
                if slot.as_ref().is_some_and(|s| s.flight.ptr_eq(&flight)) {
                    *slot = None;
                }
                Err(e.duplicate())
            }
        }
    }

    /// The pool, for lifecycle messages.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The cache, for statistics.
    pub fn cache(&self) -> &CatalogCache {
        &self.cache
    }

    /// The in-process read view, for starting its channel.
    pub fn view(&self) -> &CatalogView {
        &self.view
    }

    /// Makes every cached response stale, in Redis and then in every
    /// instance's read view, before the write answers; called after each
    /// committed write. The order matters: a view filled after it drops
    /// its pages must find Redis already bumped.
    pub(super) async fn invalidate(&self) {
        if !self.cache.bump_generation().await {
            tracing::warn!(
                "cache generation not bumped; this instance bypasses the cache until it is"
            );
        }
        self.view.invalidate().await;
    }

    /// After a committed write that only moved some products' stock or
    /// prices: makes stale only the cached responses that show those
    /// products or hang on what moved, in Redis and then in every
    /// instance's read view, before the write answers.
    pub(super) async fn invalidate_products(&self, moved: &ProductsMoved) {
        if moved.is_empty() {
            return;
        }
        // Naming very many would cost more than reloading everything.
        if moved.ids.len() > MAX_SCOPED_PRODUCTS || !self.cache.scoped_invalidation() {
            return self.invalidate().await;
        }
        if !self.cache.bump_products(moved).await {
            // Peers would refill from values Redis still vouches for: try
            // a whole bump and a whole invalidation instead.
            return self.invalidate().await;
        }
        self.view.invalidate_products(moved).await;
    }

    /// Cache-aside with single flight: a hit answers from Redis; concurrent
    /// misses of one key under one version share one `load`, whose result
    /// is stored under the version the lookup saw with what it depends on.
    async fn cached<F>(
        &self,
        kind: &'static str,
        key: String,
        load: impl FnOnce(Option<Version>) -> F,
    ) -> Result<CachedJson, CatalogError>
    where
        F: Future<Output = Result<(String, Dependencies), CatalogError>> + 'static,
    {
        let stats = self.cache.stats();
        let version = match self.cache.get(kind, &key).await {
            Lookup::Hit { json, deps } => {
                stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(CachedJson {
                    json: Arc::from(json),
                    status: CacheStatus::Hit,
                    deps,
                });
            }
            Lookup::Miss(version) => {
                stats.misses.fetch_add(1, Ordering::Relaxed);
                Some(version)
            }
            Lookup::Bypass => {
                stats.bypassed.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        // Without a version (the cache bypassed) nothing tells loads before
        // a write from loads after it: such loads are never shared.
        let flight_key = match &version {
            Some(version) => format!("{kind}:{key}:{}", version.flight_key()),
            None => format!("{kind}:{key}:-{}", uuid::Uuid::new_v4().simple()),
        };
        let existing = self.inflight.borrow().get(&flight_key).cloned();
        let flight = match existing {
            Some(flight) => {
                stats.single_flight_joins.fetch_add(1, Ordering::Relaxed);
                flight
            }
            None => {
                let cache = self.cache.clone();
                let stats = Arc::clone(&stats);
                let load = load(version.clone());
                let flight = async move {
                    // A flight that just finished may have filled the cache
                    // between our lookup and this flight's start.
                    if version.is_some() {
                        if let Lookup::Hit { json, deps } = cache.get(kind, &key).await {
                            return Ok((Arc::from(json), deps));
                        }
                    }
                    stats.db_loads.fetch_add(1, Ordering::Relaxed);
                    let (json, deps) = load.await.map_err(Rc::new)?;
                    if let Some(version) = version {
                        cache.put(&version, kind, &key, &deps, &json).await;
                    }
                    Ok((Arc::from(json), deps))
                }
                .boxed_local()
                .shared();
                self.inflight
                    .borrow_mut()
                    .insert(flight_key.clone(), flight.clone());
                flight
            }
        };
        let result = flight.clone().await;
        {
            let mut inflight = self.inflight.borrow_mut();
            if inflight.get(&flight_key).is_some_and(|f| f.ptr_eq(&flight)) {
                inflight.remove(&flight_key);
            }
        }
        result
            .map(|(json, deps)| CachedJson {
                json,
                status: CacheStatus::Miss,
                deps,
            })
            .map_err(|e| e.duplicate())
    }

    pub async fn create_category(&self, msg: CreateCategory) -> Result<CategoryView, CatalogError> {
        let row = store::insert_category(&self.pool, &msg.0)
            .await
            .map_err(|e| map_db_error(e, Op::Write))?;
        self.invalidate().await;
        Ok(row.into())
    }

    pub async fn list_categories(
        &self,
        msg: ListCategories,
    ) -> Result<(Vec<CategoryView>, i64), CatalogError> {
        let (rows, count) =
            store::list_categories(&self.pool, msg.0.limit(), msg.0.offset()).await?;
        Ok((rows.into_iter().map(CategoryView::from).collect(), count))
    }

    pub async fn get_category(&self, msg: GetCategory) -> Result<CategoryView, CatalogError> {
        let mut conn = self.pool.acquire().await?;
        store::get_category(&mut conn, msg.0)
            .await?
            .map(CategoryView::from)
            .ok_or(CatalogError::CategoryNotFound)
    }

    pub async fn update_category(&self, msg: UpdateCategory) -> Result<CategoryView, CatalogError> {
        let mut tx = self.pool.begin().await?;
        store::lock_category_tree(&mut tx).await?;
        let current = store::get_category(&mut tx, msg.id)
            .await?
            .ok_or(CatalogError::CategoryNotFound)?;
        let name = msg.name.unwrap_or(current.name);
        let slug = msg.slug.unwrap_or(current.slug);
        let parent_id = msg.parent_id.unwrap_or(current.parent_id);
        let fields =
            validate_category(&name, Some(&slug), parent_id).map_err(CatalogError::Validation)?;
        if let Some(parent) = parent_id {
            let lineage = store::category_lineage(&mut tx, parent).await?;
            if lineage.is_empty() {
                return Err(CatalogError::Validation(ValidationErrors::single(
                    "parent_id",
                    "unknown",
                    "no category has this id",
                )));
            }
            if creates_cycle(msg.id, &lineage) {
                return Err(CatalogError::Validation(ValidationErrors::single(
                    "parent_id",
                    "cycle",
                    "a category cannot sit under itself or one of its sub-categories",
                )));
            }
        }
        let row = store::update_category(&mut tx, msg.id, &fields)
            .await
            .map_err(|e| map_db_error(e, Op::Write))?
            .ok_or(CatalogError::CategoryNotFound)?;
        tx.commit().await?;
        self.invalidate().await;
        Ok(row.into())
    }

    pub async fn delete_category(&self, msg: DeleteCategory) -> Result<(), CatalogError> {
        let deleted = store::delete_category(&self.pool, msg.0)
            .await
            .map_err(|e| map_db_error(e, Op::Delete))?;
        if !deleted {
            return Err(CatalogError::CategoryNotFound);
        }
        self.invalidate().await;
        Ok(())
    }

    pub async fn create_product(&self, msg: CreateProduct) -> Result<ProductView, CatalogError> {
        let new = msg.draft.validate().map_err(CatalogError::Validation)?;
        let combinations: Vec<_> = new.variants.iter().map(|v| &v.options).collect();
        if repeated_combination(&combinations).is_some() {
            return Err(CatalogError::VariantExists);
        }
        let id = Uuid::new_v4();
        // A product without options has one variant, whose id is the
        // product's: a line naming the product names that unit.
        let variants: Vec<_> = new
            .variants
            .into_iter()
            .map(|v| {
                let vid = if new.fields.options.is_empty() {
                    id
                } else {
                    Uuid::new_v4()
                };
                (vid, v)
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        let row = store::insert_product(&mut tx, id, &new.fields, &variants)
            .await
            .map_err(|e| map_db_error(e, Op::Write))?;
        let opening: Vec<_> = variants.iter().map(|(id, v)| (*id, v.stock)).collect();
        stock_store::record_opening_stock(&mut tx, &opening, Some(msg.admin))
            .await?
            .map_err(CatalogError::Stock)?;
        store::append_product_event(&mut tx, EventType::ProductCreated, id).await?;
        let stocked: Vec<Uuid> = opening.iter().filter(|o| o.1 > 0).map(|o| o.0).collect();
        stock_store::append_stock_changed(&mut tx, &stocked, StockReason::Adjustment).await?;
        tx.commit().await?;
        self.invalidate().await;
        self.view_of(row).await
    }

    /// A product row as clients see it, with its variants.
    pub(super) async fn view_of(&self, row: ProductRow) -> Result<ProductView, CatalogError> {
        let mut views = with_variants(&self.pool, vec![row]).await?;
        views
            .pop()
            .ok_or_else(|| CatalogError::Unexpected(anyhow::anyhow!("product view went missing")))
    }

    pub async fn get_product(&self, msg: GetProduct) -> Result<CachedJson, CatalogError> {
        let (kind, key) = match &msg.key {
            ProductKey::Id(id) => ("product", id.to_string()),
            ProductKey::Slug(slug) => ("product-slug", slug.clone()),
        };
        let kind = if msg.include_inactive {
            kind
        } else {
            public_kind(kind)
        };
        let pool = self.pool.clone();
        let include_inactive = msg.include_inactive;
        self.cached(kind, key, move |_| async move {
            let row = match msg.key {
                ProductKey::Id(id) => store::get_product(&pool, id).await?,
                ProductKey::Slug(slug) => store::get_product_by_slug(&pool, &slug).await?,
            };
            let row = row
                .filter(|p| include_inactive || p.is_active)
                .ok_or(CatalogError::ProductNotFound)?;
            let view = with_variants(&pool, vec![row]).await?;
            let deps = Dependencies {
                products: vec![view[0].id],
                ..Dependencies::default()
            };
            Ok((to_json(&view[0])?, deps))
        })
        .await
    }

    pub async fn list_products(&self, msg: ListProducts) -> Result<CachedJson, CatalogError> {
        let kind = if msg.include_inactive {
            "list"
        } else {
            "public-list"
        };
        let key = msg.query.cache_key();
        let pool = self.pool.clone();
        let service = self.clone();
        self.cached(kind, key, move |version| async move {
            let query = msg.query;
            // What its pages hang on, besides the products they show.
            let hangs_on = query.dependencies(Vec::new());
            let category_ids = match &query.category {
                None => None,
                Some(reference) => Some(
                    store::category_subtree(&pool, reference)
                        .await?
                        .ok_or_else(|| {
                            CatalogError::InvalidQuery(ValidationErrors::single(
                                "category",
                                "unknown",
                                "no such category",
                            ))
                        })?,
                ),
            };
            let filter = ProductFilter {
                only_active: !msg.include_inactive,
                category_ids,
                min_price: query.min_price,
                max_price: query.max_price,
                q: query.q,
                in_stock: query.in_stock,
                tags: query.tags,
                options: query.options.into_iter().collect(),
            };
            // Search is the database's; so is a listing the cache cannot
            // vouch for (no version to build an index under). Only a
            // facet listing builds the index (one scan, cheaper than the
            // facets statement); a plain listing uses it when it is
            // current, so while orders move stock across zero
            // a plain miss costs its two small statements, not a rebuild.
            let index = match version {
                Some(version) if filter.q.is_none() => {
                    service
                        .listing_index(&version.index_key(), query.facets)
                        .await?
                }
                _ => None,
            };
            let (rows, count, facets) = match index {
                Some(index) => {
                    let f = ListingFilter {
                        only_active: filter.only_active,
                        category_ids: filter.category_ids.as_deref(),
                        min_price: filter.min_price,
                        max_price: filter.max_price,
                        in_stock: filter.in_stock,
                        tags: &filter.tags,
                        options: &filter.options,
                    };
                    let (ids, count) = index.page(
                        &f,
                        query.ordering,
                        usize::try_from(query.page.limit()).unwrap_or_default(),
                        usize::try_from(query.page.offset()).unwrap_or(usize::MAX),
                    );
                    let facets = query.facets.then(|| index.facets(&f));
                    let rows = store::products_in_order(&pool, &ids).await?;
                    (rows, i64::try_from(count).unwrap_or(i64::MAX), facets)
                }
                None => {
                    let (rows, count) = store::list_products(
                        &pool,
                        &filter,
                        query.ordering,
                        query.page.limit(),
                        query.page.offset(),
                    )
                    .await?;
                    let facets = match query.facets {
                        true => Some(store::facets(&pool, &filter).await?),
                        false => None,
                    };
                    (rows, count, facets)
                }
            };
            let results = with_variants(&pool, rows).await?;
            let deps = Dependencies {
                products: results.iter().map(|p| p.id).collect(),
                ..hangs_on
            };
            let json = to_json(&ListBody {
                count,
                results: &results,
                facets,
            })?;
            Ok((json, deps))
        })
        .await
    }

    pub async fn update_product(&self, msg: UpdateProduct) -> Result<ProductView, CatalogError> {
        let mut tx = self.pool.begin().await?;
        // Variants first, then the product: the lock order of every write
        // (see `store::refresh_totals`).
        let variants = store::lock_variants_of(&mut tx, msg.id).await?;
        let current = store::lock_product(&mut tx, msg.id)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        let draft = match msg.change {
            ProductChange::Full(draft) => draft,
            ProductChange::Partial(patch) => patch.apply(&current.fields()),
        };
        let (fields, default) = draft.validate_change().map_err(CatalogError::Validation)?;
        let used: Vec<_> = variants.iter().map(|v| &v.options.0).collect();
        check_option_change(&current.options.0, &fields.options, &used)
            .map_err(CatalogError::OptionChange)?;
        if !default.is_empty() {
            // Only a product without options has a default variant.
            let [only] = variants.as_slice() else {
                let mut errors = ValidationErrors::new();
                for field in default.named() {
                    errors.add(
                        field,
                        "set_on_variants",
                        format!("this product has options; set {field} on its variants"),
                    );
                }
                return Err(CatalogError::Validation(errors));
            };
            if !fields.options.is_empty() {
                return Err(CatalogError::Validation(ValidationErrors::single(
                    default.named()[0],
                    "set_on_variants",
                    "this product has options; set it on its variants",
                )));
            }
            let next = default
                .into_patch()
                .apply(&only.fields())
                .validate(&fields.options)
                .map_err(CatalogError::Validation)?;
            store::update_variant(&mut tx, only.id, &next)
                .await
                .map_err(|e| map_db_error(e, Op::Write))?;
            stock_store::adjust_at_home(&mut tx, only.id, next.stock - only.stock, Some(msg.admin))
                .await?
                .map_err(CatalogError::Stock)?;
        }
        store::update_product(&mut tx, msg.id, &fields)
            .await
            .map_err(|e| map_db_error(e, Op::Write))?
            .ok_or(CatalogError::ProductNotFound)?;
        store::refresh_totals(&mut tx, &[msg.id]).await?;
        let row = store::lock_product(&mut tx, msg.id)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        store::append_product_event(&mut tx, EventType::ProductUpdated, msg.id).await?;
        tx.commit().await?;
        self.invalidate().await;
        self.view_of(row).await
    }

    pub async fn delete_product(&self, msg: DeleteProduct) -> Result<(), CatalogError> {
        let keys = crate::store::product_images::keys_of(&self.pool, msg.0).await?;
        let deleted = store::delete_product(&self.pool, msg.0)
            .await
            .map_err(|e| map_db_error(e, Op::Delete))?;
        if !deleted {
            return Err(CatalogError::ProductNotFound);
        }
        self.invalidate().await;
        // The rows went with the product; their files follow.
        for key in keys {
            if let Err(e) = self.media.delete(&key).await {
                tracing::warn!(error = %format!("{e:#}"), key, "image file left behind");
            }
        }
        Ok(())
    }

    pub async fn reserve_stock(
        &self,
        msg: ReserveStock,
    ) -> Result<ReservationOutcome, CatalogError> {
        let lines = normalize_lines(&msg.lines).map_err(CatalogError::Validation)?;
        let (outcome, moved) = retry_on_contention("reserve stock", || {
            self.reserve_once(msg.reservation_id, &lines)
        })
        .await?;
        self.invalidate_products(&moved).await;
        Ok(outcome)
    }

    async fn reserve_once(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
    ) -> Result<(ReservationOutcome, ProductsMoved), CatalogError> {
        match self.hold_once(reservation_id, lines).await? {
            Hold::Held { moved, .. } => Ok((ReservationOutcome::Reserved, moved)),
            Hold::Existing(status) if status.as_deref() == Some("held") => Ok((
                ReservationOutcome::AlreadyReserved,
                ProductsMoved::default(),
            )),
            // Released before it was made: its caller gave up on it.
            Hold::Existing(status) => Err(not_held(status)),
            Hold::Short { short, .. } => Err(CatalogError::InsufficientStock(short)),
        }
    }

    /// One attempt at holding `lines` under `reservation_id`, in one
    /// transaction: the reservation's insert is the idempotency guard (a
    /// concurrent retry with the same id waits on it, then finds it made),
    /// then each line's id is resolved to its variant, the variants are
    /// locked in id order and read, and the stock is taken only if every
    /// line can be served.
    async fn hold_once(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
    ) -> Result<Hold, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let expires_at = Utc::now() + chrono::Duration::seconds(self.reservation_ttl_secs);
        if !store::insert_reservation(&mut tx, reservation_id, expires_at).await? {
            let status = store::reservation_status(&mut tx, reservation_id).await?;
            tx.rollback().await?;
            return Ok(Hold::Existing(status));
        }
        let asked: Vec<_> = lines.iter().map(|l| l.variant_id).collect();
        let resolved = resolve(&mut tx, &asked).await?;
        let (lines, mut short) = resolve_lines(lines, &resolved);
        let ids: Vec<_> = lines.iter().map(|l| l.variant_id).collect();
        let snapshots = store::lock_snapshots(&mut tx, &ids).await?;
        let levels = snapshots
            .iter()
            .map(|s| {
                let level = StockLevel {
                    stock: s.stock,
                    is_active: s.is_active,
                };
                (s.id, level)
            })
            .collect();
        short.extend(shortfalls(&lines, &levels));
        if !short.is_empty() {
            tx.rollback().await?;
            return Ok(Hold::Short {
                resolved,
                snapshots,
                short,
            });
        }
        let allocations = match allocate_lines(&mut tx, &lines).await? {
            Ok(allocations) => allocations,
            Err(short) => {
                tx.rollback().await?;
                return Ok(Hold::Short {
                    resolved,
                    snapshots,
                    short,
                });
            }
        };
        let mut products: Vec<Uuid> = snapshots.iter().map(|s| s.product_id).collect();
        products.sort_unstable();
        products.dedup();
        let held: Vec<_> = lines.iter().map(|l| (l.variant_id, l.quantity)).collect();
        stock_store::hold(&mut tx, reservation_id, &held, &allocations).await?;
        let moved = store::refresh_totals(&mut tx, &products).await?;
        tx.commit().await?;
        Ok(Hold::Held {
            resolved,
            snapshots,
            moved,
        })
    }

    pub async fn reserve_for_order(
        &self,
        msg: ReserveForOrder,
    ) -> Result<HeldForOrder, CatalogError> {
        let lines = normalize_lines(&msg.lines).map_err(CatalogError::Validation)?;
        let (held, moved) = retry_on_contention("reserve stock", || {
            self.reserve_for_order_once(msg.reservation_id, &lines)
        })
        .await?;
        self.invalidate_products(&moved).await;
        Ok(held)
    }

    async fn reserve_for_order_once(
        &self,
        reservation_id: Uuid,
        lines: &[StockLine],
    ) -> Result<(HeldForOrder, ProductsMoved), CatalogError> {
        match self.hold_once(reservation_id, lines).await? {
            Hold::Held {
                resolved,
                snapshots,
                moved,
            } => Ok((
                HeldForOrder {
                    held: true,
                    resolved,
                    snapshots,
                },
                moved,
            )),
            // Ids are new per order; a clash is a release that came first.
            Hold::Existing(status) => Err(not_held(status)),
            // Unknown, ambiguous or inactive: the caller names those lines
            // from what was resolved; nothing is held.
            Hold::Short {
                resolved,
                snapshots,
                short,
            } if short.iter().any(|s| s.reason != "insufficient_stock") => Ok((
                HeldForOrder {
                    held: false,
                    resolved,
                    snapshots,
                },
                ProductsMoved::default(),
            )),
            Hold::Short { short, .. } => Err(CatalogError::InsufficientStock(short)),
        }
    }

    pub async fn release_reservation(&self, msg: ReleaseReservation) -> Result<(), CatalogError> {
        let released = retry_on_contention("release stock", || async {
            let mut tx = self.pool.begin().await?;
            let released = store::release_reservation(&mut tx, msg.0).await?;
            let status = store::reservation_status(&mut tx, msg.0).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((released, status))
        })
        .await?;
        match released {
            (Some(moved), _) => {
                self.invalidate_products(&moved).await;
                Ok(())
            }
            (None, Some(status)) if status == "committed" => {
                Err(CatalogError::ReservationNotHeld(status))
            }
            (None, _) => Ok(()),
        }
    }

    pub async fn commit_reservation(&self, msg: CommitReservation) -> Result<(), CatalogError> {
        let committed = retry_on_contention("commit stock", || async {
            let mut tx = self.pool.begin().await?;
            let committed = store::commit_reservation(&mut tx, msg.0).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(committed)
        })
        .await?;
        if committed {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        match store::reservation_status(&mut conn, msg.0)
            .await?
            .as_deref()
        {
            Some("committed") => Ok(()),
            Some(status) => Err(CatalogError::ReservationNotHeld(status.to_owned())),
            None => Err(CatalogError::ReservationNotHeld("unknown".into())),
        }
    }

    pub async fn item_snapshots(
        &self,
        msg: GetItemSnapshots,
    ) -> Result<ItemSnapshots, CatalogError> {
        // Taken before the read: the variants it finds feed the view only
        // if no write to their products answered meanwhile.
        let ticket = self.view.ticket();
        let mut conn = self.pool.acquire().await?;
        let resolved = resolve(&mut conn, &msg.0).await?;
        let ids: Vec<Uuid> = resolved
            .values()
            .filter_map(|r| match r {
                Resolved::Variant(id) => Some(*id),
                _ => None,
            })
            .collect();
        let found = store::variant_snapshots(&mut conn, &ids).await?;
        self.view.put_variants(ticket, &found);
        let snapshots = found.into_iter().map(|s| (s.id, s)).collect();
        Ok(ItemSnapshots {
            resolved,
            snapshots,
        })
    }

    pub async fn product_features(
        &self,
        msg: GetProductFeatures,
    ) -> Result<Vec<store::ProductFeatureRow>, CatalogError> {
        Ok(store::product_features_page(&self.pool, msg.after, msg.limit.clamp(1, 50_000)).await?)
    }

    pub async fn category_parents(
        &self,
        _: GetCategoryParents,
    ) -> Result<Vec<(Uuid, Option<Uuid>, String)>, CatalogError> {
        Ok(store::category_parents(&self.pool).await?)
    }

    pub async fn products_by_ids(
        &self,
        msg: GetProductsByIds,
    ) -> Result<Vec<ProductView>, CatalogError> {
        let rows = store::products_by_ids(&self.pool, &msg.0).await?;
        Ok(with_variants(&self.pool, rows).await?)
    }

    pub async fn sweep(&self, _: SweepReservations) -> Result<u64, CatalogError> {
        let (released, moved) = retry_on_contention("sweep reservations", || {
            store::sweep_expired_reservations(&self.pool, SWEEP_BATCH)
        })
        .await?;
        if released > 0 {
            tracing::info!(released, "expired reservations returned to stock");
            self.invalidate_products(&moved).await;
        }
        Ok(released)
    }
}

fn public_kind(kind: &'static str) -> &'static str {
    match kind {
        "product" => "public-product",
        _ => "public-product-slug",
    }
}

/// Where each line's units come from (see [`allocate`]), or the lines the
/// active locations cannot cover between them. The variants are locked.
async fn allocate_lines(
    conn: &mut sqlx::PgConnection,
    lines: &[StockLine],
) -> Result<Result<Vec<Allocation>, Vec<Shortfall>>, sqlx::Error> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.variant_id).collect();
    let mut sources: HashMap<Uuid, Vec<Source>> = HashMap::new();
    for (variant, source) in stock_store::free_sources(conn, &ids).await? {
        sources.entry(variant).or_default().push(source);
    }
    let mut allocations = Vec::new();
    let mut short = Vec::new();
    for line in lines {
        let from = sources
            .get(&line.variant_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match allocate(from, line.quantity) {
            Some(takes) => allocations.extend(takes.into_iter().map(|t| Allocation {
                variant_id: line.variant_id,
                location_id: t.location_id,
                quantity: t.quantity,
            })),
            // The variant's stock said yes, its levels say no: trust the
            // levels, which the ledger backs.
            None => short.push(Shortfall {
                variant_id: line.variant_id,
                requested: line.quantity,
                available: from.iter().map(|s| s.free).sum(),
                reason: "insufficient_stock",
            }),
        }
    }
    Ok(if short.is_empty() {
        Ok(allocations)
    } else {
        Err(short)
    })
}
