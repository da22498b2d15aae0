//! Typed settings: `config.toml` first, then `EMPORIUM__SECTION__KEY`
//! environment variables. Settings are passed down explicitly; nothing reads
//! them from a global.

use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;
use serde::Deserialize;

mod checks;
mod email;
mod integrations;

pub use email::{EmailSettings, EmailTransport};
pub use integrations::{EventsSettings, WebhookSettings};

/// `config.toml` as shipped: the base layer of every configuration.
const DEFAULTS: &str = include_str!("../../config.toml");

/// The JWT secret shipped in `config.toml`; production refuses to run with it.
pub const DEVELOPMENT_JWT_SECRET: &str = "emporium-development-secret-do-not-use-in-production";

/// Shortest JWT secret accepted in production (HS256 wants at least 256 bits).
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Every setting of one Emporium instance.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub app: AppSettings,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub actors: ActorSettings,
    pub catalog: CatalogSettings,
    pub orders: OrderSettings,
    #[serde(default)]
    pub tax: TaxSettings,
    #[serde(default)]
    pub returns: ReturnSettings,
    pub payments: PaymentSettings,
    pub carts: CartSettings,
    pub recommendations: RecommendationSettings,
    pub media: MediaSettings,
    #[serde(default)]
    pub diagnostics: DiagnosticsSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub observability: ObservabilitySettings,
    #[serde(default)]
    pub events: EventsSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub email: EmailSettings,
}

/// Deployment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

/// Process-wide settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AppSettings {
    pub environment: Environment,
}

/// The HTTP edge.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub shutdown_timeout_secs: u64,
    /// On SIGTERM, how long the instance keeps serving, every response
    /// closing its connection and `/readyz` answering 503, before the
    /// listener closes (0: close at once; a Kubernetes `preStop` sleep
    /// covers endpoint removal there).
    #[serde(default)]
    pub drain_delay_ms: u64,
    pub cors_allowed_origins: Vec<String>,
    pub trust_forwarded_for: bool,
    /// Scheme and host of absolute links (pagination), e.g.
    /// `https://shop.example`; unset or empty: taken from the request.
    #[serde(default)]
    pub public_base_url: Option<String>,
}

/// The domains, each with a database of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Auth,
    Catalog,
    Orders,
    Payments,
    Carts,
    Webhooks,
    Notifications,
}

impl Domain {
    /// Every domain, in start-up order.
    pub const ALL: [Domain; 7] = [
        Domain::Auth,
        Domain::Catalog,
        Domain::Orders,
        Domain::Payments,
        Domain::Carts,
        Domain::Webhooks,
        Domain::Notifications,
    ];

    /// Lower-case name used in database names, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Auth => "auth",
            Domain::Catalog => "catalog",
            Domain::Orders => "orders",
            Domain::Payments => "payments",
            Domain::Carts => "carts",
            Domain::Webhooks => "webhooks",
            Domain::Notifications => "notifications",
        }
    }
}

/// PostgreSQL: one server URL and a prefix, or one URL per domain.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub prefix: String,
    pub max_connections: u32,
    /// How long a query waits for a pooled connection before the request
    /// is answered 503.
    pub acquire_timeout_ms: u64,
    pub auth_url: Option<String>,
    pub catalog_url: Option<String>,
    pub orders_url: Option<String>,
    pub payments_url: Option<String>,
    pub carts_url: Option<String>,
    pub webhooks_url: Option<String>,
    pub notifications_url: Option<String>,
}

impl DatabaseSettings {
    /// The full URL of `domain`'s database: its own override, or
    /// `<url>/<prefix>_<domain>`.
    pub fn url_for(&self, domain: Domain) -> String {
        let own = match domain {
            Domain::Auth => &self.auth_url,
            Domain::Catalog => &self.catalog_url,
            Domain::Orders => &self.orders_url,
            Domain::Payments => &self.payments_url,
            Domain::Carts => &self.carts_url,
            Domain::Webhooks => &self.webhooks_url,
            Domain::Notifications => &self.notifications_url,
        };
        match own {
            Some(url) => url.clone(),
            None => format!(
                "{}/{}_{}",
                self.url.trim_end_matches('/'),
                self.prefix,
                domain.name()
            ),
        }
    }
}

