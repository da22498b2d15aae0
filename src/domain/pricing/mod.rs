//! What an order charges, from its lines, discount, shipping and tax: pure
//! functions over integer minor units, with no I/O, shared by the cart's
//! view, checkout and `POST /orders/` so the three can never disagree.
//!
//! - [`config`]: zones, methods and tax rates as admins write them.
//! - [`demo`]: the demo shop's zones, methods and rates (`seed-demo`).
//! - [`rounding`]: half-even division of minor units.
//! - [`shipping`]: which zone covers a destination, and a method's price
//!   for a parcel (flat, by weight band, by subtotal band, free over).
//! - [`totals`]: the discount split over the lines, each line's tax and
//!   the order's totals, in either tax mode.
//! - [`rules`]: the shop's zones, methods and tax rates as one value, the
//!   methods eligible for a cart, and the checkout's figures under them.

pub mod config;
pub mod demo;
pub mod rounding;
pub mod rules;
pub mod shipping;
pub mod totals;
