//! Messages the carts actor answers. Owners arrive resolved by the edge:
//! a customer by their authenticated id, a guest cart by its id and the
//! token the client sent (checked here).

use actix::Message;
use serde::Serialize;
use uuid::Uuid;

use super::error::CartsError;
use crate::domain::carts::CartView;

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
