//! Plain types and rules with no I/O: validation, pagination, and the auth
//! domain's credentials and tokens. Everything here is unit-tested in place.

pub mod auth;
pub mod carts;
pub mod catalog;
pub mod coherence;
pub mod idempotency;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod promotions;
pub mod recommend;
pub mod validation;
