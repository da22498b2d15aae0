//! The orders domain's rules: the status machine, the kinds of its outbox events, pricing from catalog
//! snapshots, shipping addresses, and guest buyers with their order tokens.

pub mod address;
pub mod demo;
pub mod events;
pub mod fulfilment;
pub mod guest;
pub mod pricing;
pub mod returns;
pub mod status;
