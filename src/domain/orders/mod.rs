//! The orders domain's rules: the status machine, pricing from catalog
//! snapshots, and shipping addresses.

pub mod address;
pub mod demo;
pub mod pricing;
pub mod status;
