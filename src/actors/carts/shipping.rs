//! A cart's shipping: the methods offered for it at a destination, and the
//! method and address it chose. The rules are the orders domain's; the
//! work is in `handlers/shipping.rs`.

use actix::Message;
use uuid::Uuid;

use super::error::CartsError;
use super::messages::CartOwner;
use crate::domain::carts::CartView;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::pricing::rules::{Destination, MethodQuote};

/// The methods offered for the cart's parcel at `destination` (or at the
/// cart's chosen address), cheapest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<MethodQuote>, CartsError>")]
pub struct QuoteCartShipping {
    pub owner: CartOwner,
    pub destination: Option<Destination>,
}

/// Choose a method and the address it ships to; refused unless the method
/// is offered for the cart there now.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct SetCartShipping {
    pub owner: CartOwner,
    pub method_id: Uuid,
    /// Validated.
    pub address: ShippingAddress,
}

/// Forget the cart's shipping choice.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct ClearCartShipping(pub CartOwner);
