//! Returns: a customer asks to send delivered units back; admins approve,
//! reject, receive (restocking each line at a location, or not) and close
//! them; payments marks them refunded. The messages, their view, and the
//! work behind them. Every change locks the order, as parcels do; the
//! restock follows by message to the catalog, retried by the sweep.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::OrdersError;
use super::handlers::{acting, admin_only, catalog_error, OrdersService};
use crate::actors::catalog::locations::GetStockLocation;
use crate::actors::catalog::shipments::RestockReturn;
use crate::actors::catalog::CatalogError;
use crate::actors::runtime::CallError;
use crate::domain::auth::Principal;
use crate::domain::orders::guest::OrderViewer;
use crate::domain::orders::returns::{
    check_receipt, check_return, transition, window_open, LineDelivered, Receipt, ReturnAction,
    ReturnRefusal, ReturnStatus,
};
use crate::domain::orders::status::Action;
use crate::domain::validation::ValidationErrors;
use crate::store::fulfilments::lock_order;
use crate::store::returns::{self as store, ReturnLineRow, ReturnRow};

/// Received returns whose restock is not confirmed are retried after this.
const UNSTOCKED_GRACE_SECS: f64 = 10.0;
/// Returns retried per sweep.
const UNSTOCKED_BATCH: i64 = 200;

/// One line of a return, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReturnLineView {
    pub line_id: Uuid,
    pub variant_id: Uuid,
    /// Units asked to return.
    pub quantity: i32,
    pub reason: String,
    /// Units that arrived (0 until received).
    pub received: i32,
    /// Units of those put back on a shelf.
    pub restocked: i32,
    /// Where they were put back.
    pub location_id: Option<Uuid>,
}

/// A return, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReturnView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: ReturnStatus,
    pub note: String,
    pub reject_reason: Option<String>,
    /// The refund that paid it back (`GET /payments/{id}/refunds/`).
    pub refund_id: Option<Uuid>,
    pub lines: Vec<ReturnLineView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
}

fn return_view(row: ReturnRow, lines: Vec<ReturnLineRow>) -> ReturnView {
    ReturnView {
        id: row.id,
        order_id: row.order_id,
        status: row.status,
        note: row.note,
        reject_reason: row.reject_reason,
        refund_id: row.refund_id,
        lines: lines
            .into_iter()
            .map(|l| ReturnLineView {
                line_id: l.line_id,
                variant_id: l.variant_id,
                quantity: l.quantity,
                reason: l.reason,
                received: l.received,
                restocked: l.restocked,
                location_id: l.location_id,
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        received_at: row.received_at,
    }
}

/// Ask to return delivered units of an order (its owner, or an admin for
/// them).
#[derive(Debug, Message)]
#[rtype(result = "Result<ReturnView, OrdersError>")]
pub struct CreateReturn {
    pub order_id: Uuid,
    pub by: Principal,
    /// (line, units, reason).
    pub lines: Vec<(Uuid, i32, String)>,
    pub note: String,
}

/// An order's returns, oldest first, if the viewer may see the order.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ReturnView>, OrdersError>")]
pub struct ListReturns {
    pub order_id: Uuid,
    pub viewer: Principal,
}

/// What an admin decides about a return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnDecision {
    Approve,
    Reject { reason: String },
    Close,
}

/// Approve, reject or close a return (admins).
#[derive(Debug, Message)]
#[rtype(result = "Result<ReturnView, OrdersError>")]
pub struct DecideReturn {
    pub order_id: Uuid,
    pub return_id: Uuid,
    pub by: Principal,
    pub decision: ReturnDecision,
}

/// What arrived of one line of a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedLine {
    pub line_id: Uuid,
    pub quantity: i32,
    /// Back on a shelf (`false`: damaged, not for sale).
    pub restock: bool,
    /// Which shelf; default: where the line's last delivered parcel left.
    pub location_id: Option<Uuid>,
}

/// Record what arrived of an approved return (admins); lines not named
/// arrived with nothing.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReturnView, OrdersError>")]
pub struct ReceiveReturn {
    pub order_id: Uuid,
    pub return_id: Uuid,
    pub by: Principal,
    pub lines: Vec<ReceivedLine>,
}

/// One return, for payments to refund it (any viewer an admin is).
#[derive(Debug, Message)]
#[rtype(result = "Result<ReturnView, OrdersError>")]
pub struct GetReturn {
    pub order_id: Uuid,
    pub return_id: Uuid,
}

