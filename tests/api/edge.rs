use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{actor_metrics, assert_problem, TestApp};

#[tokio::test]
async fn paths_work_with_and_without_the_trailing_slash() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.customer("ann@example.com").await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&access)).await.status(),
        200
    );
    assert_eq!(
        app.get("/api/v1/auth/me/", Some(&access)).await.status(),
        200
    );
    assert_eq!(app.get("/healthz/", None).await.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    let r = app.get("/healthz", None).await;
    let generated = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(generated.len(), 36);
    // An id that could forge log lines is replaced.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .expect("sent");
    assert_ne!(r.headers()["x-request-id"], "a b\tc");
    // Errors carry it too.
    let r = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "err-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.headers()["x-request-id"], "err-1");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get("/api/v1/nothing-here/", None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/api/v1/auth/login/", None).await,
        405,
        "method_not_allowed",
    )
    .await;
    let r = app
        .client
        .delete(app.url("/api/v1/auth/register"))
        .send()
        .await
        .expect("sent");
    assert_problem(r, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn health_and_readiness_report_each_dependency() {
    let app = TestApp::spawn().await;
    let health: Value = app.get("/healthz", None).await.body_json().await;
    assert_eq!(health["status"], "ok");
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status(), 200);
    let ready: Value = r.body_json().await;
    for check in ["auth", "catalog", "orders", "payments", "redis"] {
        assert_eq!(ready["checks"][check]["ok"], true, "{check}: {ready}");
    }
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let app =
        TestApp::spawn_with(|s| s.http.cors_allowed_origins = vec!["https://shop.example".into()])
            .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://shop.example").await.expect("sent");
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = preflight("https://evil.example").await.expect("sent");
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // A storefront page opens its guest cart with X-Cart-Token.
    let guest_cart = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/carts/x/items/"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-cart-token",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(guest_cart.status(), 200);
}

#[tokio::test]
async fn a_request_past_the_time_limit_gets_504() {
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout_ms = 300;
        s.actors.call_timeout_ms = 300;
        s.database.acquire_timeout_ms = 250;
    })
    .await;
    let (_, admin) = app.admin().await;
    let r = app
        .post(
            "/api/v1/admin/actors/catalog/probe/",
            Some(&admin),
            &json!({"sleep_ms": 2000}),
        )
        .await;
    assert!(r.headers().contains_key("x-request-id"));
    assert_problem(r, 504, "timeout").await;
}

#[tokio::test]
async fn an_actor_slower_than_the_call_timeout_gets_504_and_is_counted() {
    let app = TestApp::spawn_with(|s| {
        s.actors.call_timeout_ms = 300;
        s.database.acquire_timeout_ms = 250;
    })
    .await;
    let (_, admin) = app.admin().await;
    let r = app
        .post(
            "/api/v1/admin/actors/orders/probe/",
            Some(&admin),
            &json!({"sleep_ms": 2000}),
        )
        .await;
    assert_problem(r, 504, "timeout").await;
    let orders = actor_metrics(&app, &admin, "orders").await;
    assert_eq!(orders["timeouts"], 1);
}
