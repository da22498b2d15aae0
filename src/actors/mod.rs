//! The domain actors and the runtime they share. Each domain actor owns its
//! database pool, runs supervised on its own arbiter, and answers typed
//! messages declared in its `messages` module.

pub mod amqp_relay;
pub mod auth;
pub mod carts;
pub mod catalog;
pub mod cluster;
pub mod edge;
pub mod events;
pub mod failure;
pub mod idempotency;
pub mod metrics;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod read_view;
pub mod recommendations;
pub mod runtime;
pub mod webhooks;

pub use cluster::{Actors, Cluster};
