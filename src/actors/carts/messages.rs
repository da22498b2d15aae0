//! Messages the carts actor answers about carts and checkout (its
//! promotion messages are in `promotions.rs`). Owners arrive resolved by the edge:
//! a customer by their authenticated id, a guest cart by its id and the
//! token the client sent (checked here).

use actix::Message;
use serde::Serialize;
use uuid::Uuid;

use super::error::CartsError;
use crate::actors::idempotency::{KeyBinding, Keyed};
use crate::actors::orders::messages::OrderView;
use crate::domain::auth::Principal;
use crate::domain::carts::CartView;
use crate::domain::catalog::stock::StockLine;
use crate::domain::orders::address::ShippingAddress;

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

/// Adds `quantity` of a variant (to its line, if the cart has one).
/// `item_id` names a variant, or a product with one variant.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct AddItem {
    pub owner: CartOwner,
    pub item_id: Uuid,
    /// Whether the client named it with `variant_id` (else `product_id`).
    pub by_variant: bool,
    pub quantity: i32,
}

/// Sets a line's quantity; 0 removes it.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct SetItemQuantity {
    pub owner: CartOwner,
    /// The line's variant (or a product with one variant).
    pub item_id: Uuid,
    pub quantity: i32,
}

/// Removes a line.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct RemoveItem {
    pub owner: CartOwner,
    /// The line's variant (or a product with one variant).
    pub item_id: Uuid,
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

/// Who checks out, and so which cart becomes the order and whose the
/// order is.
#[derive(Debug, Clone)]
pub enum Shopper {
    /// A customer, with their own cart; the order is theirs.
    Customer(Principal),
    /// A guest cart, opened by its token (checked here); the order belongs
    /// to no user and records `email` (normalised).
    Guest {
        cart_id: Uuid,
        token: String,
        email: String,
    },
}

/// Turn the shopper's cart into an order, exactly once.
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderView, CartsError>")]
pub struct Checkout {
    pub shopper: Shopper,
    /// Where the order goes; `None`: the cart's chosen address.
    pub shipping_address: Option<ShippingAddress>,
    /// The method; `None`: the cart's chosen method, if any.
    pub shipping_method_id: Option<Uuid>,
    /// What the customer expects to pay; the order is refused if its total
    /// differs.
    pub expected_total: Option<i64>,
    /// The request's idempotency key (kept by orders), bound to the order
    /// where it is written.
    pub key: Option<KeyBinding<OrderView>>,
}

/// Check out at most once per Idempotency-Key. The keys live with the
/// orders they bind, in the orders database: carts claims and answers them
/// through orders, so the edge sends this one message.
pub type CheckoutOnce = Keyed<Checkout, OrderView, CartsError>;

/// The checkout that placed `order_id` is over (its answer was lost to a
/// timeout and recovered by its Idempotency-Key): take the order's lines
/// (`taken`) out of the cart if it is still claimed for that order.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CartsError>")]
pub struct FinishCheckout {
    pub owner: CartOwner,
    pub order_id: Uuid,
    pub taken: Vec<StockLine>,
}

/// The lines an order took from its cart.
pub fn taken_lines(order: &OrderView) -> Vec<StockLine> {
    order
        .items
        .iter()
        .map(|i| StockLine {
            variant_id: i.variant_id,
            quantity: i.quantity,
        })
        .collect()
}
