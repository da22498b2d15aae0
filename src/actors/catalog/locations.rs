//! Stock locations, a variant's stock per location, and the movement
//! ledger: the messages and the work behind them.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::CatalogError;
use super::handlers::CatalogService;
use crate::domain::cache_scope::ProductsMoved;
use crate::domain::catalog::allocation::MovementKind;
use crate::domain::catalog::location::{check_levels, LevelDraft, LocationDraft};
use crate::domain::events::StockReason;
use crate::domain::pagination::PageRequest;
use crate::store::catalog as catalog_store;
use crate::store::database::OnConstraint;
use crate::store::stock::{self as store, constraints, LevelRow, LocationRow, MovementRow};

/// A stock location as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LocationView {
    pub id: Uuid,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Higher first when reservations choose where stock comes from.
    pub priority: i32,
    /// Inactive locations are never reserved from and do not count
    /// towards what is available.
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<LocationRow> for LocationView {
    fn from(r: LocationRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            country: r.country,
            priority: r.priority,
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// One location's count of a variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LevelView {
    pub location_id: Uuid,
    pub location_name: String,
    pub country: String,
    pub priority: i32,
    pub is_active: bool,
    /// Units at the location, sold or not.
    pub on_hand: i32,
    /// Units of `on_hand` that open reservations hold.
    pub held: i32,
    /// `on_hand - held`.
    pub available: i32,
}

impl From<LevelRow> for LevelView {
    fn from(r: LevelRow) -> Self {
        Self {
            available: r.on_hand - r.held,
            location_id: r.location_id,
            location_name: r.location_name,
            country: r.country,
            priority: r.priority,
            is_active: r.is_active,
            on_hand: r.on_hand,
            held: r.held,
        }
    }
}

/// A variant's stock across locations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VariantStockView {
    pub variant_id: Uuid,
    /// Σ available over active locations: the variant's `stock`.
    pub available: i64,
    /// Per location, preferred first.
    pub levels: Vec<LevelView>,
}

/// A ledger row as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MovementView {
    /// Increasing: later movements have larger ids.
    pub id: i64,
    pub variant_id: Uuid,
    pub location_id: Uuid,
    /// `adjustment`, `reservation`, `release`, `sale` or `return`.
    pub kind: String,
    /// Change to the location's `on_hand`.
    pub on_hand_delta: i32,
    /// Change to the location's `held`.
    pub held_delta: i32,
    /// The reservation that caused it; an order's reservation id is the
    /// order's id.
    pub reservation_id: Option<Uuid>,
    /// The admin who caused it (`null` for reservations, seed data and the
    /// opening balance).
    pub admin_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<MovementRow> for MovementView {
    fn from(r: MovementRow) -> Self {
        Self {
            id: r.id,
            variant_id: r.variant_id,
            location_id: r.location_id,
            kind: r.kind,
            on_hand_delta: r.on_hand_delta,
            held_delta: r.held_delta,
            reservation_id: r.reservation_id,
            admin_id: r.admin_id,
            created_at: r.created_at,
        }
    }
}

/// Every stock location, preferred first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<LocationView>, CatalogError>")]
pub struct ListStockLocations;

/// One stock location.
#[derive(Debug, Message)]
#[rtype(result = "Result<LocationView, CatalogError>")]
pub struct GetStockLocation(pub Uuid);

/// Create a location (`id: None`) or replace one's fields.
#[derive(Debug, Message)]
#[rtype(result = "Result<LocationView, CatalogError>")]
pub struct PutStockLocation {
    pub id: Option<Uuid>,
    pub draft: LocationDraft,
}

/// Delete a location that has no history; one with history is
/// deactivated instead.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct DeleteStockLocation(pub Uuid);

/// A variant's stock per location.
#[derive(Debug, Message)]
#[rtype(result = "Result<VariantStockView, CatalogError>")]
pub struct GetVariantStock {
    pub product_id: Uuid,
    pub variant_id: Uuid,
}

/// Set a variant's count at some locations (others unchanged).
#[derive(Debug, Message)]
#[rtype(result = "Result<VariantStockView, CatalogError>")]
pub struct SetVariantStock {
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub levels: Vec<LevelDraft>,
    pub admin: Uuid,
}

/// A page of the ledger, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<MovementView>, i64), CatalogError>")]
pub struct ListStockMovements {
    pub variant_id: Option<Uuid>,
    pub location_id: Option<Uuid>,
    pub reservation_id: Option<Uuid>,
    pub kind: Option<MovementKind>,
    pub page: PageRequest,
}

impl CatalogService {
    pub async fn list_locations(
        &self,
        _: ListStockLocations,
    ) -> Result<Vec<LocationView>, CatalogError> {
        let rows = store::list_locations(&self.pool).await?;
        Ok(rows.into_iter().map(LocationView::from).collect())
    }

    pub async fn get_location(&self, msg: GetStockLocation) -> Result<LocationView, CatalogError> {
        store::get_location(&self.pool, msg.0)
            .await?
            .map(LocationView::from)
            .ok_or(CatalogError::LocationNotFound)
    }