/// Redis, used as a cache and counter store, never as the source of truth.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: String,
    pub pool_size: u32,
    pub timeout_ms: u64,
}

/// Token issuing and verification.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: SecretString,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// Lifetime of a password-reset token, in minutes.
    #[serde(default = "default_reset_ttl_mins")]
    pub reset_ttl_mins: i64,
    /// Lifetime of an email-verification token, in hours.
    #[serde(default = "default_verify_ttl_hours")]
    pub verify_ttl_hours: i64,
    /// Checkout and `POST /orders/` answer 403 `email_unverified` to a
    /// customer whose email is not verified.
    #[serde(default)]
    pub require_verified_email_for_checkout: bool,
    /// Most bytes auth's in-process read view holds (who each token's
    /// user is, profiles, API keys); the least recently read go first.
    #[serde(default = "default_read_view_max_bytes")]
    pub read_view_max_bytes: usize,
}

/// 64 MiB.
fn default_read_view_max_bytes() -> usize {
    64 * 1024 * 1024
}

fn default_reset_ttl_mins() -> i64 {
    30
}

fn default_verify_ttl_hours() -> i64 {
    48
}

/// Throttling of guessable and expensive requests, per window.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Logins from one client address, any account.
    pub login_per_client: u32,
    /// Logins for one account from one client address: the tight limit.
    pub login_per_email_client: u32,
    /// Logins for one account from anywhere: a looser ceiling against a
    /// distributed guess, high enough that one attacker cannot lock the
    /// owner out.
    pub login_per_email: u32,
    /// Registrations from one client address.
    pub register_per_client: u32,
    /// Password changes (current-password guesses) per user.
    pub password_per_user: u32,
    /// Guest carts made from one client address (each is a row; no
    /// account is needed to make one).
    pub guest_carts_per_client: u32,
    /// Guest checkouts from one client address (each reserves stock and
    /// writes an order without an account behind it).
    pub guest_checkouts_per_client: u32,
    /// Requests one API key may make per window, across instances.
    #[serde(default = "default_api_key_requests")]
    pub api_key_requests: u32,
    /// Password-reset requests from one client address.
    #[serde(default = "default_reset_per_client")]
    pub password_reset_per_client: u32,
    /// Password-reset requests for one email, from anywhere (each mails
    /// the owner: this bounds mail bombing).
    #[serde(default = "default_reset_per_email")]
    pub password_reset_per_email: u32,
    /// Verification mails one user may ask for again.
    #[serde(default = "default_verify_resend_per_user")]
    pub verify_resend_per_user: u32,
    /// Token confirmations (reset or verification) from one client
    /// address: guesses of a token.
    #[serde(default = "default_token_confirm_per_client")]
    pub token_confirm_per_client: u32,
    pub window_secs: u64,
}

fn default_reset_per_client() -> u32 {
    10
}

fn default_reset_per_email() -> u32 {
    5
}

fn default_verify_resend_per_user() -> u32 {
    5
}

fn default_token_confirm_per_client() -> u32 {
    30
}

fn default_api_key_requests() -> u32 {
    30_000
}

/// Actor runtime limits.
#[derive(Debug, Clone, Deserialize)]
pub struct ActorSettings {
    pub mailbox_capacity: usize,
    pub call_timeout_ms: u64,
}

/// Catalog caching and stock reservations.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogSettings {
    /// Lifetime of cached product responses.
    pub cache_ttl_secs: u64,
    /// How long an uncommitted reservation holds its stock.
    pub reservation_ttl_secs: i64,
    /// How often expired reservations are swept back into stock.
    pub sweep_interval_secs: u64,
    /// Most bytes the catalog's in-process read view holds (pages, keys
    /// included); the least recently read go first.
    #[serde(default = "default_read_view_max_bytes")]
    pub read_view_max_bytes: usize,
    /// Writes that only move stock or prices make stale only what shows
    /// or hangs on the products they moved. Set `false` while upgrading
    /// from a version without it, until every instance runs this one.
    #[serde(default = "default_true")]
    pub scoped_invalidation: bool,
}

