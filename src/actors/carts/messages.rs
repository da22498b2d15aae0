//! Messages the carts actor answers. Owners arrive resolved by the edge:
//! a customer by their authenticated id, a guest cart by its id and the
//! token the client sent (checked here).

use actix::Message;
use serde::Serialize;
use uuid::Uuid;

use super::error::CartsError;
use crate::actors::orders::messages::OrderView;
use crate::domain::auth::Principal;
use crate::domain::carts::CartView;
use crate::domain::catalog::stock::StockLine;
use crate::domain::idempotency::KeyLease;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::pagination::PageRequest;
use crate::domain::promotions::{Promotion, PromotionPatch};
pub use crate::store::promotions::PromotionRow;

/// Whose cart a message is about.
#[derive(Debug, Clone)]
pub enum CartOwner {
    /// The customer's own cart, made on first use.
    User(Uuid),
    /// A guest cart, opened by its token.
    Guest { id: Uuid, token: String },
}

/// A new guest cart's id and secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GuestCart {
    pub id: Uuid,
    /// Send it as `X-Cart-Token` with every request on this cart.
    pub token: String,
}

/// The cart, priced now.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct GetCart(pub CartOwner);

/// Adds `quantity` of a product (to its line, if the cart has one).
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct AddItem {
    pub owner: CartOwner,
    pub product_id: Uuid,
    pub quantity: i32,
}

/// Sets a line's quantity; 0 removes it.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct SetItemQuantity {
    pub owner: CartOwner,
    pub product_id: Uuid,
    pub quantity: i32,
}

/// Removes a line.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct RemoveItem {
    pub owner: CartOwner,
    pub product_id: Uuid,
}

/// Empties the cart.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct ClearCart(pub CartOwner);

/// Makes a guest cart.
#[derive(Debug, Message)]
#[rtype(result = "Result<GuestCart, CartsError>")]
pub struct CreateGuestCart;

/// Deletes a guest cart.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CartsError>")]
pub struct DeleteGuestCart {
    pub id: Uuid,
    pub token: String,
}

/// Moves a guest cart's lines into the customer's cart and retires it.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct MergeGuestCart {
    pub user_id: Uuid,
    pub cart_id: Uuid,
    pub token: String,
}

/// Deletes abandoned guest carts (a timer sends it); how many.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, CartsError>")]
pub struct SweepGuestCarts;

/// Create a promotion (the rule is validated here).
#[derive(Debug, Message)]
#[rtype(result = "Result<PromotionRow, CartsError>")]
pub struct CreatePromotion(pub Promotion);

/// One page of promotions, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<PromotionRow>, i64), CartsError>")]
pub struct ListPromotions(pub PageRequest);

/// One promotion.
#[derive(Debug, Message)]
#[rtype(result = "Result<PromotionRow, CartsError>")]
pub struct GetPromotion(pub Uuid);

/// Change a promotion: the patch edits its current rule, which is then
/// validated whole.
#[derive(Debug, Message)]
#[rtype(result = "Result<PromotionRow, CartsError>")]
pub struct UpdatePromotion {
    pub id: Uuid,
    pub patch: PromotionPatch,
}

/// Delete a promotion.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CartsError>")]
pub struct DeletePromotion(pub Uuid);

/// Put a discount code on the customer's cart, if it applies now.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct ApplyPromotion {
    pub user_id: Uuid,
    pub code: String,
}

/// Take the discount code off the customer's cart.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct RemovePromotion {
    pub user_id: Uuid,
}

/// Turn the customer's cart into an order, exactly once.
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderView, CartsError>")]
pub struct Checkout {
    pub user: Principal,
    pub shipping_address: ShippingAddress,
    /// What the customer expects to pay; the order is refused if its total
    /// differs.
    pub expected_total: Option<i64>,
    /// The request's idempotency key, bound to the order where it is
    /// written.
    pub lease: Option<KeyLease>,
}

/// The customer's checkout that placed `order_id` is over (its answer was
/// lost to a timeout and recovered by its Idempotency-Key): take the
/// order's lines (`taken`) out of the cart if it is still claimed for that
/// order.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CartsError>")]
pub struct FinishCheckout {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub taken: Vec<StockLine>,
}

/// Give back the uses of orders cancelled or expired unpaid (and of
/// checkouts that placed nothing), settle those of paid orders; a timer
/// sends it. `min_age_secs` leaves running checkouts alone.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, CartsError>")]
pub struct ReconcilePromotionUses {
    pub min_age_secs: i64,
}

/// The lines an order took from its cart.
pub fn taken_lines(order: &OrderView) -> Vec<StockLine> {
    order
        .items
        .iter()
        .map(|i| StockLine {
            product_id: i.product_id,
            quantity: i.quantity,
        })
        .collect()
}
