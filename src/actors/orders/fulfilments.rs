//! Fulfilments: the parcels an order ships in. The messages, their views,
//! and the work behind them: every change locks the order, checks the
//! parcel's and the order's status machines, writes the parcel and the
//! status that follows from the parcels in one transaction, and then asks
//! the catalog to sell what shipped (retried by the sweep until it does).

use std::collections::HashMap;

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::OrdersError;
use super::handlers::{acting, admin_only, catalog_error, OrdersService};
use crate::actors::catalog::shipments::{
    GetReservationHoldings, ReservationHoldings, ShipReservation,
};
use crate::actors::catalog::CatalogError;
use crate::actors::runtime::CallError;
use crate::domain::auth::Principal;
use crate::domain::orders::fulfilment::{
    check_quantities, choose_location, split_by_location, transition, FulfilmentAction,
    FulfilmentRefusal, FulfilmentStatus, HeldAt, LineLeft, Request, TrackingChange,
};
use crate::domain::orders::guest::OrderViewer;
use crate::domain::orders::status::{
    check_fulfilment, fulfilment_status, transition as order_transition, Action, Actor,
};
use crate::domain::validation::ValidationErrors;
use crate::store::fulfilments::{
    self as store, FulfilmentLineRow, FulfilmentRow, LineCountRow, NewFulfilment,
};
use crate::store::orders::OrderRow;

/// Shipped parcels whose sale the catalog has not confirmed are retried
/// after this long.
const UNSOLD_GRACE_SECS: f64 = 10.0;
/// Parcels retried per sweep.
const UNSOLD_BATCH: i64 = 200;

/// Units of one order line in a parcel, as clients see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FulfilmentLineView {
    pub line_id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
}

/// A parcel of an order, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FulfilmentView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: FulfilmentStatus,
    /// The stock location it leaves from (`null` for orders shipped
    /// before fulfilments existed).
    pub location_id: Option<Uuid>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub lines: Vec<FulfilmentLineView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A parcel's view from its row and lines.
pub fn fulfilment_view(row: FulfilmentRow, lines: Vec<FulfilmentLineRow>) -> FulfilmentView {
    FulfilmentView {
        id: row.id,
        order_id: row.order_id,
        status: row.status,
        location_id: row.location_id,
        carrier: row.carrier,
        tracking_number: row.tracking_number,
        tracking_url: row.tracking_url,
        lines: lines
            .into_iter()
            .map(|l| FulfilmentLineView {
                line_id: l.line_id,
                variant_id: l.variant_id,
                quantity: l.quantity,
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        shipped_at: row.shipped_at,
        delivered_at: row.delivered_at,
        cancelled_at: row.cancelled_at,
    }
}

/// Which order line a parcel takes units of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRef {
    /// By the line's id.
    Line(Uuid),
    /// By the variant the line sold (an order has one line per variant).
    Variant(Uuid),
}

/// Units of one line asked for a parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParcelLine {
    pub line: LineRef,
    pub quantity: i32,
}

/// A parcel's carrier and tracking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracking {
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
}

/// Create a pending parcel of some units of a paid order (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<FulfilmentView, OrdersError>")]
pub struct CreateFulfilment {
    pub order_id: Uuid,
    pub by: Principal,
    pub lines: Vec<ParcelLine>,
    /// Where it leaves from; the first location (by priority) holding
    /// every unit of it when `None`.
    pub location_id: Option<Uuid>,
    pub tracking: Tracking,
}

/// An order's parcels, oldest first, if the viewer may see the order.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<FulfilmentView>, OrdersError>")]
pub struct ListFulfilments {
    pub order_id: Uuid,
    pub viewer: OrderViewer,
}

/// Change a parcel's carrier and tracking (admins; not once cancelled).
#[derive(Debug, Message)]
#[rtype(result = "Result<FulfilmentView, OrdersError>")]
pub struct UpdateFulfilment {
    pub order_id: Uuid,
    pub fulfilment_id: Uuid,
    pub by: Principal,
    pub change: TrackingChange,
}

/// Ship, deliver or cancel one parcel (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<FulfilmentView, OrdersError>")]
pub struct ActOnFulfilment {
    pub order_id: Uuid,
    pub fulfilment_id: Uuid,
    pub by: Principal,
    pub action: FulfilmentAction,
}

