//! What every handler can reach: actor addresses, token keys for
//! verification (access tokens and guest order tokens), the rate limiter,
//! and edge settings.

use std::sync::Arc;

use crate::actors::Actors;
use crate::config::Settings;
use crate::domain::auth::TokenKeys;
use crate::domain::orders::guest::OrderTokenKey;
use crate::telemetry::metrics::Metrics;

use super::drain::Drain;
use super::rate_limit::RateLimiter;

/// Shared edge state, registered once as `web::Data<AppState>`.
pub struct AppState {
    pub actors: Actors,
    pub keys: Arc<TokenKeys>,
    /// Issues and checks guest orders' `order_token`s: the edge checks
    /// them as it checks access tokens, and actors get the verdict.
    pub order_tokens: OrderTokenKey,
    pub rate_limiter: RateLimiter,
    pub settings: Settings,
    /// This instance's Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// Thrown when the instance is told to stop.
    pub drain: Drain,
}