/// Marks a received return refunded by `refund_id`, in the caller's
/// transaction (the order locked). A return refunded before by it is left
/// as it is; one that is no longer received (closed meanwhile) keeps its
/// status, and the money stands on the order.
pub(super) async fn refunded_in(
    tx: &mut sqlx::PgConnection,
    order_id: Uuid,
    return_id: Uuid,
    refund_id: Uuid,
) -> Result<(), OrdersError> {
    let Some(row) = store::lock_return(tx, order_id, return_id).await? else {
        return Ok(());
    };
    match transition(row.status, ReturnAction::Refund) {
        Ok(next) => store::set_status(tx, row.id, next, None, Some(refund_id)).await?,
        Err(_) => {
            tracing::warn!(r#return = %return_id, status = row.status.as_str(), "a refund of a return that is not received");
        }
    }
    Ok(())
}

impl From<ReturnRefusal> for OrdersError {
    fn from(r: ReturnRefusal) -> Self {
        OrdersError::Return(r)
    }
}

impl OrdersService {
    async fn return_view_of(&self, order_id: Uuid, id: Uuid) -> Result<ReturnView, OrdersError> {
        store::returns_of(self.pool(), order_id)
            .await?
            .into_iter()
            .find(|(r, _)| r.id == id)
            .map(|(r, lines)| return_view(r, lines))
            .ok_or(OrdersError::ReturnNotFound)
    }

    pub async fn create_return(&self, msg: CreateReturn) -> Result<ReturnView, OrdersError> {
        let mut tx = self.pool().begin().await?;
        let order = lock_order(&mut tx, msg.order_id)
            .await?
            .filter(|o| OrderViewer::User(msg.by).may_see(o.user_id))
            .ok_or(OrdersError::NotFound)?;
        let (lines, delivered_at) = store::delivered(&mut tx, order.id).await?;
        if !window_open(delivered_at, Utc::now(), self.return_window_days()) {
            return Err(ReturnRefusal::WindowClosed {
                days: self.return_window_days(),
            }
            .into());
        }
        let mut errors = ValidationErrors::new();
        for (index, (line_id, _, _)) in msg.lines.iter().enumerate() {
            if !lines.iter().any(|l| l.id == *line_id) {
                errors.add(
                    &format!("lines.{index}.line_id"),
                    "unknown",
                    "no such line in this order",
                );
            }
        }
        errors.into_result().map_err(OrdersError::Validation)?;
        let left: Vec<LineDelivered> = lines
            .iter()
            .map(|l| LineDelivered {
                line_id: l.id,
                delivered: l.delivered,
                returned: i64::from(l.returned_quantity),
            })
            .collect();
        let asked: Vec<(Uuid, i64)> = msg
            .lines
            .iter()
            .map(|(line, units, _)| (*line, i64::from(*units)))
            .collect();
        let merged = check_return(&left, &asked)?;
        let rows: Vec<(Uuid, i32, String)> = merged
            .iter()
            .map(|(line, units)| {
                let reason = msg
                    .lines
                    .iter()
                    .find(|l| l.0 == *line)
                    .map(|l| l.2.clone())
                    .unwrap_or_default();
                (*line, i32::try_from(*units).unwrap_or(i32::MAX), reason)
            })
            .collect();
        let (_, by) = acting(&msg.by);
        let id = Uuid::new_v4();
        if !store::insert_return(&mut tx, id, order.id, &msg.note, &by, &rows).await? {
            tx.rollback().await?;
            return Err(OrdersError::Unexpected(anyhow::anyhow!(
                "a checked return went past its lines"
            )));
        }
        tx.commit().await?;
        self.return_view_of(order.id, id).await
    }

    pub async fn list_returns(&self, msg: ListReturns) -> Result<Vec<ReturnView>, OrdersError> {
        let mut conn = self.pool().acquire().await?;
        crate::store::orders::get_order(&mut conn, msg.order_id)
            .await?
            .filter(|o| OrderViewer::User(msg.viewer).may_see(o.user_id))
            .ok_or(OrdersError::NotFound)?;
        drop(conn);
        Ok(store::returns_of(self.pool(), msg.order_id)
            .await?
            .into_iter()
            .map(|(r, lines)| return_view(r, lines))
            .collect())
    }

    pub async fn decide_return(&self, msg: DecideReturn) -> Result<ReturnView, OrdersError> {
        admin_only(&msg.by, Action::Ship)?;
        let mut tx = self.pool().begin().await?;
        lock_order(&mut tx, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        let row = store::lock_return(&mut tx, msg.order_id, msg.return_id)
            .await?
            .ok_or(OrdersError::ReturnNotFound)?;
        let (action, reason) = match &msg.decision {
            ReturnDecision::Approve => (ReturnAction::Approve, None),
            ReturnDecision::Reject { reason } => (ReturnAction::Reject, Some(reason.as_str())),
            ReturnDecision::Close => (ReturnAction::Close, None),
        };
        let next = transition(row.status, action)?;
        // Units that will never arrive stop counting as returned.
        if matches!(next, ReturnStatus::Rejected | ReturnStatus::Closed)
            && row.status != ReturnStatus::Received
        {
            let lines = store::lines_of(&mut tx, row.id).await?;
            let back: Vec<(Uuid, i32)> = lines.iter().map(|l| (l.line_id, l.quantity)).collect();
            store::uncount(&mut tx, &back).await?;
        }
        store::set_status(&mut tx, row.id, next, reason, None).await?;
        tx.commit().await?;
        self.return_view_of(msg.order_id, msg.return_id).await
    }

    pub async fn receive_return(&self, msg: ReceiveReturn) -> Result<ReturnView, OrdersError> {
        admin_only(&msg.by, Action::Ship)?;
        // Named locations must exist: asked before the lock.
        let mut named: Vec<Uuid> = msg.lines.iter().filter_map(|l| l.location_id).collect();
        named.sort_unstable();
        named.dedup();
        for location in named {
            match self.catalog().call(GetStockLocation(location)).await {
                Ok(_) => {}
                Err(CallError::Domain(CatalogError::LocationNotFound)) => {
                    let index = msg
                        .lines
                        .iter()
                        .position(|l| l.location_id == Some(location))
                        .unwrap_or(0);
                    return Err(OrdersError::Validation(ValidationErrors::single(
                        &format!("lines.{index}.location_id"),
                        "unknown",
                        "no such stock location",
                    )));
                }
                Err(e) => return Err(catalog_error(e)),
            }
        }
        let mut tx = self.pool().begin().await?;
        lock_order(&mut tx, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        let row = store::lock_return(&mut tx, msg.order_id, msg.return_id)
            .await?
            .ok_or(OrdersError::ReturnNotFound)?;
        let next = transition(row.status, ReturnAction::Receive)?;
        let lines = store::lines_of(&mut tx, row.id).await?;
        let asked: Vec<(Uuid, i64)> = lines
            .iter()
            .map(|l| (l.line_id, i64::from(l.quantity)))
            .collect();
        let receipt: Vec<Receipt> = msg
            .lines
            .iter()
            .map(|l| Receipt {
                line_id: l.line_id,
                received: i64::from(l.quantity),
                restock: l.restock,
            })
            .collect();
        let checked = check_receipt(&asked, &receipt)?;
        let (delivered, _) = store::delivered(&mut tx, row.order_id).await?;
        let mut errors = ValidationErrors::new();
        let mut recorded = Vec::new();
        let mut never_came = Vec::new();
        for (line_id, received, restocked) in checked {
            let named = msg.lines.iter().position(|l| l.line_id == line_id);
            let location = named.and_then(|i| msg.lines[i].location_id).or_else(|| {
                delivered
                    .iter()
                    .find(|d| d.id == line_id)
                    .and_then(|d| d.last_location)
            });
            if restocked > 0 && location.is_none() {
                errors.add(
                    &format!("lines.{}.location_id", named.unwrap_or(0)),
                    "required",
                    "name the stock location the units go back to",
                );
            }
            let asked_units = asked.iter().find(|a| a.0 == line_id).map_or(0, |a| a.1);
            if asked_units > received {
                never_came.push((line_id, i32::try_from(asked_units - received).unwrap_or(0)));
            }
            recorded.push((
                line_id,
                i32::try_from(received).unwrap_or(0),
                i32::try_from(restocked).unwrap_or(0),
                location.filter(|_| restocked > 0),
            ));
        }
        errors.into_result().map_err(OrdersError::Validation)?;
        store::record_receipt(&mut tx, row.id, &recorded).await?;
        store::uncount(&mut tx, &never_came).await?;
        store::set_status(&mut tx, row.id, next, None, None).await?;
        tx.commit().await?;
        self.restock(row.id, row.order_id).await?;
        self.return_view_of(msg.order_id, msg.return_id).await
    }

    /// Tells the catalog a received return's restocked units are back on
    /// their shelves, and records that it did; the sweep retries if the
    /// catalog cannot answer now.
    pub(super) async fn restock(&self, id: Uuid, order_id: Uuid) -> Result<(), OrdersError> {
        let lines = store::restock_lines(self.pool(), id).await?;
        if !lines.is_empty() {
            let sent = self
                .catalog()
                .call(RestockReturn {
                    return_id: id,
                    reservation_id: order_id,
                    lines,
                })
                .await;
            match sent {
                Ok(()) => {}
                Err(CallError::Domain(e)) if !e.is_unavailable() => {
                    tracing::error!(r#return = %id, error = %e, "a return's restock was refused; check stock");
                }
                Err(e) => {
                    tracing::warn!(r#return = %id, error = %e, "a return's restock deferred to the sweep");
                    return Ok(());
                }
            }
        }
        store::mark_stock_returned(self.pool(), id).await?;
        Ok(())
    }

    /// Retries the restock of received returns the catalog has not
    /// confirmed.
    pub(super) async fn restock_unstocked_returns(&self) -> Result<(), OrdersError> {
        for (id, order_id) in
            store::unstocked_returns(self.pool(), UNSTOCKED_GRACE_SECS, UNSTOCKED_BATCH).await?
        {
            self.restock(id, order_id).await?;
        }
        Ok(())
    }

    pub async fn get_return(&self, msg: GetReturn) -> Result<ReturnView, OrdersError> {
        self.return_view_of(msg.order_id, msg.return_id).await
    }
}
