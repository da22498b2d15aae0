//! What metrics and tracing add to every request, measured alone (a whole
//! request is tens of microseconds; load runs on this shared machine cannot
//! resolve a few percent): counting an HTTP request, reading the caller's
//! trace context, and opening an actor message's span under the production
//! log subscriber (`info`, formatted, written nowhere).

use criterion::{criterion_group, criterion_main, Criterion};
use emporium::actors::runtime::Traced;
use emporium::telemetry::metrics::Metrics;
use emporium::telemetry::trace::adopt_caller_trace;

fn http_metrics(c: &mut Criterion) {
    let metrics = Metrics::new();
    let mut group = c.benchmark_group("observability");
    group.bench_function("record_http_request", |b| {
        b.iter(|| {
            metrics.record_http(
                "GET",
                "/api/v1/products/{id_or_slug}".to_owned(),
                "2xx",
                0.0004,
            )
        })
    });
    group.bench_function("render_metrics", |b| b.iter(|| metrics.render().len()));
    group.finish();
}

fn trace_context(c: &mut Criterion) {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let plain = HeaderMap::new();
    let mut traced = HeaderMap::new();
    traced.insert(
        HeaderName::from_static("traceparent"),
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let mut group = c.benchmark_group("observability");
    group.bench_function("request_span_without_traceparent", |b| {
        b.iter(|| {
            let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
            adopt_caller_trace(&span, &plain)
        })
    });
    group.bench_function("request_span_with_traceparent", |b| {
        b.iter(|| {
            let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
            if let Some(id) = adopt_caller_trace(&span, &traced) {
                span.record("trace_id", id);
            }
        })
    });
    let parent = tracing::info_span!("request");
    group.bench_function("actor_message_span", |b| {
        b.iter(|| {
            let message = Traced {
                msg: (),
                parent: parent.clone(),
            };
            let span = message.span("catalog");
            let _entered = span.enter();
        })
    });
    group.finish();
}

criterion_group!(benches, http_metrics, trace_context);
criterion_main!(benches);
