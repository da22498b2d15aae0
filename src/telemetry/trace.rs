//! Distributed tracing: W3C trace context in and out, and the OTLP export.
//!
//! Spans are `tracing` spans; when `observability.otlp_endpoint` is set, a
//! `tracing-opentelemetry` layer turns them into OpenTelemetry spans and a
//! batch processor ships them over OTLP/HTTP. Without it nothing is
//! exported, but an incoming `traceparent`'s trace id still reaches the logs.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The service name spans are exported under.
pub const SERVICE_NAME: &str = "emporium";

/// Whether spans are exported (set once, when the subscriber is installed).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that an OpenTelemetry layer is installed.
pub(crate) fn set_exporting() {
    EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether spans are exported: span names worth building only then.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// A provider that batches spans to the OTLP/HTTP collector at `endpoint`
/// (e.g. `http://otel-collector:4318/v1/traces`). Export failures are
/// logged by the SDK and never reach a request.
pub fn otlp_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(3))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build())
}

/// What every exported span says about its process.
pub fn resource() -> Resource {
    Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()
}

/// Reads W3C trace context from actix-web's request headers.
struct ActixHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for ActixHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes W3C trace context into an outgoing request's headers.
struct OutgoingHeaders<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for OutgoingHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the caller's trace when the request carries a
/// valid `traceparent`, and returns the trace id to log: the exported
/// span's when spans are exported, else the caller's, else none.
pub fn adopt_caller_trace(
    span: &tracing::Span,
    headers: &actix_web::http::header::HeaderMap,
) -> Option<String> {
    // The common case costs nothing: no caller trace and no export.
    if !exporting() && !headers.contains_key("traceparent") {
        return None;
    }
    let caller = TraceContextPropagator::new().extract(&ActixHeaders(headers));
    let caller_span = caller.span().span_context().clone();
    if caller_span.is_valid() {
        // Fails only when no OpenTelemetry layer is installed.
        let _ = span.set_parent(caller);
    }
    let own = span.context().span().span_context().clone();
    if own.is_valid() {
        Some(own.trace_id().to_string())
    } else if caller_span.is_valid() {
        Some(caller_span.trace_id().to_string())
    } else {
        None
    }
}

/// `traceparent` (and `tracestate`) for a call made inside `span`, so the
/// receiver joins its trace; nothing when no trace is being recorded.
pub fn outgoing_headers(span: &tracing::Span) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let context: Context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut OutgoingHeaders(&mut headers));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_trace_id_is_logged_even_without_export() {
        let mut headers = actix_web::http::header::HeaderMap::new();
        headers.insert(
            actix_web::http::header::HeaderName::from_static("traceparent"),
            actix_web::http::header::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let id = adopt_caller_trace(&tracing::Span::none(), &headers);
        assert_eq!(id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        let mut headers = actix_web::http::header::HeaderMap::new();
        headers.insert(
            actix_web::http::header::HeaderName::from_static("traceparent"),
            actix_web::http::header::HeaderValue::from_static("00-zz-00-01"),
        );
        assert_eq!(adopt_caller_trace(&tracing::Span::none(), &headers), None);
        assert!(outgoing_headers(&tracing::Span::none()).is_empty());
    }
}
