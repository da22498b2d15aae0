//! Per-domain SQL and connection set-up. Each submodule's functions take the
//! pool or transaction of the one domain they belong to; only that domain's
//! actor ever holds it.

pub mod addresses;
pub mod api_keys;
pub mod auth;
pub mod carts;
pub mod catalog;
pub mod database;
pub mod events;
pub mod fulfilments;
pub mod idempotency;
pub mod media;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod product_images;
pub mod promotions;
pub mod redis;
pub mod refunds;
pub mod returns;
pub mod shipping;
pub mod stock;
pub mod tax;
pub mod text_enum;
pub mod webhooks;
