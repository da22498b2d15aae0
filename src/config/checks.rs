//! What makes settings valid: every numeric bound in one table, checked and
//! reported by one loop; the rules that tie two settings together, each
//! with its reason; and what production refuses.

use secrecy::ExposeSecret as _;

use super::{
    Environment, Settings, DEVELOPMENT_JWT_SECRET, DEVELOPMENT_ORDER_TOKEN_SECRET,
    DEVELOPMENT_WEBHOOK_SECRET, MIN_PRODUCTION_SECRET_BYTES,
};

/// A number a setting can hold, compared as `f64` (every bound here is far
/// below 2^53, so the comparison is exact).
trait Number: Copy {
    fn number(self) -> f64;
}

macro_rules! number {
    ($($t:ty),*) => {
        $(impl Number for $t {
            fn number(self) -> f64 {
                self as f64
            }
        })*
    };
}

number!(u16, u32, u64, usize, i32, i64, f64);

/// One numeric setting and the range it must lie in.
struct Bound {
    name: &'static str,
    value: f64,
    min: f64,
    max: Option<f64>,
    /// Why the bound is there, when the range alone does not say.
    why: &'static str,
}

impl Bound {
    fn problem(&self) -> Option<String> {
        let inside = self.value >= self.min && self.max.is_none_or(|max| self.value <= max);
        if inside {
            return None;
        }
        let range = match self.max {
            Some(max) => format!("between {} and {}", shown(self.min), shown(max)),
            None => format!("at least {}", shown(self.min)),
        };
        let why = if self.why.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.why)
        };
        Some(format!("{} must be {range}{why}", self.name))
    }

    fn because(mut self, why: &'static str) -> Self {
        self.why = why;
        self
    }
}

fn shown(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn between(name: &'static str, value: impl Number, min: impl Number, max: impl Number) -> Bound {
    Bound {
        name,
        value: value.number(),
        min: min.number(),
        max: Some(max.number()),
        why: "",
    }
}

fn at_least(name: &'static str, value: impl Number, min: impl Number) -> Bound {
    Bound {
        name,
        value: value.number(),
        min: min.number(),
        max: None,
        why: "",
    }
}

/// The sentences of the rules that do not hold.
fn broken(rules: impl IntoIterator<Item = (bool, String)>) -> Vec<String> {
    rules
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, rule)| rule)
        .collect()
}

