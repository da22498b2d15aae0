//! `CatalogActor`: categories, products, the product cache and stock
//! reservations. Owns the catalog database and the catalog's Redis pool.

pub mod cache;
pub mod error;
pub mod handlers;
pub mod images;
pub mod locations;
pub mod messages;
pub mod shipments;
pub mod variants;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};
use sqlx::PgPool;

pub use error::CatalogError;
pub use handlers::CatalogService;
use locations::*;
use messages::*;
use shipments::*;

use super::metrics::ActorMetrics;
use super::runtime::{every, on_started};
use crate::actors::catalog::cache::CatalogCache;
use crate::actors::read_view::CatalogView;
use crate::store::catalog::ProductFeatureRow;
use crate::store::media::MediaStore;
use uuid::Uuid;

/// The catalog domain actor.
pub struct CatalogActor {
    pool: PgPool,
    service: CatalogService,
    metrics: Arc<ActorMetrics>,
    sweep_interval: Duration,
}

impl CatalogActor {
    /// Builds the actor; call on the arbiter it will run on.
    pub fn new(
        pool: PgPool,
        cache: CatalogCache,
        view: CatalogView,
        media: MediaStore,
        reservation_ttl_secs: i64,
        sweep_interval: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        Self {
            service: CatalogService::new(pool.clone(), cache, view, media, reservation_ttl_secs),
            pool,
            metrics,
            sweep_interval,
        }
    }
}

impl Actor for CatalogActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        // The view's channel runs on this actor's thread; started once.
        self.service.view().start();
        // Expired reservations go back to stock on a timer, so a crash
        // between reserving and ordering never leaks stock.
        every(
            ctx,
            self.sweep_interval,
            "reservation sweep",
            |actor: &Self| {
                let service = actor.service.clone();
                async move { service.sweep(SweepReservations).await.map(|_| ()) }
            },
        );
    }
}

crate::lifecycle_handlers!(CatalogActor);
crate::event_source_handlers!(CatalogActor);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(CatalogActor, CatalogError, $message => $method, $reply);
    };
}

route!(CreateCategory => create_category, CategoryView);
route!(ListCategories => list_categories, (Vec<CategoryView>, i64));
route!(GetCategory => get_category, CategoryView);
route!(UpdateCategory => update_category, CategoryView);
route!(DeleteCategory => delete_category, ());
route!(CreateProduct => create_product, ProductView);
route!(GetProduct => get_product, CachedJson);
route!(ListProducts => list_products, CachedJson);
route!(UpdateProduct => update_product, ProductView);
route!(DeleteProduct => delete_product, ());
route!(ReserveStock => reserve_stock, ReservationOutcome);
route!(ReserveForOrder => reserve_for_order, HeldForOrder);
route!(ReleaseReservation => release_reservation, ());
route!(CommitReservation => commit_reservation, ());
route!(GetReservationHoldings => reservation_holdings, ReservationHoldings);
route!(ShipReservation => ship_reservation, ());
route!(ReleaseUnshipped => release_unshipped, ());
route!(RestockReturn => restock_return, ());
route!(GetItemSnapshots => item_snapshots, ItemSnapshots);
route!(ListVariants => list_variants, Vec<VariantView>);
route!(AddProductImage => add_image, ImageView);
route!(UpdateProductImage => update_image, ImageView);
route!(DeleteProductImage => delete_image, ());
route!(GetMedia => media, Option<bytes::Bytes>);
route!(GetVariant => get_variant, VariantView);
route!(CreateVariant => create_variant, VariantView);
route!(UpdateVariant => update_variant, VariantView);
route!(DeleteVariant => delete_variant, ());
route!(SweepReservations => sweep, u64);
route!(GetProductFeatures => product_features, Vec<ProductFeatureRow>);
route!(GetCategoryParents => category_parents, Vec<(Uuid, Option<Uuid>, String)>);
route!(GetProductsByIds => products_by_ids, Vec<ProductView>);
route!(ListStockLocations => list_locations, Vec<LocationView>);
route!(GetStockLocation => get_location, LocationView);
route!(PutStockLocation => put_location, LocationView);
route!(DeleteStockLocation => delete_location, ());
route!(GetVariantStock => variant_stock, VariantStockView);
route!(SetVariantStock => set_variant_stock, VariantStockView);
route!(ListStockMovements => list_movements, (Vec<MovementView>, i64));
