//! Traces cross actor hops. A test binary of its own: it installs the
//! process-wide subscriber, with an in-memory span exporter, which the main
//! suite (many instances in one process) must not share.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;

use helpers::{str_of, TestApp};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Spans of `trace` exported so far (the simple processor exports each
/// span as it ends; an actor's span may end just after the response).
async fn spans_of(
    exporter: &InMemorySpanExporter,
    trace: TraceId,
    names: &[&str],
) -> Vec<SpanData> {
    for _ in 0..50 {
        let spans: Vec<SpanData> = exporter
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .collect();
        if names.iter().all(|n| spans.iter().any(|s| s.name == *n)) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("spans {names:?} never all arrived");
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn one_request_is_one_trace_from_the_edge_through_two_actors() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let settings = helpers::test_settings();
    let _guard = emporium::telemetry::init_with(&settings.log, Some(provider));

    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let product = app.product(&admin, json!({"stock": 5})).await;

    // Placing an order goes edge → orders actor → catalog actor (stock).
    let response = app
        .request(reqwest::Method::POST, "/api/v1/orders/", Some(&token))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({
            "items": [{"product_id": product["id"], "quantity": 1}],
            "shipping_address": {"name": "Ann Lee", "line1": "1 Main St", "city": "Lyon",
                                 "postal_code": "69001", "country": "fr"}
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let order: serde_json::Value = response.json().await.expect("json");
    assert!(!str_of(&order["id"]).is_empty());

    let trace = TraceId::from_hex(CALLER_TRACE).expect("hex");
    let spans = spans_of(
        &exporter,
        trace,
        &["request", "orders CreateOrder", "catalog ReserveForOrder"],
    )
    .await;
    let by_name: HashMap<&str, &SpanData> = spans.iter().map(|s| (s.name.as_ref(), s)).collect();
    let edge = by_name["request"];
    let orders = by_name["orders CreateOrder"];
    let catalog = by_name["catalog ReserveForOrder"];

    // The caller's span is the edge's parent; each hop is a child of the one
    // before it, so the trace reads edge → orders → catalog.
    assert_eq!(
        edge.parent_span_id,
        SpanId::from_hex(CALLER_SPAN).expect("hex")
    );
    assert_eq!(orders.parent_span_id, edge.span_context.span_id());
    assert_eq!(catalog.parent_span_id, orders.span_context.span_id());
    // The request id travels with the trace.
    assert_eq!(
        attribute(edge, "request_id").as_deref(),
        Some(request_id.as_str())
    );
    assert_eq!(attribute(edge, "trace_id").as_deref(), Some(CALLER_TRACE));
    // SQL ran inside the actor spans and shows there as events.
    let statements = |span: &SpanData| {
        span.events
            .iter()
            .filter(|e| {
                e.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "db.statement")
            })
            .count()
    };
    assert!(
        statements(orders) > 0,
        "orders' SQL in its span: {:?}",
        orders.events
    );
    assert!(statements(catalog) > 0, "catalog's SQL in its span");
}
