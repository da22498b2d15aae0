//! Messages the orders actor answers.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::OrdersError;
use crate::actors::idempotency::{KeyBinding, Keyed};
use crate::domain::auth::Principal;
use crate::domain::catalog::variant::OptionValues;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::orders::guest::{Buyer, OrderViewer};
use crate::domain::orders::pricing::OrderItem;
use crate::domain::orders::status::Action;
use crate::domain::pagination::PageRequest;
use crate::store::orders::{EventRow, HistoryRow, ItemRow, PurchaseRow};

/// A line of an order, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderLineView {
    /// The line's own id (fulfilments, refunds and returns name it).
    pub id: Uuid,
    pub product_id: Uuid,
    /// The variant sold; a product's default variant has the product's id.
    pub variant_id: Uuid,
    pub name: String,
    /// The variant's SKU when ordered (`null` on lines from before variants).
    pub sku: Option<String>,
    /// The variant's option values when ordered, `{}` for a default variant.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub options: OptionValues,
    pub unit_price: i64,
    pub quantity: i32,
    pub line_total: i64,
    /// This line's share of the order's discount.
    pub discount: i64,
    /// The line's tax rate at the destination, in basis points.
    pub tax_rate_bp: i32,
    /// Tax on `line_total - discount`, rounded half to even (included in
    /// it when the order's prices include tax).
    pub tax: i64,
    /// Units in fulfilments that are not cancelled (pending ones too).
    pub fulfilled_quantity: i32,
    /// Units in fulfilments that have shipped.
    pub shipped_quantity: i32,
    /// Units in returns that were not rejected or withdrawn.
    pub returned_quantity: i32,
}

impl From<ItemRow> for OrderLineView {
    fn from(r: ItemRow) -> Self {
        Self {
            id: r.id,
            fulfilled_quantity: r.fulfilled_quantity,
            returned_quantity: r.returned_quantity,
            shipped_quantity: 0,
            product_id: r.product_id,
            variant_id: r.variant_id,
            name: r.name,
            sku: r.sku,
            options: r.options.0,
            unit_price: r.unit_price,
            quantity: r.quantity,
            line_total: r.line_total,
            discount: r.discount,
            tax_rate_bp: r.tax_rate_bp,
            tax: r.tax,
        }
    }
}

/// One status change of an order, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StatusChangeView {
    pub from: Option<String>,
    pub to: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl From<HistoryRow> for StatusChangeView {
    fn from(r: HistoryRow) -> Self {
        Self {
            from: r.from,
            to: r.to,
            actor: r.actor,
            reason: r.reason,
            at: r.at,
        }
    }
}

/// An order as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    /// The customer's account; `null` for a guest order.
    pub user_id: Option<Uuid>,
    /// The email a guest order was placed with; `null` for a customer's.
    pub email: Option<String>,
    pub status: crate::domain::orders::status::OrderStatus,
    pub items: Vec<OrderLineView>,
    /// Sum of the lines, in minor units of `currency`.
    pub subtotal: i64,
    /// Taken off by `promotion_code`; the lines' `discount`s add up to it.
    pub discount: i64,
    /// What shipping costs (0 when nothing ships or the shop charges none).
    pub shipping: i64,
    /// Σ line tax + `shipping_tax`.
    pub tax: i64,
    /// Tax on shipping, at its method's class.
    pub shipping_tax: i64,
    /// Whether the prices (and so the lines and shipping) include `tax`.
    pub prices_include_tax: bool,
    /// The method charged, as quoted at checkout.
    pub shipping_method: Option<crate::domain::pricing::rules::MethodQuote>,
    /// What is paid: `subtotal - discount + shipping`, plus `tax` unless
    /// prices include it.
    pub total: i64,
    /// Money given back so far (partial refunds and full), in minor
    /// units of `currency`.
    pub refunded_amount: i64,
    /// `none`, `partially_refunded` or `refunded`: how much of `total`
    /// has gone back. `status` says where the goods are.
    pub refund_status: crate::domain::orders::status::RefundState,
    /// The discount code applied at checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_code: Option<String>,
    pub currency: String,
    pub shipping_address: ShippingAddress,
    /// The parcels the order ships in, oldest first, with their tracking.
    pub fulfilments: Vec<super::fulfilments::FulfilmentView>,
    pub history: Vec<StatusChangeView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Place an order: price it from catalog snapshots, reserve its stock, and
