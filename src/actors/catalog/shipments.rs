//! Shipping from reservations: what an order's reservation holds where
//! (for orders to choose the location a parcel leaves from), and the sale
//! of a shipped parcel's units. The messages and the work behind them.

use actix::Message;
use uuid::Uuid;

use super::error::CatalogError;
use super::handlers::CatalogService;
use crate::store::database::retry_on_contention;
use crate::store::stock::{self as store, HoldingRow, Shipped};

/// What an order's reservation holds: its status, whether it was sold
/// when paid (before shipments existed), and its allocations, preferred
/// location first.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReservationHoldings, CatalogError>")]
pub struct GetReservationHoldings(pub Uuid);

/// The answer to [`GetReservationHoldings`].
#[derive(Debug, Clone, Default)]
pub struct ReservationHoldings {
    /// `held`, `committed` or `released`; `None` when there is none.
    pub status: Option<String>,
    /// The units were sold when the order was paid (reservations
    /// committed before shipments existed): shipping moves no stock.
    pub sold_at_payment: bool,
    pub allocations: Vec<HoldingRow>,
}

/// Sell a shipped parcel's units from the shelves of the location it left
/// where the order's reservation holds them. Idempotent by `shipment_id`;
/// refused (nothing moves) when the reservation is not committed or does
/// not hold the units there.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct ShipReservation {
    /// The order's id.
    pub reservation_id: Uuid,
    /// The fulfilment's id.
    pub shipment_id: Uuid,
    /// Where it left from; `None` only for orders sold when paid.
    pub location_id: Option<Uuid>,
    /// (variant, units).
    pub lines: Vec<(Uuid, i32)>,
}

/// Give back what an order's reservation has not shipped, paid or not (the
/// order was refunded). Idempotent: a released reservation changes nothing.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct ReleaseUnshipped(pub Uuid);

/// Put a received return's restocked units (variant, location, units)
/// back on the shelves: `return` movements, available at once.
/// Idempotent by `return_id`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct RestockReturn {
    pub return_id: Uuid,
    /// The order's id.
    pub reservation_id: Uuid,
    pub lines: Vec<(Uuid, Uuid, i32)>,
}

impl CatalogService {
    pub async fn restock_return(&self, msg: RestockReturn) -> Result<(), CatalogError> {
        let restocked = retry_on_contention("restock a return", || async {
            let mut tx = self.pool.begin().await?;
            let restocked =
                store::restock(&mut tx, msg.return_id, msg.reservation_id, &msg.lines).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(restocked)
        })
        .await?;
        if let Some(moved) = restocked {
            // More is available: cached listings and views must see it.
            self.invalidate_products(&moved).await;
        }
        Ok(())
    }

    pub async fn release_unshipped(&self, msg: ReleaseUnshipped) -> Result<(), CatalogError> {
        let released = retry_on_contention("release unshipped stock", || async {
            let mut tx = self.pool.begin().await?;
            let released = crate::store::catalog::release_unshipped(&mut tx, msg.0).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(released)
        })
        .await?;
        if let Some(moved) = released {
            // Units went back on sale: cached availability is stale.
            self.invalidate_products(&moved).await;
        }
        Ok(())
    }

    pub async fn reservation_holdings(
        &self,
        msg: GetReservationHoldings,
    ) -> Result<ReservationHoldings, CatalogError> {
        let (status, allocations) = store::holdings(&self.pool, msg.0).await?;
        Ok(ReservationHoldings {
            sold_at_payment: status.as_ref().is_some_and(|s| s.1),
            status: status.map(|s| s.0),
            allocations,
        })
    }

    pub async fn ship_reservation(&self, msg: ShipReservation) -> Result<(), CatalogError> {
        let shipped = retry_on_contention("ship stock", || async {
            let mut tx = self.pool.begin().await?;
            let shipped = store::ship(
                &mut tx,
                msg.shipment_id,
                msg.reservation_id,
                msg.location_id,
                &msg.lines,
            )
            .await?;
            if matches!(shipped, Shipped::Now | Shipped::SoldAtPayment) {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok::<_, sqlx::Error>(shipped)
        })
        .await?;
        match shipped {
            // Held units became sold ones: what is available is unchanged,
            // so no cached view goes stale.
            Shipped::Now | Shipped::Before | Shipped::SoldAtPayment => Ok(()),
            Shipped::NotCommitted(status) => Err(CatalogError::ReservationNotHeld(status)),
            Shipped::NotHeld => Err(CatalogError::ReservationNotHeld(
                "not holding these units at that location".into(),
            )),
        }
    }
}
