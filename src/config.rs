//! Typed settings: `config.toml` first, then `EMPORIUM__SECTION__KEY`
//! environment variables. Settings are passed down explicitly; nothing reads
//! them from a global.

use std::path::Path;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `config.toml` as shipped: the base layer of every configuration.
const DEFAULTS: &str = include_str!("../config.toml");

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
    pub diagnostics: DiagnosticsSettings,
    #[serde(default)]
    pub log: LogSettings,
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
    pub cors_allowed_origins: Vec<String>,
    pub trust_forwarded_for: bool,
}

/// The domains, each with a database of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Auth,
    Catalog,
    Orders,
    Payments,
}

impl Domain {
    /// Every domain, in start-up order.
    pub const ALL: [Domain; 4] = [
        Domain::Auth,
        Domain::Catalog,
        Domain::Orders,
        Domain::Payments,
    ];

    /// Lower-case name used in database names, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Auth => "auth",
            Domain::Catalog => "catalog",
            Domain::Orders => "orders",
            Domain::Payments => "payments",
        }
    }
}

/// PostgreSQL: one server URL and a prefix, or one URL per domain.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub prefix: String,
    pub max_connections: u32,
    pub auth_url: Option<String>,
    pub catalog_url: Option<String>,
    pub orders_url: Option<String>,
    pub payments_url: Option<String>,
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
}

/// Login throttling.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub login_per_client: u32,
    pub login_per_email: u32,
    pub window_secs: u64,
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
}

/// Switches for test and drill endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DiagnosticsSettings {
    pub enabled: bool,
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

    /// Refuses settings that are unsafe or cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        let prefix = &self.database.prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        anyhow::ensure!(
            prefix_ok,
            "database.prefix must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
        );
        anyhow::ensure!(
            self.actors.mailbox_capacity > 0,
            "actors.mailbox_capacity must be > 0"
        );
        anyhow::ensure!(
            self.auth.access_ttl_secs > 0,
            "auth.access_ttl_secs must be > 0"
        );
        anyhow::ensure!(
            self.auth.refresh_ttl_secs > 0,
            "auth.refresh_ttl_secs must be > 0"
        );
        if self.app.environment == Environment::Production {
            let secret = self.auth.jwt_secret.expose_secret();
            anyhow::ensure!(
                secret != DEVELOPMENT_JWT_SECRET,
                "refusing to start in production with the development JWT secret; set EMPORIUM__AUTH__JWT_SECRET"
            );
            anyhow::ensure!(
                secret.len() >= MIN_PRODUCTION_SECRET_BYTES,
                "auth.jwt_secret must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"
            );
            anyhow::ensure!(
                !self.diagnostics.enabled,
                "diagnostics.enabled must be false in production"
            );
        }
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
        s.validate().expect("a strong secret is accepted");
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
    }
}
