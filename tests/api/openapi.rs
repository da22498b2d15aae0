//! The OpenAPI document: served, rendered, committed up to date, and in
//! step with the routes the server really registers, both ways.

use std::collections::BTreeSet;
use std::path::Path;

use actix_web::{test as actix_test, web, App, HttpRequest, HttpResponse};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::JsonBody as _;
use crate::helpers::TestApp;

const DOCUMENT_PATH: &str = "docs/openapi.json";

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOCUMENT_PATH);
    std::fs::read_to_string(path).expect("docs/openapi.json is committed")
}

#[test]
fn committed_document_is_current() {
    let generated = emporium::http::openapi::document_json();
    assert!(
        committed().trim_end() == generated.trim_end(),
        "{DOCUMENT_PATH} is stale: run `cargo run --quiet -- openapi > {DOCUMENT_PATH}` and commit it"
    );
}

#[tokio::test]
async fn the_document_and_its_page_are_served() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"));
    let served: Value = r.body_json().await;
    let committed: Value = serde_json::from_str(&committed()).expect("committed json");
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());

    // Both spellings of the page, as with every route.
    for path in ["/api/docs/", "/api/docs"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let content_type = r.headers()["content-type"].to_str().expect("ascii");
        assert!(content_type.starts_with("text/html"));
        let page = r.text().await.expect("text");
        assert!(page.contains(r#"spec-url="/api/v1/openapi.json""#));
    }
}

/// `(METHOD, template)` of every operation in the document.
fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(&emporium::http::openapi::document_json()).expect("json");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// Every resource pattern the router holds, read from actix's own route
/// map (its debug form is the only public view of the whole tree): a
/// nested map's patterns are prefixed by its scope's.
async fn registered_patterns() -> BTreeSet<String> {
    let app = actix_test::init_service(
        App::new()
            .configure(emporium::http::routes)
            .configure(emporium::http::metrics::routes)
            .route(
                "/__route_map",
                web::get().to(|req: HttpRequest| async move {
                    HttpResponse::Ok().body(format!("{:#?}", req.resource_map()))
                }),
            ),
    )
    .await;
    let request = actix_test::TestRequest::get()
        .uri("/__route_map")
        .to_request();
    let dump = String::from_utf8(actix_test::call_and_read_body(&app, request).await.to_vec())
        .expect("utf-8");
    let mut patterns = BTreeSet::new();
    // (indent of the map holding the pattern, prefix it adds)
    let mut scopes: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut pattern_at: Option<usize> = None;
    for line in dump.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text == "patterns: Single(" {
            pattern_at = Some(indent);
        } else if let Some(at) = pattern_at.take() {
            let pattern = text.trim_end_matches(',').trim_matches('"').to_owned();
            pending = Some((at, pattern));
        } else if let Some(flag) = text.strip_prefix("is_prefix: ") {
            let Some((at, pattern)) = pending.take() else {
                continue;
            };
            scopes.retain(|(depth, _)| *depth < at);
            let base: String = scopes.iter().map(|(_, p)| p.as_str()).collect();
            let full = format!("{base}{pattern}");
            if flag.starts_with("true") {
                scopes.push((at, pattern));
            } else if full != "/__route_map" {
                patterns.insert(full);
            }
        }
    }
    assert!(
        patterns.len() > 20,
        "could not read the route map; its debug form changed:\n{dump}"
    );
    patterns
}

#[tokio::test]
async fn every_registered_route_is_documented_and_every_documented_one_is_served() {
    let app = TestApp::spawn().await;
    let sample = "00000000-0000-4000-8000-000000000000";
    let mut registered = BTreeSet::new();
    for pattern in registered_patterns().await {
        let path: String = pattern
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    sample
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            // A pattern without a route for the method answers 405; any
            // other answer (200, 401, 404 for a missing id...) means the
            // route exists.
            let status = app
                .client
                .request(method.clone(), app.url(&path))
                .send()
                .await
                .expect("answered")
                .status();
            if status != 405 {
                registered.insert((method.to_string(), pattern.clone()));
            }
        }
    }
    let documented = documented();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes without a document entry: {undocumented:?}\n\
         document entries without a route: {unserved:?}"
    );
}

/// What Schemathesis found where the server and the document disagreed,
/// each now decided one way and pinned.
#[tokio::test]
async fn bodies_are_read_as_the_document_describes_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let product = app
        .product(&admin, serde_json::json!({"name": "Lamp", "stock": 5}))
        .await;
    let path = format!("/api/v1/products/{}/", product["id"].as_str().expect("id"));

    // JSON Schema's integer includes 7.0 and 1e1.
    let r = app
        .patch(
            &path,
            Some(&admin),
            &serde_json::json!({"stock": 7.0, "price": 1e3}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let row: Value = r.body_json().await;
    assert_eq!(
        (row["stock"].clone(), row["price"].clone()),
        (7.into(), 1000.into())
    );
    let r = app
        .patch(&path, Some(&admin), &serde_json::json!({"stock": 7.5}))
        .await;
    crate::helpers::assert_problem(r, 422, "validation_error").await;

    // In a patch, `null` clears only what may be empty; elsewhere it is a
    // type error, not "unchanged".
    let r = app
        .patch(&path, Some(&admin), &serde_json::json!({"price": null}))
        .await;
    let problem = crate::helpers::assert_problem(r, 422, "validation_error").await;
    assert_eq!(crate::helpers::error_fields(&problem), ["price"]);
    let r = app
        .patch(
            &path,
            Some(&admin),
            &serde_json::json!({"category_id": null}),
        )
        .await;
    assert_eq!(r.status(), 200);

    // A probe may sleep a minute at most.
    let r = app
        .post(
            "/api/v1/admin/actors/catalog/probe/",
            Some(&admin),
            &serde_json::json!({"sleep_ms": 60_001}),
        )
        .await;
    crate::helpers::assert_problem(r, 422, "validation_error").await;

    // A transition's optional body may be `null`.
    let (_, customer, _) = app.customer("ann@example.com").await;
    let order = crate::orders::place(
        &app,
        &customer,
        serde_json::json!([{"product_id": product["id"], "quantity": 1}]),
    )
    .await;
    let r = app
        .request(
            Method::POST,
            &format!(
                "/api/v1/orders/{}/cancel/",
                order["id"].as_str().expect("id")
            ),
            Some(&customer),
        )
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
}
