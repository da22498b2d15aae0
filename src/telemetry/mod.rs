//! Logs, metrics and traces. Logging: request spans carry the request id
//! (and the trace id), so every line logged while serving a request names
//! them. Traces: the same spans, exported over OTLP when configured.

pub mod metrics;
pub mod trace;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::config::LogSettings;

/// What exported traces hold beyond the log level: each SQL statement, as
/// an event on the span that ran it.
const TRACE_FILTER: &str = "info,sqlx::query=debug";

/// Keeps span export running; dropping it flushes what is buffered.
#[must_use = "dropping the guard stops span export"]
pub struct TracingGuard(Option<SdkTracerProvider>);

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("flushing traces failed: {e}");
            }
        }
    }
}

/// Installs the global subscriber for logs only; `RUST_LOG` overrides
/// `log.level`. Calling it twice is harmless (the second call is ignored).
pub fn init(settings: &LogSettings) {
    drop(init_with(settings, None));
}

/// Installs the global subscriber: logs, and spans exported through
/// `provider` when one is given (see [`trace::otlp_provider`]).
pub fn init_with(settings: &LogSettings, provider: Option<SdkTracerProvider>) -> TracingGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if settings.format == "json" {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_target(false)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer().with_target(false).with_filter(filter).boxed()
    };
    if provider.is_some() {
        trace::set_exporting();
    }
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(trace::SERVICE_NAME))
            .with_filter(EnvFilter::new(TRACE_FILTER))
    });
    let _ = Registry::default().with(logs).with(spans).try_init();
    TracingGuard(provider)
}
