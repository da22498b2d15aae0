//! Every route of the OpenAPI document, with each domain's database down in
//! turn, answers `503` (with `Retry-After`) or its normal answer: a
//! dependency outage is never a `500`, even where it crosses from one
//! domain's actor into another's.

use std::time::{Duration, Instant};

use emporium::config::Domain;
use reqwest::Method;
use serde_json::{json, Value};

use crate::db_proxy::DbProxy;
use crate::helpers::{str_of, TestApp, PASSWORD};
use crate::orders::order_body;

/// Routes left out, and why: they end the session whose token the others
/// use, change its password, panic an actor on purpose, or delete the
/// fixtures later rounds need (their outage answers are the same code path
/// as the reads beside them).
const SKIPPED: [(&str, &str); 9] = [
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/logout-all"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/admin/actors/{name}/probe"),
    ("DELETE", "/api/v1/products/{id_or_slug}"),
    ("DELETE", "/api/v1/categories/{id}"),
    ("DELETE", "/api/v1/promotions/{id}"),
    ("DELETE", "/api/v1/carts/{id}"),
    ("POST", "/api/v1/admin/payments/{id}/simulate"),
];

/// The ids the routes' path parameters take.
struct Fixtures {
    admin: String,
    customer: String,
    customer_id: String,
    email: String,
    product: String,
    category: String,
    order: String,
    payment: String,
    promotion: String,
    promotion_code: String,
    guest: String,
    guest_token: String,
}

impl Fixtures {
    fn path(&self, template: &str) -> String {
        let id = if template.contains("/categories/") {
            &self.category
        } else if template.contains("/orders/") {
            &self.order
        } else if template.contains("/payments/") {
            &self.payment
        } else if template.contains("/promotions/") {
            &self.promotion
        } else if template.contains("/carts/") {
            &self.guest
        } else if template.contains("/users/") {
            &self.customer_id
        } else {
            &self.product
        };
        template
            .replace("{id_or_slug}", &self.product)
            .replace("{product_id}", &self.product)
            .replace("{name}", "catalog")
            .replace("{id}", id)
    }

