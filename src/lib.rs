//! Emporium: an e-commerce backend built as an actor-based single-node
//! cluster. Six domain actors (auth, catalog, orders, payments, carts and
//! the recommender) run supervised on arbiters of their own; the first five
//! each own a PostgreSQL database, the recommender a model in memory. They
//! ask each other in one direction only: orders → catalog, payments →
//! orders, carts → catalog and orders, recommender → catalog and orders.
//! An actix-web edge in front is the API gateway; docs/ARCHITECTURE.md
//! draws the map.
//!
//! # Layout
//!
//! - [`actors`]: one module per domain actor with its `messages`, plus the
//!   shared runtime (bounded admission, timeouts, panic restarts, metrics),
//!   the read views the edge reads in process, failure classification, and
//!   cluster start-up. Actor handlers live in `actors/<domain>/handlers.rs`.
//! - [`http`]: the edge. Routes per domain, extractors (JSON with per-field
//!   errors, authenticated principal), middleware (request id, timeouts),
//!   and `http::error`, the one place errors become problem+json.
//! - [`store`]: per-domain SQL (sqlx, runtime-checked), database creation and
//!   embedded migrations, the Redis pool. The edge never imports it (the
//!   rate limiter's Redis pool is the one exception); `tests/api/layering.rs`
//!   checks.
//! - [`domain`]: pure rules with no I/O: validation, pagination, credentials
//!   and tokens, catalog listing and stock, cart pricing, promotions, order
//!   and payment state machines, idempotency, coherence, recommendation
//!   maths.
//! - [`config`] and [`startup`]: typed settings and `Application::build`,
//!   which the binary and the integration tests share.
//!
//! To find an endpoint: its handler is in `http/<domain>.rs`, its message in
//! `actors/<domain>/messages.rs`, the actor's work in
//! `actors/<domain>/handlers.rs`, and its SQL in `store/<domain>.rs`.

pub mod actors;
pub mod commands;
pub mod config;
pub mod domain;
pub mod http;
pub mod startup;
pub mod store;
pub mod telemetry;