fn default_true() -> bool {
    true
}

fn default_claim_batch() -> usize {
    8
}

/// Where product images are kept, and how large one may be.
#[derive(Debug, Clone, Deserialize)]
pub struct MediaSettings {
    /// `local` (files under `root`) or `s3` (an S3-compatible bucket).
    pub backend: MediaBackend,
    /// The folder of the `local` backend; created when missing.
    pub root: String,
    /// Largest upload accepted, in bytes (413 beyond).
    pub max_bytes: usize,
    /// The bucket of the `s3` backend.
    #[serde(default)]
    pub s3: Option<S3Settings>,
}

/// Which media store an instance writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    Local,
    S3,
}

/// An S3-compatible bucket (AWS, MinIO, Ceph, R2...). Credentials absent
/// here come from the environment as the AWS SDKs read them.
#[derive(Debug, Clone, Deserialize)]
pub struct S3Settings {
    pub bucket: String,
    #[serde(default)]
    pub region: Option<String>,
    /// For a non-AWS service, e.g. `http://127.0.0.1:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<SecretString>,
    /// Whether a plain-HTTP endpoint is allowed (local MinIO).
    #[serde(default)]
    pub allow_http: bool,
}

/// Order lifecycle and idempotency.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderSettings {
    /// A pending order not paid within this long expires.
    pub pending_ttl_secs: i64,
    /// How often overdue orders and old idempotency keys are swept.
    pub sweep_interval_secs: u64,
    /// How long idempotency keys (and their saved responses) are kept.
    pub idempotency_retention_hours: u64,
    /// A key whose first request has not finished after this long may be
    /// claimed again (the first request is presumed dead).
    pub idempotency_lock_secs: u64,
    /// HMAC key of guest order tokens. Changing it closes every guest
    /// order to its token (they stay visible to admins).
    pub order_token_secret: SecretString,
}

/// The order-token key shipped in `config.toml`; production refuses it.
pub const DEVELOPMENT_ORDER_TOKEN_SECRET: &str = "emporium-development-order-token-key-do-not-use";

/// How the shop states its prices.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaxSettings {
    /// Whether catalog prices include tax (as shelf prices do in the EU):
    /// then tax is extracted from them and the total is the shelf price
    /// after discount plus shipping. Otherwise (as in the US) tax is added.
    #[serde(default)]
    pub prices_include_tax: bool,
}

/// Returns of delivered goods.
#[derive(Debug, Clone, Deserialize)]
pub struct ReturnSettings {
    /// Days after delivery within which a customer may ask for a return.
    #[serde(default = "default_return_window_days")]
    pub window_days: u32,
}

fn default_return_window_days() -> u32 {
    30
}

impl Default for ReturnSettings {
    fn default() -> Self {
        Self {
            window_days: default_return_window_days(),
        }
    }
}

/// Server-side carts.
#[derive(Debug, Clone, Deserialize)]
pub struct CartSettings {
    /// A guest cart untouched this long is deleted by the sweep.
    pub guest_ttl_days: i64,
    /// Most distinct products in one cart.
    pub max_lines: usize,
    /// Most units of one product in one cart.
    pub max_quantity: i32,
    /// How often expired guest carts are swept.
    pub sweep_interval_secs: u64,
    /// Most bytes the carts' in-process read view holds (customers' carts
    /// as stored, read by `GET /cart/` without a hop); the least recently
    /// read go first.
    #[serde(default = "default_read_view_max_bytes")]
    pub read_view_max_bytes: usize,
}

/// How the provider reports a charge's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// In the provider call's answer.
    Direct,
    /// Later, as a signed webhook to `/api/v1/payments/webhook/`.
    Webhook,
}

