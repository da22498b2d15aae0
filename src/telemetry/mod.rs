//! Logs, metrics and traces. Logging: request spans carry the request id,
//! so every line logged while serving a request names it.

pub mod metrics;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogSettings;

/// Installs the global subscriber; `RUST_LOG` overrides `log.level`.
/// Calling it twice is harmless (the second call is ignored).
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = if settings.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