/// write it, releasing the reservation if the write fails.
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderView, OrdersError>")]
pub struct CreateOrder {
    /// The order's id when the caller chose it (a checkout records it
    /// before placing, so a crash cannot place two); new otherwise.
    pub order_id: Option<Uuid>,
    /// A customer, or a guest with their email.
    pub buyer: Buyer,
    /// As the client sent them (duplicates are merged).
    pub items: Vec<OrderItem>,
    pub shipping_address: ShippingAddress,
    /// The shipping method chosen (required when the shop ships and a line
    /// needs shipping).
    pub shipping_method_id: Option<Uuid>,
    /// The request's idempotency key, bound to the order (with the answer)
    /// in the order's own transaction.
    pub key: Option<KeyBinding<OrderView>>,
    /// A discount code to apply to the lines as priced now (its use is
    /// already counted by carts; its minimum and currency are checked
    /// again here, against these prices).
    pub promotion: Option<crate::domain::promotions::Promotion>,
    /// The total the customer was shown; a different total is refused
    /// (`TotalChanged`) before anything is written.
    pub expected_total: Option<i64>,
}

/// The status of each of these orders that exists (for carts, which
/// counts discount-code uses by order).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(Uuid, String)>, OrdersError>")]
pub struct GetOrderStatuses(pub Vec<Uuid>);

/// Place an order at most once per Idempotency-Key.
pub type CreateOrderOnce = Keyed<CreateOrder, OrderView, OrdersError>;

/// One order, if the viewer may see it (its owner, an admin, or for a
/// guest order whoever holds its token).
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderView, OrdersError>")]
pub struct GetOrder {
    pub id: Uuid,
    pub viewer: OrderViewer,
}

/// One page of orders, newest first. Customers see only their own, whatever
/// the filter says.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<OrderView>, i64), OrdersError>")]
pub struct ListOrders {
    pub viewer: Principal,
    pub page: PageRequest,
    pub user_id: Option<Uuid>,
    pub status: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Cancel an order on behalf of a user, or ship or deliver all of it
/// (the whole-order shortcuts over its parcels).
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderView, OrdersError>")]
pub struct TransitionOrder {
    pub id: Uuid,
    pub action: Action,
    pub by: Principal,
    pub reason: String,
}

/// From payments: the order is paid by `payment_id`. Idempotent for the
/// same payment; refused for another.
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderView, OrdersError>")]
pub struct MarkOrderPaid {
    pub order_id: Uuid,
    pub payment_id: String,
}

/// A payment outcome the orders service must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The order is paid (`pending → paid`).
    Succeeded,
    /// A refund of the order's payment began (`paid → refund_pending`).
    RefundStarted,
    /// The refund is done (`refund_pending → refunded`).
    RefundSucceeded,
    /// The refund was refused; the order is paid again.
    RefundFailed,
}

/// From the payments outbox: follow `outcome` of `payment_id`. Idempotent:
/// an outcome already applied answers the order's status as it is. The
/// relay only needs to know it was taken, so no view is read.
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::domain::orders::status::OrderStatus, OrdersError>")]
pub struct ApplyPaymentOutcome {
    pub order_id: Uuid,
    pub payment_id: String,
    pub outcome: PaymentOutcome,
}

/// From the payments outbox: a partial refund of `amount` of the order's
/// payment went through. Idempotent by `refund_id`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), OrdersError>")]
pub struct ApplyRefund {
    pub order_id: Uuid,
    pub refund_id: Uuid,
    pub amount: i64,
    /// The return it paid back, which becomes `refunded`.
    pub return_id: Option<Uuid>,
}

/// Expire overdue pending orders now and release their stock (the actor
/// also does this on a timer).
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, OrdersError>")]
pub struct ExpireOverdueOrders;

/// Purchased lines for the recommender: paid, (partially) fulfilled or delivered orders,
/// for `user_ids` (everyone when empty).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<PurchaseRow>, OrdersError>")]
pub struct GetPurchaseHistory {
    pub user_ids: Vec<Uuid>,
    pub limit: i64,
}

/// Outbox events (`order_paid`) after `after_id`, oldest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<EventRow>, OrdersError>")]
pub struct GetOrderEvents {
    pub after_id: i64,
    pub limit: i64,
}

/// For the recommender: products in `user_id`'s pending orders, which are
/// never recommended to them.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Uuid>, OrdersError>")]
pub struct GetPendingProducts {
    pub user_id: Uuid,
}