/// What one location holds for each line and no parcel from there has
/// taken, in the shop's order of preference.
fn held_at(
    holdings: &ReservationHoldings,
    lines: &[LineCountRow],
    taken: &[(Uuid, Uuid, i64)],
) -> Vec<HeldAt> {
    let line_of: HashMap<Uuid, Uuid> = lines.iter().map(|l| (l.variant_id, l.id)).collect();
    holdings
        .allocations
        .iter()
        .filter_map(|a| {
            let line_id = *line_of.get(&a.variant_id)?;
            let used: i64 = taken
                .iter()
                .filter(|t| t.0 == a.location_id && t.1 == line_id)
                .map(|t| t.2)
                .sum();
            Some(HeldAt {
                location_id: a.location_id,
                line_id,
                free: i64::from(a.quantity) - used,
            })
        })
        .collect()
}

/// Orders whose stock was sold when paid, before allocations were
/// recorded, ship from wherever the admin says (or nowhere recorded).
fn location_free(holdings: &ReservationHoldings) -> bool {
    holdings.sold_at_payment && holdings.allocations.is_empty()
}

fn left_of(lines: &[LineCountRow]) -> Vec<LineLeft> {
    lines
        .iter()
        .map(|l| LineLeft {
            line_id: l.id,
            variant_id: l.variant_id,
            ordered: i64::from(l.quantity),
            fulfilled: i64::from(l.fulfilled_quantity),
        })
        .collect()
}

fn parcel_lines(request: &Request) -> Vec<(Uuid, i32)> {
    request
        .iter()
        .map(|(line, q)| (*line, i32::try_from(*q).unwrap_or(i32::MAX)))
        .collect()
}

impl OrdersService {
    /// What the order's reservation holds where, from the catalog.
    async fn holdings(&self, order_id: Uuid) -> Result<ReservationHoldings, OrdersError> {
        self.catalog()
            .call(GetReservationHoldings(order_id))
            .await
            .map_err(catalog_error)
    }

    /// Brings the order's status in line with its parcels, with a history
    /// entry when it changes. The order is locked in `tx`.
    async fn follow_parcels(
        &self,
        tx: &mut sqlx::PgConnection,
        order: &OrderRow,
        actor: &str,
        reason: &str,
    ) -> Result<(), OrdersError> {
        use crate::domain::orders::status::OrderStatus as S;
        // Only these follow their parcels: a refund in flight or done keeps
        // its status whatever happens to a pending parcel.
        if !matches!(
            order.status,
            S::Paid | S::PartiallyFulfilled | S::Fulfilled | S::Delivered
        ) {
            return Ok(());
        }
        let next = fulfilment_status(store::progress(tx, order.id).await?);
        if next == order.status {
            return Ok(());
        }
        let from = order.status.as_str();
        crate::store::orders::set_status(tx, order.id, from, next.as_str(), None)
            .await?
            .ok_or_else(|| anyhow::anyhow!("locked order changed"))?;
        crate::store::orders::insert_history(
            tx,
            order.id,
            Some(from),
            next.as_str(),
            actor,
            reason,
        )
        .await?;
        Ok(())
    }

    async fn parcel_view(&self, order_id: Uuid, id: Uuid) -> Result<FulfilmentView, OrdersError> {
        let mut all = store::fulfilments_of(self.pool(), &[order_id]).await?;
        all.remove(&order_id)
            .and_then(|parcels| parcels.into_iter().find(|(row, _)| row.id == id))
            .map(|(row, lines)| fulfilment_view(row, lines))
            .ok_or(OrdersError::FulfilmentNotFound)
    }

