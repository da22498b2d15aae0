//! `GET /metrics`: parsed with a Prometheus text parser; requests move the
//! counters they should; the actor figures are the admin report's; the
//! bearer token and the separate port protect it.

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue, Sample};
use serde_json::json;

use crate::helpers::{actor_metrics, assert_problem, str_of, TestApp};

type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

/// Scrapes `base`/metrics and parses it with a Prometheus text grammar.
async fn scrape(app: &TestApp, base: &str, token: Option<&str>) -> Scrape {
    let mut request = app.client.get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    parse_prometheus(&text).unwrap_or_else(|e| panic!("invalid exposition ({e:?}):\n{text}"))
}

/// The series of family `name` whose labels include every pair of `labels`.
fn matching<'a>(
    scrape: &'a Scrape,
    name: &str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a Sample<PrometheusValue>> {
    scrape
        .families
        .get(name)
        .into_iter()
        .flat_map(|family| family.iter_samples())
        .filter(move |s| {
            let set = s.get_labelset().expect("labels");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
}

/// The value of the matching series, summed (0 when none matches).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    matching(scrape, name, labels)
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(s) => s.count.unwrap_or(0) as f64,
        })
        .sum()
}

/// Whether a series `name` with every pair of `labels` exists.
fn has(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> bool {
    matching(scrape, name, labels).next().is_some()
}

/// Every value the label `label` takes in the family `name`.
fn label_values(scrape: &Scrape, name: &str, label: &str) -> Vec<String> {
    scrape.families.get(name).map_or_else(Vec::new, |family| {
        family
            .iter_samples()
            .filter_map(|s| {
                let set = s.get_labelset().expect("labels");
                set.get_label_value(label).map(str::to_owned)
            })
            .collect()
    })
}

#[actix_rt::test]
async fn requests_move_the_counters_by_route_template() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let product = app.product(&admin, json!({})).await;
    let path = format!("/api/v1/products/{}/", str_of(&product["id"]));
    let route = [
        ("method", "GET"),
        ("route", "/api/v1/products/{id_or_slug}"),
        ("status", "2xx"),
    ];
    let before = scrape(&app, &app.address, None).await;
    for _ in 0..3 {
        assert_eq!(app.get(&path, None).await.status(), 200);
    }
    assert_eq!(
        app.get("/api/v1/products/not-a-thing/x/", None)
            .await
            .status(),
        404
    );
    let after = scrape(&app, &app.address, None).await;

    let counted = value(&after, "emporium_http_requests_total", &route)
        - value(&before, "emporium_http_requests_total", &route);
    assert_eq!(counted, 3.0);
    let timed = value(&after, "emporium_http_request_duration_seconds", &route)
        - value(&before, "emporium_http_request_duration_seconds", &route);
    assert_eq!(timed, 3.0, "the latency histogram counts the same requests");
    // Raw paths never become labels: the unknown path is "unmatched".
    let routes = label_values(&after, "emporium_http_requests_total", "route");
    assert!(
        routes.iter().all(|r| !r.contains("not-a-thing")),
        "{routes:?}"
    );
    assert_eq!(
        value(
            &after,
            "emporium_http_requests_total",
            &[("route", "unmatched"), ("status", "4xx")]
        ),
        1.0
    );
}

/// Every series of the HTTP families, as one count.
fn http_series(scrape: &Scrape) -> usize {
    [
        "emporium_http_requests_total",
        "emporium_http_request_duration_seconds",
    ]
    .iter()
    .filter_map(|name| scrape.families.get(*name))
    .map(|family| family.iter_samples().count())
    .sum()
}

