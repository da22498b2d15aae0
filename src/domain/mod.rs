//! Plain types and rules with no I/O, for every domain: auth (credentials,
//! tokens), catalog (listing, stock), carts (pricing), promotions, orders
//! and payments (state machines, cards), idempotency keys, read-view
//! coherence, recommendation maths, validation and pagination. Nothing here
//! imports another layer (`tests/api/layering.rs` checks); everything is
//! unit-tested in place.

pub mod auth;
pub mod cache_scope;
pub mod carts;
pub mod catalog;
pub mod coherence;
pub mod events;
pub mod idempotency;
pub mod notifications;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod pricing;
pub mod promotions;
pub mod recommendations;
pub mod validation;
pub mod webhooks;