/// The payment pool, the simulated provider and webhooks.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentSettings {
    /// `PaymentWorker` actors per instance.
    pub workers: usize,
    /// Jobs a worker claims in one statement and runs side by side (so up
    /// to `workers × claim_batch` provider calls are in flight).
    #[serde(default = "default_claim_batch")]
    pub claim_batch: usize,
    /// Provider attempts per payment (the first included) before a
    /// transient failure becomes final.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter.
    pub retry_base_ms: u64,
    /// Ceiling of one backoff.
    pub retry_max_ms: u64,
    /// How long a claimed job is a worker's; a job whose worker died is
    /// claimed again after this.
    pub lease_secs: u64,
    /// How long a provider call may take before it counts as a transient
    /// failure.
    pub provider_timeout_ms: u64,
    /// How often idle workers look for jobs (besides being woken).
    pub poll_interval_ms: u64,
    /// How often outcomes are relayed to orders (besides being woken).
    pub relay_interval_ms: u64,
    /// How long a webhook-mode charge waits for its webhook before the job
    /// asks the provider again.
    pub webhook_wait_secs: u64,
    /// `direct` or `webhook`.
    pub delivery: Delivery,
    /// HMAC secret of webhook signatures.
    pub webhook_secret: SecretString,
    /// A previous secret still accepted while a rotation is under way.
    #[serde(default)]
    pub webhook_previous_secret: Option<SecretString>,
    /// Largest age (or clock skew) of a webhook signature.
    pub webhook_tolerance_secs: i64,
    /// Where the simulated provider posts webhooks; empty: this instance.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Failed payments one order may have within the window before more
    /// attempts are refused.
    pub failed_attempts_per_order: i64,
    /// Failed payments one customer may have within the window.
    pub failed_attempts_per_customer: i64,
    /// The rolling window of both limits.
    pub failed_attempts_window_secs: u64,
    /// The simulated provider's behaviour.
    pub simulator: SimulatorSettings,
}

/// The simulated provider: latency and failure injection.
#[derive(Debug, Clone, Deserialize)]
pub struct SimulatorSettings {
    /// Fixed latency of every call.
    pub latency_ms: u64,
    /// Extra latency, uniform in [0, jitter].
    pub latency_jitter_ms: u64,
    /// Share of calls that fail with a transient `processing_error`.
    pub transient_error_rate: f64,
    /// Share of calls that hang past `provider_timeout_ms`.
    pub timeout_rate: f64,
    /// Drill: the first call for each payment panics its worker (refused in
    /// production), to exercise supervision and lease recovery.
    #[serde(default)]
    pub panic_on_first_call: bool,
}

/// The recommender's build pipeline.
#[derive(Debug, Clone, Deserialize)]
pub struct RecommendationSettings {
    /// How often the model is rebuilt (it is also built at start-up and on
    /// `POST /api/v1/admin/recommendations/rebuild/`).
    pub rebuild_interval_secs: u64,
    /// How far a new build's blend recall may trail the live model's and
    /// still be promoted.
    pub promotion_tolerance: f64,
    /// Cut-off k of the evaluation that gates promotion.
    pub eval_k: usize,
    /// Held-out users the gate evaluates at most (spread evenly), so a
    /// build at scale is not dominated by its own evaluation.
    pub eval_max_users: usize,
    /// How often paid orders are followed from the orders outbox.
    pub follow_interval_ms: u64,
    /// A build starts as soon as the paid orders followed since the last
    /// build are more than this fraction of the live model's orders...
    #[serde(default = "default_rebuild_growth")]
    pub rebuild_growth: f64,
    /// ...and at least this many (so a seeded or imported shop is picked
    /// up within seconds, without a restart or the hourly timer).
    #[serde(default = "default_rebuild_min_new_orders")]
    pub rebuild_min_new_orders: usize,
    /// The blend's weights are searched afresh at least every this many
    /// builds (1: every build); the builds between evaluate the last
    /// search's weights, which spares a third model and a pass over the
    /// validation users.
    #[serde(default = "default_weight_search_every")]
    pub weight_search_every: u32,
    /// ...and as soon as the shop's orders have grown by more than this
    /// fraction since the last search, or a build was refused.
    #[serde(default = "default_weight_search_growth")]
    pub weight_search_growth: f64,
}