#[actix_rt::test]
async fn made_up_http_methods_share_one_label_and_grow_no_series() {
    let app = TestApp::spawn().await;
    let invent = |i: usize| {
        let method = reqwest::Method::from_bytes(format!("X{i:04}QZ").as_bytes()).expect("token");
        app.client
            .request(method, app.url("/api/v1/products/"))
            .send()
    };
    // One made-up method first, so the `other` series exist before counting.
    // A scrape is counted after it renders: one first, so that its own
    // series exist in both counts.
    invent(0).await.expect("sent");
    scrape(&app, &app.address, None).await;
    let before = scrape(&app, &app.address, None).await;
    for i in 1..=500 {
        invent(i).await.expect("sent");
    }
    let after = scrape(&app, &app.address, None).await;
    assert_eq!(http_series(&after), http_series(&before));
    let methods = label_values(&after, "emporium_http_requests_total", "method");
    assert!(methods.iter().all(|m| !m.starts_with('X')), "{methods:?}");
    assert_eq!(
        value(
            &after,
            "emporium_http_requests_total",
            &[("method", "other")]
        ) - value(
            &before,
            "emporium_http_requests_total",
            &[("method", "other")]
        ),
        500.0
    );
}

#[actix_rt::test]
async fn actor_pool_and_payment_figures_are_exported() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let report = actor_metrics(&app, &admin, "auth").await;
    let scraped = scrape(&app, &app.address, None).await;

    for actor in ["auth", "catalog", "orders", "payments", "recommender"] {
        let labels = [("actor", actor)];
        assert!(
            has(&scraped, "emporium_actor_mailbox_capacity", &labels),
            "{actor} has no capacity gauge"
        );
        assert!(has(
            &scraped,
            "emporium_actor_messages_handled_total",
            &labels
        ));
    }
    // The same source as the admin report: capacity is equal, and the
    // handled count can only have grown since the report was read.
    let auth = [("actor", "auth")];
    assert_eq!(
        value(&scraped, "emporium_actor_mailbox_capacity", &auth),
        report["capacity"].as_f64().expect("capacity")
    );
    let handled = value(&scraped, "emporium_actor_messages_handled_total", &auth);
    assert!(handled >= report["handled"].as_f64().expect("handled") && handled > 0.0);
    assert!(value(&scraped, "emporium_actor_handler_duration_seconds", &auth) > 0.0);

    for domain in ["auth", "catalog", "orders", "payments"] {
        let labels = [("domain", domain)];
        assert!(value(&scraped, "emporium_db_pool_max_connections", &labels) >= 1.0);
    }
    assert!(has(&scraped, "emporium_payment_queue_depth", &[]));
    assert!(has(
        &scraped,
        "emporium_payment_oldest_job_age_seconds",
        &[]
    ));
    assert!(has(&scraped, "emporium_recommender_model_version", &[]));
    // Registering and logging in went through the rate limiter.
    assert!(
        value(
            &scraped,
            "emporium_rate_limit_decisions_total",
            &[("decision", "allowed")]
        ) >= 1.0
    );
}

#[actix_rt::test]
async fn a_metrics_token_is_required_when_set() {
    let token = "scrape-token-0123456789";
    let app = TestApp::spawn_with(|s| {
        s.observability.metrics_token = Some(token.to_owned().into());
    })
    .await;
    assert_problem(
        app.get("/metrics", None).await,
        401,
        "metrics_token_invalid",
    )
    .await;
    assert_problem(
        app.get("/metrics", Some("scrape-token-wrong-123")).await,
        401,
        "metrics_token_invalid",
    )
    .await;
    let scraped = scrape(&app, &app.address, Some(token)).await;
    assert!(has(&scraped, "emporium_actor_mailbox_capacity", &[]));
}

#[actix_rt::test]
async fn a_separate_metrics_port_takes_metrics_off_the_api_port() {
    let app = TestApp::spawn_with(|s| s.observability.metrics_port = Some(0)).await;
    assert_problem(app.get("/metrics", None).await, 404, "not_found").await;
    let base = app.metrics_address.clone().expect("a metrics port");
    let scraped = scrape(&app, &base, None).await;
    assert!(has(
        &scraped,
        "emporium_actor_mailbox_capacity",
        &[("actor", "orders")]
    ));
}