impl Settings {
    /// Each broken rule, as a sentence that says what to set.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self.bounds().iter().filter_map(Bound::problem).collect();
        problems.extend(self.relations());
        problems.extend(self.shapes());
        if self.app.environment == Environment::Production {
            problems.extend(self.production());
        }
        problems
    }

    /// Every numeric setting's range, once.
    fn bounds(&self) -> Vec<Bound> {
        let (http, db, redis, auth) = (&self.http, &self.database, &self.redis, &self.auth);
        let (limits, actors, catalog) = (&self.rate_limit, &self.actors, &self.catalog);
        let (orders, carts, pay) = (&self.orders, &self.carts, &self.payments);
        let (sim, rec) = (&pay.simulator, &self.recommendations);
        vec![
            between("http.workers", http.workers, 1, 256),
            between(
                "media.max_bytes",
                self.media.max_bytes,
                1024,
                100 * 1024 * 1024,
            ),
            between(
                "http.body_limit_bytes",
                http.body_limit_bytes,
                1024,
                16 * 1024 * 1024,
            ),
            between(
                "http.request_timeout_ms",
                http.request_timeout_ms,
                100,
                600_000,
            ),
            between(
                "http.shutdown_timeout_secs",
                http.shutdown_timeout_secs,
                0,
                3600,
            ),
            between("http.drain_delay_ms", http.drain_delay_ms, 0, 60_000),
            between("database.max_connections", db.max_connections, 1, 1000),
            at_least("database.acquire_timeout_ms", db.acquire_timeout_ms, 1),
            at_least("redis.pool_size", redis.pool_size, 1),
            between("redis.timeout_ms", redis.timeout_ms, 1, 60_000),
            at_least("auth.access_ttl_secs", auth.access_ttl_secs, 1),
            between("auth.reset_ttl_mins", auth.reset_ttl_mins, 1, 1440),
            between("auth.verify_ttl_hours", auth.verify_ttl_hours, 1, 720),
            at_least("rate_limit.login_per_client", limits.login_per_client, 1),
            at_least(
                "rate_limit.login_per_email_client",
                limits.login_per_email_client,
                1,
            ),
            at_least("rate_limit.login_per_email", limits.login_per_email, 1),
            at_least(
                "rate_limit.register_per_client",
                limits.register_per_client,
                1,
            ),
            at_least("rate_limit.password_per_user", limits.password_per_user, 1),
            at_least(
                "rate_limit.guest_carts_per_client",
                limits.guest_carts_per_client,
                1,
            ),
            at_least(
                "rate_limit.guest_checkouts_per_client",
                limits.guest_checkouts_per_client,
                1,
            ),
            between("rate_limit.window_secs", limits.window_secs, 1, 86_400),
            at_least("actors.mailbox_capacity", actors.mailbox_capacity, 1),
            at_least("actors.call_timeout_ms", actors.call_timeout_ms, 1),
            at_least("catalog.cache_ttl_secs", catalog.cache_ttl_secs, 1),
            at_least(
                "catalog.sweep_interval_secs",
                catalog.sweep_interval_secs,
                1,
            ),
            at_least("orders.pending_ttl_secs", orders.pending_ttl_secs, 1),
            at_least("orders.sweep_interval_secs", orders.sweep_interval_secs, 1)
                .because("0 would spin the sweep"),
            at_least(
                "orders.idempotency_retention_hours",
                orders.idempotency_retention_hours,
                24,
            ),
            between("carts.guest_ttl_days", carts.guest_ttl_days, 1, 3650),
            between("carts.max_lines", carts.max_lines, 1, 500),
            between("carts.max_quantity", carts.max_quantity, 1, 10_000)
                .because("an order line's ceiling"),
            at_least("carts.sweep_interval_secs", carts.sweep_interval_secs, 1)
                .because("0 would spin the sweep"),
            between("payments.workers", pay.workers, 1, 256),
            between("payments.claim_batch", pay.claim_batch, 1, 64),
            between("payments.max_attempts", pay.max_attempts, 1, 20),
            at_least("payments.retry_base_ms", pay.retry_base_ms, 1),
            at_least("payments.provider_timeout_ms", pay.provider_timeout_ms, 1),
            at_least("payments.poll_interval_ms", pay.poll_interval_ms, 10),
            at_least("payments.relay_interval_ms", pay.relay_interval_ms, 10),
            at_least("payments.webhook_wait_secs", pay.webhook_wait_secs, 1),
            between(
                "payments.webhook_tolerance_secs",
                pay.webhook_tolerance_secs,
                1,
                86_400,
            ),
            at_least(
                "payments.failed_attempts_per_order",
                pay.failed_attempts_per_order,
                1,
            ),
            at_least(
                "payments.failed_attempts_per_customer",
                pay.failed_attempts_per_customer,
                1,
            ),
            between(
                "payments.failed_attempts_window_secs",
                pay.failed_attempts_window_secs,
                1,
                30 * 86_400,
            ),
            between(
                "payments.simulator.transient_error_rate",
                sim.transient_error_rate,
                0,
                1,
            ),
            between("payments.simulator.timeout_rate", sim.timeout_rate, 0, 1),
            at_least(
                "recommendations.rebuild_interval_secs",
                rec.rebuild_interval_secs,
                10,
            ),
            between(
                "recommendations.promotion_tolerance",
                rec.promotion_tolerance,
                0,
                1,
            ),
            at_least(
                "recommendations.follow_interval_ms",
                rec.follow_interval_ms,
                100,
            ),
            between("recommendations.rebuild_growth", rec.rebuild_growth, 0, 100),
            between(
                "recommendations.rebuild_min_new_orders",
                rec.rebuild_min_new_orders,
                1,
                1_000_000,
            ),
            between(
                "recommendations.weight_search_every",
                rec.weight_search_every,
                1,
                10_000,
            ),
            between(
                "recommendations.weight_search_growth",
                rec.weight_search_growth,
                0,
                100,
            ),
            between("recommendations.eval_k", rec.eval_k, 1, 100),
            at_least("recommendations.eval_max_users", rec.eval_max_users, 100),
            between("webhooks.workers", self.webhooks.workers, 1, 64),
            between("webhooks.timeout_ms", self.webhooks.timeout_ms, 100, 60_000),
            between(
                "webhooks.disable_after_hours",
                self.webhooks.disable_after_hours,
                0,
                24 * 365,
            ),
            between("webhooks.lease_secs", self.webhooks.lease_secs, 1, 3600),
            at_least(
                "webhooks.poll_interval_ms",
                self.webhooks.poll_interval_ms,
                10,
            ),
            between(
                "webhooks.response_excerpt_bytes",
                self.webhooks.response_excerpt_bytes,
                0,
                65_536,
            ),
            between(
                "webhooks.retry_schedule_ms (attempts)",
                self.webhooks.retry_schedule_ms.len(),
                0,
                30,
            ),
            at_least(
                "events.relay_interval_ms",
                self.events.relay_interval_ms,
                10,
            ),
            between("events.relay_batch", self.events.relay_batch, 1, 10_000),
            at_least("events.retention_days", self.events.retention_days, 1),
        ]
    }

    /// Rules that tie settings together, each with the failure it prevents.
    fn relations(&self) -> Vec<String> {
        let (http, db, actors) = (&self.http, &self.database, &self.actors);
        let (catalog, orders, pay) = (&self.catalog, &self.orders, &self.payments);
        // A pending order's stock must stay held until the order itself
        // expires (at the first sweep after its deadline); otherwise the
        // last unit can be sold to two pending orders.
        let order_lifetime = orders
            .pending_ttl_secs
            .saturating_add(i64::try_from(orders.sweep_interval_secs).unwrap_or(i64::MAX));
        let rules = [
            (
                db.acquire_timeout_ms < actors.call_timeout_ms,
                "database.acquire_timeout_ms must be below actors.call_timeout_ms, so an outage answers 503 before the call times out".to_owned(),
            ),
            (
                self.auth.refresh_ttl_secs > self.auth.access_ttl_secs,
                "auth.refresh_ttl_secs must be longer than auth.access_ttl_secs".to_owned(),
            ),
            (
                self.rate_limit.login_per_email >= self.rate_limit.login_per_email_client,
                "rate_limit.login_per_email (the ceiling for one account) must be at least rate_limit.login_per_email_client".to_owned(),
            ),
            (
                actors.call_timeout_ms <= http.request_timeout_ms,
                "actors.call_timeout_ms must be at most http.request_timeout_ms".to_owned(),
            ),
            (
                catalog.reservation_ttl_secs > order_lifetime,
                format!(
                    "catalog.reservation_ttl_secs ({}) must be longer than orders.pending_ttl_secs + orders.sweep_interval_secs ({order_lifetime})",
                    catalog.reservation_ttl_secs
                ),
            ),
            // A key is presumed dead only once its request cannot still be
            // running.
            (
                orders.idempotency_lock_secs.saturating_mul(1000) > http.request_timeout_ms,
                "orders.idempotency_lock_secs must be longer than http.request_timeout_ms".to_owned(),
            ),
            (
                pay.retry_max_ms >= pay.retry_base_ms,
                "payments.retry_base_ms must be at most payments.retry_max_ms".to_owned(),
            ),
            // A job must never be claimed again while its provider call can
            // still be running.
            (
                pay.lease_secs.saturating_mul(1000) > pay.provider_timeout_ms.saturating_mul(2),
                "payments.lease_secs must be longer than twice payments.provider_timeout_ms".to_owned(),
            ),
            (
                pay.webhook_secret.expose_secret().len() >= 16,
                "payments.webhook_secret must be at least 16 bytes".to_owned(),
            ),
            // A short key makes guest order tokens guessable offline.
            (
                self.orders.order_token_secret.expose_secret().len() >= 16,
                "orders.order_token_secret must be at least 16 bytes".to_owned(),
            ),
            (
                self.observability.metrics_port.is_none_or(|port| self.http.port == 0 || port != self.http.port),
                "observability.metrics_port must differ from http.port".to_owned(),
            ),
        ];
        broken(rules)
    }

    /// Settings that must have a shape: names, URLs, tokens.
    fn shapes(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let prefix = &self.database.prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !prefix_ok {
            problems.push(
                "database.prefix must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
                    .to_owned(),
            );
        }
        if let Some(base) = self
            .http
            .public_base_url
            .as_deref()
            .filter(|b| !b.is_empty())
        {
            let ok = url::Url::parse(base).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.username().is_empty()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !ok {
                problems.push(
                    "http.public_base_url must be an http(s) URL such as https://shop.example"
                        .to_owned(),
                );
            }
        }
        if self.media.backend == super::MediaBackend::S3
            && self
                .media
                .s3
                .as_ref()
                .is_none_or(|s3| s3.bucket.trim().is_empty())
        {
            problems.push(
                "media.backend = \"s3\" needs media.s3.bucket (and region or endpoint)".to_owned(),
            );
        }
        if self.media.backend == super::MediaBackend::Local && self.media.root.trim().is_empty() {
            problems.push("media.root must name a folder for the local media store".to_owned());
        }
        if let Some(endpoint) = &self.observability.otlp_endpoint {
            let ok = url::Url::parse(endpoint)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                problems.push("observability.otlp_endpoint must be an http(s) URL, e.g. http://otel-collector:4318/v1/traces".to_owned());
            }
        }
        problems.extend(self.email.problems());
        if let Some(token) = &self.observability.metrics_token {
            if token.expose_secret().len() < 16 {
                problems
                    .push("observability.metrics_token must be at least 16 characters".to_owned());
            }
        }
        problems
    }

    /// What production refuses: development secrets and drill switches.
    fn production(&self) -> Vec<String> {
        let secret = self.auth.jwt_secret.expose_secret();
        let order_key = self.orders.order_token_secret.expose_secret();
        let obs = &self.observability;
        let rules = [
            (
                self.payments.webhook_secret.expose_secret() != DEVELOPMENT_WEBHOOK_SECRET,
                "refusing to start in production with the development webhook secret; set EMPORIUM__PAYMENTS__WEBHOOK_SECRET".to_owned(),
            ),
            (
                secret != DEVELOPMENT_JWT_SECRET,
                "refusing to start in production with the development JWT secret; set EMPORIUM__AUTH__JWT_SECRET".to_owned(),
            ),
            (
                secret.len() >= MIN_PRODUCTION_SECRET_BYTES,
                format!("auth.jwt_secret must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"),
            ),
            (
                order_key != DEVELOPMENT_ORDER_TOKEN_SECRET,
                "refusing to start in production with the development order-token secret; set EMPORIUM__ORDERS__ORDER_TOKEN_SECRET".to_owned(),
            ),
            (
                order_key.len() >= MIN_PRODUCTION_SECRET_BYTES,
                format!("orders.order_token_secret must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"),
            ),
            (
                !self.diagnostics.enabled,
                "diagnostics.enabled must be false in production".to_owned(),
            ),
            (
                !self.webhooks.allow_loopback_http,
                "webhooks.allow_loopback_http must be false in production (webhook targets must be https and public); set EMPORIUM__WEBHOOKS__ALLOW_LOOPBACK_HTTP=false".to_owned(),
            ),
            (
                !self.payments.simulator.panic_on_first_call,
                "payments.simulator.panic_on_first_call must be false in production".to_owned(),
            ),
            (
                obs.metrics_token.is_some() || obs.metrics_port.is_some(),
                "in production /metrics must be protected: set observability.metrics_token (EMPORIUM__OBSERVABILITY__METRICS_TOKEN) or serve it on a private observability.metrics_port".to_owned(),
            ),
        ];
        broken(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_names_its_setting_its_range_and_its_reason() {
        assert_eq!(
            between("a.b", 3, 1, 2).problem().as_deref(),
            Some("a.b must be between 1 and 2")
        );
        assert_eq!(between("a.b", 2, 1, 2).problem(), None);
        assert_eq!(
            at_least("a.c", 0, 1)
                .because("0 would spin")
                .problem()
                .as_deref(),
            Some("a.c must be at least 1 (0 would spin)")
        );
        assert_eq!(
            between("a.r", 1.5, 0, 1).problem().as_deref(),
            Some("a.r must be between 0 and 1")
        );
        assert_eq!(
            between("a.r", 0.25, 0.5, 1).problem().as_deref(),
            Some("a.r must be between 0.5 and 1")
        );
    }
}
