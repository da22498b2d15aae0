//! Emporium: an e-commerce backend built as an actor-based single-node
//! cluster. Each domain (auth, catalog, orders, payments) is a supervised
//! actix actor that owns its own PostgreSQL database; an actix-web edge in
//! front is the API gateway.
//!
//! # Layout
//!
//! - [`actors`]: one module per domain actor with its `messages`, plus the
//!   shared runtime (bounded admission, timeouts, panic restarts, metrics)
//!   and cluster start-up. Actor handlers live in `actors/<domain>/handlers.rs`.
//! - [`http`]: the edge. Routes per domain, extractors (JSON with per-field
//!   errors, authenticated principal), middleware (request id, timeouts),
//!   and `http::error`, the one place errors become problem+json.
//! - [`store`]: per-domain SQL (sqlx, runtime-checked), database creation and
//!   embedded migrations, the Redis pool.
//! - [`domain`]: pure rules with no I/O: validation, pagination, email and
//!   password policy, tokens.
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
pub mod recommend_eval;
pub mod startup;
pub mod store;
pub mod telemetry;