    pub async fn put_location(&self, msg: PutStockLocation) -> Result<LocationView, CatalogError> {
        let fields = msg.draft.validate().map_err(CatalogError::Validation)?;
        let taken = || CatalogError::Taken {
            entity: "stock location",
            field: "name",
        };
        let Some(id) = msg.id else {
            let row = store::insert_location(&self.pool, Uuid::new_v4(), &fields)
                .await
                .on_constraint(constraints::LOCATION_NAME, taken)?;
            return Ok(row.into());
        };
        let mut tx = self.pool.begin().await?;
        let (was_active, row) = store::update_location(&mut tx, id, &fields)
            .await
            .on_constraint(constraints::LOCATION_NAME, taken)?
            .ok_or(CatalogError::LocationNotFound)?;
        let mut moved = ProductsMoved::default();
        if was_active != row.is_active {
            // What this location has stops or starts counting as available.
            let locked = store::lock_variants_at(&mut tx, id).await?;
            let variants: Vec<Uuid> = locked.iter().map(|(v, _)| *v).collect();
            let mut products: Vec<Uuid> = locked.iter().map(|(_, p)| *p).collect();
            products.sort_unstable();
            products.dedup();
            store::sync_variant_stock(&mut tx, &variants).await?;
            moved = catalog_store::refresh_totals(&mut tx, &products).await?;
            store::append_stock_changed(&mut tx, &variants, StockReason::Adjustment).await?;
        }
        tx.commit().await?;
        self.invalidate_products(&moved).await;
        Ok(row.into())
    }

    pub async fn delete_location(&self, msg: DeleteStockLocation) -> Result<(), CatalogError> {
        let deleted = match store::delete_location(&self.pool, msg.0).await {
            // History (movements, allocations) keeps its location.
            Err(sqlx::Error::Database(db))
                if matches!(
                    db.constraint(),
                    Some(constraints::MOVEMENT_LOCATION | constraints::ALLOCATION_LOCATION)
                ) =>
            {
                return Err(CatalogError::LocationInUse)
            }
            other => other?,
        };
        if !deleted {
            return Err(CatalogError::LocationNotFound);
        }
        Ok(())
    }

    pub async fn variant_stock(
        &self,
        msg: GetVariantStock,
    ) -> Result<VariantStockView, CatalogError> {
        self.check_variant(msg.product_id, msg.variant_id).await?;
        self.stock_view(msg.variant_id).await
    }

    pub async fn set_variant_stock(
        &self,
        msg: SetVariantStock,
    ) -> Result<VariantStockView, CatalogError> {
        let levels = check_levels(&msg.levels).map_err(CatalogError::Validation)?;
        let mut tx = self.pool.begin().await?;
        let locations: Vec<Uuid> = levels.iter().map(|l| l.location_id).collect();
        store::share_locations(&mut tx, &locations).await?;
        let variants = catalog_store::lock_variants_of(&mut tx, msg.product_id).await?;
        if variants.is_empty() {
            return Err(CatalogError::ProductNotFound);
        }
        if !variants.iter().any(|v| v.id == msg.variant_id) {
            return Err(CatalogError::VariantNotFound);
        }
        store::set_levels(&mut tx, msg.variant_id, &levels, Some(msg.admin))
            .await?
            .map_err(CatalogError::Stock)?;
        let moved = catalog_store::refresh_totals(&mut tx, &[msg.product_id]).await?;
        tx.commit().await?;
        self.invalidate_products(&moved).await;
        self.stock_view(msg.variant_id).await
    }

    pub async fn list_movements(
        &self,
        msg: ListStockMovements,
    ) -> Result<(Vec<MovementView>, i64), CatalogError> {
        let filter = store::MovementFilter {
            variant_id: msg.variant_id,
            location_id: msg.location_id,
            reservation_id: msg.reservation_id,
            kind: msg.kind.map(MovementKind::as_str),
        };
        let (rows, count) =
            store::list_movements(&self.pool, &filter, msg.page.limit(), msg.page.offset()).await?;
        Ok((rows.into_iter().map(MovementView::from).collect(), count))
    }

    /// 404s for a product or variant that does not exist (or not together).
    async fn check_variant(&self, product_id: Uuid, variant_id: Uuid) -> Result<(), CatalogError> {
        let variants = catalog_store::variants_of(&self.pool, &[product_id]).await?;
        if variants.is_empty() {
            return Err(CatalogError::ProductNotFound);
        }
        if !variants.iter().any(|v| v.id == variant_id) {
            return Err(CatalogError::VariantNotFound);
        }
        Ok(())
    }

    async fn stock_view(&self, variant_id: Uuid) -> Result<VariantStockView, CatalogError> {
        let levels: Vec<LevelView> = store::levels_of(&self.pool, variant_id)
            .await?
            .into_iter()
            .map(LevelView::from)
            .collect();
        let available = levels
            .iter()
            .filter(|l| l.is_active)
            .map(|l| i64::from(l.available))
            .sum();
        Ok(VariantStockView {
            variant_id,
            available,
            levels,
        })
    }
}