fn default_rebuild_growth() -> f64 {
    0.2
}

fn default_rebuild_min_new_orders() -> usize {
    10
}

fn default_weight_search_every() -> u32 {
    6
}

fn default_weight_search_growth() -> f64 {
    0.5
}

/// The webhook secret shipped in `config.toml`; production refuses it.
pub const DEVELOPMENT_WEBHOOK_SECRET: &str = "whsec_emporium_development_do_not_use";

/// Switches for test and drill endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DiagnosticsSettings {
    pub enabled: bool,
}

/// Metrics and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ObservabilitySettings {
    /// When set, `/metrics` asks for `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// When set, `/metrics` is served on this port only (bound to
    /// `metrics_host`), not on the API port.
    pub metrics_port: Option<u16>,
    /// Address the separate metrics port binds to.
    pub metrics_host: String,
    /// OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`);
    /// none: spans are not exported.
    pub otlp_endpoint: Option<String>,
}

impl Default for ObservabilitySettings {
    fn default() -> Self {
        Self {
            metrics_token: None,
            metrics_port: None,
            metrics_host: "127.0.0.1".into(),
            otlp_endpoint: None,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

impl Settings {
    /// Reads the built-in defaults, then `path` (when it exists), then the
    /// `EMPORIUM__` environment.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let settings: Settings = config::Config::builder()
            // The shipped defaults are compiled in, so the binary runs from
            // any directory; the file at `path` and the environment override.
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::from(path).required(false))
            .add_source(
                config::Environment::with_prefix("EMPORIUM")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("http.cors_allowed_origins")
                    .try_parsing(true),
            )
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("configuration has missing or malformed keys")?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses settings that are unsafe or cannot work, naming every broken
    /// rule at once. Every bound of every numeric setting is checked here
    /// and only here.
    pub fn validate(&self) -> anyhow::Result<()> {
        let problems = self.problems();
        anyhow::ensure!(
            problems.is_empty(),
            "invalid configuration:\n  - {}",
            problems.join("\n  - ")
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::load(Path::new("config.toml")).expect("config.toml loads")
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let mut s = settings();
        s.app.environment = Environment::Production;
        let err = s.validate().expect_err("must refuse");
        assert!(err.to_string().contains("development JWT secret"));
    }

    #[test]
    fn production_accepts_a_long_own_secret() {
        let mut s = settings();
        s.app.environment = Environment::Production;
        s.auth.jwt_secret = SecretString::from("x".repeat(48));
        s.payments.webhook_secret = SecretString::from("y".repeat(40));
        s.orders.order_token_secret = SecretString::from("z".repeat(40));
        s.observability.metrics_port = Some(9100);
        s.validate().expect("a strong secret is accepted");
    }

    #[test]
    fn production_wants_metrics_protected() {
        let mut s = settings();
        s.app.environment = Environment::Production;
        s.auth.jwt_secret = SecretString::from("x".repeat(48));
        s.payments.webhook_secret = SecretString::from("y".repeat(40));
        s.orders.order_token_secret = SecretString::from("z".repeat(40));
        let problems = s.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("metrics_token"));
        s.observability.metrics_token = Some(SecretString::from("t".repeat(24)));
        s.validate().expect("a token protects /metrics");
    }

    #[test]
    fn an_otlp_endpoint_must_be_an_http_url() {
        refused(
            |s| s.observability.otlp_endpoint = Some("collector:4318".into()),
            "otlp_endpoint",
        );
    }

    #[test]
    fn a_short_metrics_token_is_refused() {
        refused(
            |s| s.observability.metrics_token = Some(SecretString::from("short")),
            "metrics_token",
        );
    }

    /// Asserts that `adjust` breaks exactly a rule mentioning `setting`.
    fn refused(adjust: impl FnOnce(&mut Settings), setting: &str) {
        let mut s = settings();
        adjust(&mut s);
        let problems = s.problems();
        assert!(
            problems.iter().any(|p| p.contains(setting)),
            "expected a problem naming {setting}, got {problems:?}"
        );
    }

    #[test]
    fn the_shipped_defaults_are_valid() {
        assert_eq!(settings().problems(), Vec::<String>::new());
    }

    #[test]
    fn reservations_must_outlive_pending_orders() {
        refused(
            |s| {
                s.catalog.reservation_ttl_secs = 600;
                s.orders.pending_ttl_secs = 1800;
            },
            "catalog.reservation_ttl_secs",
        );
    }

    #[test]
    fn sweeps_cannot_spin() {
        refused(
            |s| s.orders.sweep_interval_secs = 0,
            "orders.sweep_interval_secs",
        );
        refused(
            |s| s.catalog.sweep_interval_secs = 0,
            "catalog.sweep_interval_secs",
        );
    }

    #[test]
    fn limits_and_timeouts_have_bounds() {
        refused(|s| s.http.workers = 0, "http.workers");
        refused(|s| s.http.body_limit_bytes = 10, "http.body_limit_bytes");
        refused(|s| s.http.request_timeout_ms = 0, "http.request_timeout_ms");
        refused(
            |s| s.http.shutdown_timeout_secs = 100_000,
            "http.shutdown_timeout_secs",
        );
        refused(|s| s.http.drain_delay_ms = 60_001, "http.drain_delay_ms");
        refused(
            |s| s.database.max_connections = 0,
            "database.max_connections",
        );
        refused(
            |s| s.database.acquire_timeout_ms = 10_000,
            "database.acquire_timeout_ms",
        );
        refused(|s| s.redis.pool_size = 0, "redis.pool_size");
        refused(|s| s.redis.timeout_ms = 0, "redis.timeout_ms");
        refused(|s| s.actors.mailbox_capacity = 0, "actors.mailbox_capacity");
        refused(
            |s| s.actors.call_timeout_ms = 60_000,
            "actors.call_timeout_ms",
        );
        refused(|s| s.catalog.cache_ttl_secs = 0, "catalog.cache_ttl_secs");
        refused(|s| s.orders.pending_ttl_secs = 0, "orders.pending_ttl_secs");
        refused(
            |s| s.orders.idempotency_retention_hours = 1,
            "orders.idempotency_retention_hours",
        );
        refused(
            |s| s.orders.idempotency_lock_secs = 1,
            "orders.idempotency_lock_secs",
        );
    }

    #[test]
    fn tokens_and_rate_limits_have_bounds() {
        refused(|s| s.auth.access_ttl_secs = 0, "auth.access_ttl_secs");
        refused(|s| s.auth.refresh_ttl_secs = 10, "auth.refresh_ttl_secs");
        refused(
            |s| s.rate_limit.login_per_client = 0,
            "rate_limit.login_per_client",
        );
        refused(
            |s| s.rate_limit.register_per_client = 0,
            "rate_limit.register_per_client",
        );
        refused(
            |s| s.rate_limit.password_per_user = 0,
            "rate_limit.password_per_user",
        );
        refused(
            |s| s.rate_limit.guest_carts_per_client = 0,
            "rate_limit.guest_carts_per_client",
        );
        refused(
            |s| s.rate_limit.guest_checkouts_per_client = 0,
            "rate_limit.guest_checkouts_per_client",
        );
        refused(
            |s| s.rate_limit.login_per_email = 1,
            "rate_limit.login_per_email",
        );
        refused(|s| s.rate_limit.window_secs = 0, "rate_limit.window_secs");
    }

    #[test]
    fn the_payment_pool_has_bounds() {
        refused(|s| s.payments.workers = 0, "payments.workers");
        refused(|s| s.payments.max_attempts = 0, "payments.max_attempts");
        refused(|s| s.payments.lease_secs = 1, "payments.lease_secs");
        refused(
            |s| s.payments.simulator.timeout_rate = 2.0,
            "payments.simulator",
        );
        refused(
            |s| s.payments.webhook_secret = SecretString::from("short"),
            "payments.webhook_secret",
        );
    }

    #[test]
    fn production_refuses_the_development_webhook_secret() {
        let mut s = settings();
        s.app.environment = Environment::Production;
        s.auth.jwt_secret = SecretString::from("x".repeat(48));
        s.observability.metrics_port = Some(9100);
        refused(
            |s| {
                s.app.environment = Environment::Production;
                s.auth.jwt_secret = SecretString::from("x".repeat(48));
                s.orders.order_token_secret = SecretString::from("z".repeat(40));
                s.observability.metrics_port = Some(9100);
            },
            "webhook secret",
        );
        s.payments.webhook_secret = SecretString::from("y".repeat(40));
        s.orders.order_token_secret = SecretString::from("z".repeat(40));
        assert!(s.problems().is_empty());
    }

    #[test]
    fn production_refuses_the_development_order_token_secret() {
        let strong = |s: &mut Settings| {
            s.app.environment = Environment::Production;
            s.auth.jwt_secret = SecretString::from("x".repeat(48));
            s.payments.webhook_secret = SecretString::from("y".repeat(40));
            s.observability.metrics_port = Some(9100);
        };
        refused(strong, "order-token secret");
        refused(
            |s| {
                strong(s);
                s.orders.order_token_secret = SecretString::from("z".repeat(20));
            },
            "orders.order_token_secret must be at least 32 bytes",
        );
        refused(
            |s| s.orders.order_token_secret = SecretString::from("short"),
            "orders.order_token_secret",
        );
        let mut s = settings();
        strong(&mut s);
        s.orders.order_token_secret = SecretString::from("z".repeat(40));
        assert!(s.problems().is_empty());
    }

    #[test]
    fn the_public_base_url_must_be_a_plain_http_url() {
        refused(
            |s| s.http.public_base_url = Some("javascript://evil.example".into()),
            "http.public_base_url",
        );
        let mut s = settings();
        s.http.public_base_url = Some("https://shop.example".into());
        assert!(s.problems().is_empty());
    }

    #[test]
    fn a_prefix_that_could_inject_sql_is_refused() {
        let mut s = settings();
        s.database.prefix = "shop\"; drop".into();
        assert!(s.validate().is_err());
    }

    #[test]
    fn domain_urls_follow_the_prefix_unless_overridden() {
        let mut s = settings();
        s.database.prefix = "shop".into();
        assert_eq!(
            s.database.url_for(Domain::Orders),
            "postgres://postgres@127.0.0.1:5432/shop_orders"
        );
        s.database.auth_url = Some("postgres://elsewhere/auth".into());
        assert_eq!(
            s.database.url_for(Domain::Auth),
            "postgres://elsewhere/auth"
        );
    }

    #[test]
    fn environment_variables_override_the_file() {
        // Only this test sets these variables; the others do not read them.
        std::env::set_var(
            "EMPORIUM__HTTP__CORS_ALLOWED_ORIGINS",
            "https://a.example,https://b.example",
        );
        std::env::set_var("EMPORIUM__RATE_LIMIT__WINDOW_SECS", "7");
        let s = settings();
        std::env::remove_var("EMPORIUM__HTTP__CORS_ALLOWED_ORIGINS");
        std::env::remove_var("EMPORIUM__RATE_LIMIT__WINDOW_SECS");
        assert_eq!(
            s.http.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(s.rate_limit.window_secs, 7);
    }

    #[test]
    fn the_built_in_defaults_apply_without_a_file() {
        let s = Settings::load(Path::new("no-such-file.toml")).expect("defaults load");
        assert!(!s.database.prefix.is_empty());
        assert_eq!(s.http.port, 8000);
    }

    #[test]
    fn secrets_never_print() {
        let s = settings();
        assert!(!format!("{s:?}").contains(DEVELOPMENT_JWT_SECRET));
        assert!(!format!("{s:?}").contains(DEVELOPMENT_ORDER_TOKEN_SECRET));
    }
}
