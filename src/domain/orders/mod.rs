//! The orders domain's rules: the status machine, the kinds of its outbox events, pricing from catalog
//! snapshots, and shipping addresses.

pub mod address;
pub mod demo;
pub mod events;
pub mod pricing;
pub mod status;