    /// A body the route would accept when everything is up.
    fn body(&self, method: &str, template: &str) -> Value {
        let line = json!({"product_id": self.product, "quantity": 1});
        let address = json!({"name": "Ann Lee", "line1": "1 Main St", "city": "Lyon",
            "postal_code": "69001", "country": "FR"});
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match (method, template) {
            ("POST", "/api/v1/orders") => order_body(json!([line])),
            ("POST", "/api/v1/payments") => json!({"order_id": self.order, "payment_method":
                {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}),
            ("POST", "/api/v1/cart/items" | "/api/v1/carts/{id}/items") => line,
            ("PATCH", _) if template.contains("/items/") => json!({"quantity": 2}),
            ("POST", "/api/v1/cart/checkout") => json!({"shipping_address": address}),
            ("POST", "/api/v1/cart/promotion") => json!({"code": self.promotion_code}),
            ("POST", "/api/v1/cart/merge") => {
                json!({"cart_id": self.guest, "token": self.guest_token})
            }
            ("POST", "/api/v1/auth/login") => json!({"email": self.email, "password": PASSWORD}),
            ("POST", "/api/v1/auth/register") => {
                json!({"email": format!("{}@example.com", &unique[..12]), "password": PASSWORD})
            }
            ("POST", "/api/v1/auth/refresh") => json!({"refresh": "not-a-token"}),
            ("PATCH", "/api/v1/auth/users/{id}") => json!({"is_active": true}),
            ("POST", "/api/v1/categories") => json!({"name": format!("Cat {}", &unique[..8])}),
            ("PATCH", "/api/v1/categories/{id}") => json!({"description": "changed"}),
            ("POST", "/api/v1/products") => json!({"name": format!("Thing {unique}"),
                "sku": unique, "price": 1000, "currency": "EUR", "stock": 10}),
            ("PUT" | "PATCH", "/api/v1/products/{id_or_slug}") => json!({"price": 1100}),
            ("POST", "/api/v1/promotions") => {
                json!({"code": format!("P{}", &unique[..10]), "kind": "percent", "value": 5})
            }
            ("PATCH", "/api/v1/promotions/{id}") => json!({"value": 6}),
            _ => json!({}),
        }
    }
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let (_, admin) = app.admin().await;
    let email = "ann@example.com".to_owned();
    let (customer_id, customer, _) = app.customer(&email).await;
    let category = app.category(&admin, json!({"name": "Kitchen"})).await;
    let product = app
        .product(
            &admin,
            json!({"stock": 1000, "category_id": category["id"]}),
        )
        .await;
    let line = json!([{"product_id": product["id"], "quantity": 1}]);
    let order = crate::orders::place(app, &customer, line.clone()).await;
    let paid = crate::orders::place(app, &customer, line).await;
    let pay = json!({"order_id": paid["id"], "payment_method":
        {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}});
    let payment: Value = app
        .post("/api/v1/payments/", Some(&customer), &pay)
        .await
        .json()
        .await
        .expect("payment");
    let code = format!("P{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let promotion: Value = app
        .post(
            "/api/v1/promotions/",
            Some(&admin),
            &json!({"code": code, "kind": "percent", "value": 10}),
        )
        .await
        .json()
        .await
        .expect("promotion");
    let guest: Value = app
        .post("/api/v1/carts/", None, &json!({}))
        .await
        .json()
        .await
        .expect("guest cart");
    Fixtures {
        admin,
        customer,
        customer_id,
        email,
        product: str_of(&product["id"]),
        category: str_of(&category["id"]),
        order: str_of(&order["id"]),
        payment: str_of(&payment["id"]),
        promotion: str_of(&promotion["id"]),
        promotion_code: code,
        guest: str_of(&guest["id"]),
        guest_token: str_of(&guest["token"]),
    }
}

/// Every documented operation: (method, path template).
fn operations() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("document")).expect("json");
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let method = method.to_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str())
                && !SKIPPED.contains(&(method.as_str(), path.as_str()))
            {
                all.push((method, path.clone()));
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_answers_503_or_normally_with_each_database_down() {
    let mut proxies = Vec::new();
    for domain in Domain::ALL {
        proxies.push((domain, DbProxy::start("127.0.0.1:5432").await));
    }
    let app = TestApp::spawn_with(|s| {
        s.database.acquire_timeout_ms = 300;
        // An outage is detected by the pool (300 ms); the time limits only
        // need to outlast a password hash on a busy machine (a login is
        // not what is under test, and a 504 would be counted a failure).
        s.actors.call_timeout_ms = 8_000;
        s.http.request_timeout_ms = 10_000;
        s.payments.simulator.latency_ms = 2;
        s.payments.poll_interval_ms = 50;
        s.payments.relay_interval_ms = 50;
        for (domain, proxy) in &proxies {
            let url = proxy.url(&format!("{}_{}", s.database.prefix, domain.name()));
            match domain {
                Domain::Auth => s.database.auth_url = Some(url),
                Domain::Catalog => s.database.catalog_url = Some(url),
                Domain::Orders => s.database.orders_url = Some(url),
                Domain::Payments => s.database.payments_url = Some(url),
                Domain::Carts => s.database.carts_url = Some(url),
                Domain::Webhooks => s.database.webhooks_url = Some(url),
                Domain::Notifications => s.database.notifications_url = Some(url),
            }
        }
    })
    .await;
    let fx = fixtures(&app).await;
    let operations = operations();
    assert!(operations.len() > 50, "{}", operations.len());

    let mut failures = Vec::new();
    for (domain, proxy) in &proxies {
        proxy.cut();
        let mut unavailable = 0;
        for (method, template) in &operations {
            let path = fx.path(template);
            let token = if template.contains("/cart") || template == "/api/v1/payments" {
                &fx.customer
            } else {
                &fx.admin
            };
            let mut request = app
                .request(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    &format!("{path}/"),
                    Some(token),
                )
                .header("x-cart-token", &fx.guest_token);
            if method != "GET" && method != "DELETE" {
                request = request.json(&fx.body(method, template));
            }
            let response = request.send().await.expect("answered");
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            if status == 503 {
                unavailable += 1;
            }
            // Readiness answers 503 by design, naming what is down.
            let normal = template == "/readyz" && status == 503;
            if status >= 500 && !(status == 503 && retry_after) && !normal {
                let body = response.text().await.unwrap_or_default();
                failures.push(format!(
                    "{} down: {method} {template} answered {status}: {body}",
                    domain.name()
                ));
            }
        }
        // The outage was felt: routes that need that database said so.
        // Notifications serves no route of its own (mail is queued beside
        // the answers); readiness alone names it.
        let felt = if *domain == Domain::Notifications {
            0
        } else {
            1
        };
        assert!(
            unavailable > felt,
            "{} down: only {unavailable} answers were 503",
            domain.name()
        );
        proxy.restore();
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.get("/readyz", None).await.status() != 200 {
            assert!(
                Instant::now() < deadline,
                "{} never came back",
                domain.name()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