    pub async fn create_fulfilment(
        &self,
        msg: CreateFulfilment,
    ) -> Result<FulfilmentView, OrdersError> {
        admin_only(&msg.by, Action::Ship)?;
        let holdings = self.holdings(msg.order_id).await?;
        let mut tx = self.pool().begin().await?;
        let order = store::lock_order(&mut tx, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        check_fulfilment(order.status, Action::Ship, Actor::Admin)?;
        let lines = store::line_counts(&mut tx, order.id).await?;
        let mut errors = ValidationErrors::new();
        let mut requested = Vec::new();
        for (index, asked) in msg.lines.iter().enumerate() {
            let found = lines.iter().find(|l| match asked.line {
                LineRef::Line(id) => l.id == id,
                LineRef::Variant(id) => l.variant_id == id,
            });
            match (found, asked.line) {
                (Some(line), _) => requested.push((line.id, i64::from(asked.quantity))),
                (None, LineRef::Line(_)) => errors.add(
                    &format!("lines.{index}.line_id"),
                    "unknown",
                    "no such line in this order",
                ),
                (None, LineRef::Variant(_)) => errors.add(
                    &format!("lines.{index}.variant_id"),
                    "unknown",
                    "this order has no line of this variant",
                ),
            }
        }
        errors.into_result().map_err(OrdersError::Validation)?;
        let request = check_quantities(&left_of(&lines), &requested)?;
        let location = if location_free(&holdings) {
            msg.location_id
        } else {
            let taken = store::taken_at_locations(&mut tx, order.id).await?;
            let held = held_at(&holdings, &lines, &taken);
            Some(choose_location(&held, &request, msg.location_id)?)
        };
        let (_, by) = acting(&msg.by);
        let id = Uuid::new_v4();
        let new = NewFulfilment {
            id,
            order_id: order.id,
            location_id: location,
            carrier: msg.tracking.carrier.as_deref(),
            tracking_number: msg.tracking.tracking_number.as_deref(),
            tracking_url: msg.tracking.tracking_url.as_deref(),
            created_by: &by,
        };
        if !store::insert_fulfilment(&mut tx, &new, &parcel_lines(&request)).await? {
            // The order is locked and the quantities were checked under the
            // lock: only a bug gets here. The row CHECK stands behind both.
            tx.rollback().await?;
            return Err(OrdersError::Unexpected(anyhow::anyhow!(
                "a checked fulfilment went past its lines"
            )));
        }
        tx.commit().await?;
        self.parcel_view(order.id, id).await
    }

    pub async fn list_fulfilments(
        &self,
        msg: ListFulfilments,
    ) -> Result<Vec<FulfilmentView>, OrdersError> {
        let mut conn = self.pool().acquire().await?;
        crate::store::orders::get_order(&mut conn, msg.order_id)
            .await?
            .filter(|o| msg.viewer.may_see(o.user_id))
            .ok_or(OrdersError::NotFound)?;
        drop(conn);
        let mut all = store::fulfilments_of(self.pool(), &[msg.order_id]).await?;
        Ok(all
            .remove(&msg.order_id)
            .unwrap_or_default()
            .into_iter()
            .map(|(row, lines)| fulfilment_view(row, lines))
            .collect())
    }

    pub async fn update_fulfilment(
        &self,
        msg: UpdateFulfilment,
    ) -> Result<FulfilmentView, OrdersError> {
        admin_only(&msg.by, Action::Ship)?;
        let mut tx = self.pool().begin().await?;
        store::lock_order(&mut tx, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        let parcel = store::lock_fulfilment(&mut tx, msg.order_id, msg.fulfilment_id)
            .await?
            .ok_or(OrdersError::FulfilmentNotFound)?;
        if parcel.status == FulfilmentStatus::Cancelled {
            return Err(FulfilmentRefusal::InvalidState {
                action: FulfilmentAction::Ship,
                current: parcel.status,
            }
            .into());
        }
        store::set_tracking(&mut tx, parcel.id, &msg.change).await?;
        tx.commit().await?;
        self.parcel_view(msg.order_id, msg.fulfilment_id).await
    }

    pub async fn act_on_fulfilment(
        &self,
        msg: ActOnFulfilment,
    ) -> Result<FulfilmentView, OrdersError> {
        let mut tx = self.pool().begin().await?;
        let order = store::lock_order(&mut tx, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        let (actor, name) = acting(&msg.by);
        // Cancelling a pending parcel is open while the order can make
        // parcels; shipping needs units left, delivering something shipped.
        let order_action = match msg.action {
            FulfilmentAction::Ship | FulfilmentAction::Cancel => Action::Ship,
            FulfilmentAction::Deliver => Action::Deliver,
        };
        let parcel = store::lock_fulfilment(&mut tx, msg.order_id, msg.fulfilment_id)
            .await?
            .ok_or(OrdersError::FulfilmentNotFound)?;
        if msg.action != FulfilmentAction::Cancel || actor != Actor::Admin {
            check_fulfilment(order.status, order_action, actor)?;
        }
        let next = transition(parcel.status, msg.action)?;
        store::set_fulfilment_status(&mut tx, parcel.id, next).await?;
        let reason = format!("fulfilment {} {}", parcel.id, next.as_str());
        self.follow_parcels(&mut tx, &order, &name, &reason).await?;
        tx.commit().await?;
        if next == FulfilmentStatus::Shipped {
            self.sell_parcel(parcel.id, order.id, parcel.location_id)
                .await?;
        }
        self.parcel_view(msg.order_id, msg.fulfilment_id).await
    }

    /// The whole-order shortcut of `POST /orders/{id}/ship/`: ships every
    /// pending parcel and one new parcel per location for whatever is left.
    pub(super) async fn ship_whole_order(
        &self,
        order: OrderRow,
        by: &Principal,
        reason: &str,
    ) -> Result<OrderRow, OrdersError> {
        let (actor, name) = acting(by);
        // The permission and status check before the catalog is asked.
        order_transition(order.status, Action::Ship, actor)?;
        let holdings = self.holdings(order.id).await?;
        let mut tx = self.pool().begin().await?;
        let order = store::lock_order(&mut tx, order.id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        order_transition(order.status, Action::Ship, actor)?;
        let mut shipped: Vec<(Uuid, Option<Uuid>)> = Vec::new();
        for id in store::fulfilment_ids_in(&mut tx, order.id, FulfilmentStatus::Pending).await? {
            let row = store::set_fulfilment_status(&mut tx, id, FulfilmentStatus::Shipped).await?;
            shipped.push((row.id, row.location_id));
        }
        let lines = store::line_counts(&mut tx, order.id).await?;
        let left: Request = lines
            .iter()
            .filter(|l| l.quantity > l.fulfilled_quantity)
            .map(|l| (l.id, i64::from(l.quantity - l.fulfilled_quantity)))
            .collect();
        if !left.is_empty() {
            let parcels: Vec<(Option<Uuid>, Request)> = if location_free(&holdings) {
                vec![(None, left)]
            } else {
                let taken = store::taken_at_locations(&mut tx, order.id).await?;
                split_by_location(&held_at(&holdings, &lines, &taken), &left)?
                    .into_iter()
                    .map(|(location, parcel)| (Some(location), parcel))
                    .collect()
            };
            for (location, parcel) in parcels {
                let new = NewFulfilment {
                    id: Uuid::new_v4(),
                    order_id: order.id,
                    location_id: location,
                    carrier: None,
                    tracking_number: None,
                    tracking_url: None,
                    created_by: &name,
                };
                if !store::insert_fulfilment(&mut tx, &new, &parcel_lines(&parcel)).await? {
                    tx.rollback().await?;
                    return Err(OrdersError::Unexpected(anyhow::anyhow!(
                        "what was left of the lines went past them"
                    )));
                }
                store::set_fulfilment_status(&mut tx, new.id, FulfilmentStatus::Shipped).await?;
                shipped.push((new.id, location));
            }
        }
        self.follow_parcels(&mut tx, &order, &name, reason).await?;
        tx.commit().await?;
        for (id, location) in shipped {
            self.sell_parcel(id, order.id, location).await?;
        }
        self.order_row(order.id).await
    }

    /// The whole-order shortcut of `POST /orders/{id}/deliver/`: every
    /// shipped parcel of a fulfilled order arrived.
    pub(super) async fn deliver_whole_order(
        &self,
        order: OrderRow,
        by: &Principal,
        reason: &str,
    ) -> Result<OrderRow, OrdersError> {
        let (actor, name) = acting(by);
        let mut tx = self.pool().begin().await?;
        let order = store::lock_order(&mut tx, order.id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        order_transition(order.status, Action::Deliver, actor)?;
        for id in store::fulfilment_ids_in(&mut tx, order.id, FulfilmentStatus::Shipped).await? {
            store::set_fulfilment_status(&mut tx, id, FulfilmentStatus::Delivered).await?;
        }
        self.follow_parcels(&mut tx, &order, &name, reason).await?;
        tx.commit().await?;
        self.order_row(order.id).await
    }

    /// An order's row as it is now.
    async fn order_row(&self, id: Uuid) -> Result<OrderRow, OrdersError> {
        let mut conn = self.pool().acquire().await?;
        crate::store::orders::get_order(&mut conn, id)
            .await?
            .ok_or(OrdersError::NotFound)
    }

    /// Tells the catalog a shipped parcel's units left the shelves, and
    /// records that it did. If the catalog cannot be reached now, the
    /// sweep retries; a paid order whose commit has not reached the
    /// catalog yet is committed first.
    pub(super) async fn sell_parcel(
        &self,
        id: Uuid,
        order_id: Uuid,
        location_id: Option<Uuid>,
    ) -> Result<(), OrdersError> {
        let lines = store::stock_lines(self.pool(), id).await?;
        let ship = || ShipReservation {
            reservation_id: order_id,
            shipment_id: id,
            location_id,
            lines: lines.clone(),
        };
        let mut sent = self.catalog().call(ship()).await;
        if matches!(&sent, Err(CallError::Domain(CatalogError::ReservationNotHeld(s))) if s == "held")
        {
            self.commit_stock(order_id).await?;
            sent = self.catalog().call(ship()).await;
        }
        match sent {
            Ok(()) => {}
            Err(CallError::Domain(e)) if !e.is_unavailable() => {
                // Retrying cannot change the answer: recorded so it is not
                // retried forever, and logged for someone to look at.
                tracing::error!(fulfilment = %id, order = %order_id, error = %e, "shipped parcel's units were not held; check stock");
            }
            Err(e) => {
                tracing::warn!(fulfilment = %id, error = %e, "parcel's stock sale deferred to the sweep");
                return Ok(());
            }
        }
        store::mark_stock_shipped(self.pool(), id).await?;
        Ok(())
    }

    /// Retries the sale of shipped parcels the catalog has not confirmed.
    pub(super) async fn sell_unsold_parcels(&self) -> Result<(), OrdersError> {
        for (id, order_id, location) in
            store::unsold_fulfilments(self.pool(), UNSOLD_GRACE_SECS, UNSOLD_BATCH).await?
        {
            self.sell_parcel(id, order_id, location).await?;
        }
        Ok(())
    }
}

/// Each line's units in shipped or delivered parcels, by line id.
pub fn shipped_by_line(parcels: &[FulfilmentView]) -> HashMap<Uuid, i32> {
    let mut shipped: HashMap<Uuid, i32> = HashMap::new();
    for parcel in parcels.iter().filter(|p| p.status.has_shipped()) {
        for line in &parcel.lines {
            *shipped.entry(line.line_id).or_default() += line.quantity;
        }
    }
    shipped
}

impl From<FulfilmentRefusal> for OrdersError {
    fn from(r: FulfilmentRefusal) -> Self {
        OrdersError::Fulfilment(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_location_still_holds_is_its_allocation_less_the_parcels_from_there() {
        let (eu, us) = (Uuid::from_u128(10), Uuid::from_u128(20));
        let (v1, l1) = (Uuid::from_u128(1), Uuid::from_u128(101));
        let holdings = ReservationHoldings {
            status: Some("committed".into()),
            sold_at_payment: false,
            allocations: vec![
                crate::store::stock::HoldingRow {
                    variant_id: v1,
                    location_id: eu,
                    quantity: 2,
                    shipped: 0,
                },
                crate::store::stock::HoldingRow {
                    variant_id: v1,
                    location_id: us,
                    quantity: 3,
                    shipped: 1,
                },
            ],
        };
        let lines = [LineCountRow {
            id: l1,
            variant_id: v1,
            quantity: 5,
            fulfilled_quantity: 1,
        }];
        let held = held_at(&holdings, &lines, &[(us, l1, 1)]);
        assert_eq!(
            held,
            vec![
                HeldAt {
                    location_id: eu,
                    line_id: l1,
                    free: 2
                },
                HeldAt {
                    location_id: us,
                    line_id: l1,
                    free: 2
                }
            ]
        );
        assert!(!location_free(&holdings));
    }
}
