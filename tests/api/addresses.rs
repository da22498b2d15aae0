//! The address book: each customer's own addresses, one default of each
//! kind enforced under races, a limit of 20, and orders and checkouts that
//! copy an address from the book.

use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, str_of, TestApp};

const BOOK: &str = "/api/v1/auth/me/addresses/";

fn address(city: &str) -> Value {
    json!({"name": "Ann Lee", "line1": "1 Main St", "city": city, "postal_code": "69001",
        "country": "fr"})
}

async fn add(app: &TestApp, token: &str, body: &Value) -> Value {
    let r = app.post(BOOK, Some(token), body).await;
    assert_eq!(r.status(), 201, "{body}");
    r.body_json().await
}

async fn book(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get(BOOK, Some(token)).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.body_json().await;
    page["results"].as_array().expect("results").clone()
}

fn defaults(book: &[Value], kind: &str) -> Vec<String> {
    book.iter()
        .filter(|a| a[kind] == true)
        .map(|a| str_of(&a["city"]))
        .collect()
}

#[tokio::test]
async fn addresses_are_added_listed_changed_and_removed() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let lyon = add(&app, &token, &address("Lyon")).await;
    // The first address is both defaults; fields come back normalised.
    assert_eq!(lyon["country"], "FR");
    assert_eq!(lyon["is_default_shipping"], true);
    assert_eq!(lyon["is_default_billing"], true);
    let mut body = address("Paris");
    body["is_default_shipping"] = json!(true);
    let paris = add(&app, &token, &body).await;
    let all = book(&app, &token).await;
    assert_eq!(all.len(), 2);
    assert_eq!(defaults(&all, "is_default_shipping"), ["Paris"]);
    assert_eq!(defaults(&all, "is_default_billing"), ["Lyon"]);

    let path = format!("{BOOK}{}/", str_of(&paris["id"]));
    let r = app
        .patch(
            &path,
            Some(&token),
            &json!({"city": "Nice", "is_default_billing": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let all = book(&app, &token).await;
    assert_eq!(defaults(&all, "is_default_billing"), ["Nice"]);
    assert_eq!(defaults(&all, "is_default_shipping"), ["Nice"]);
    let one: Value = app.get(&path, Some(&token)).await.body_json().await;
    assert_eq!(one["city"], "Nice");
    assert_eq!(one["line1"], "1 Main St");

    let r = app.delete(&path, Some(&token)).await;
    assert_eq!(r.status(), 204);
    let r = app.get(&path, Some(&token)).await;
    assert_problem(r, 404, "not_found").await;
    let all = book(&app, &token).await;
    assert_eq!(all.len(), 1);
    assert!(defaults(&all, "is_default_shipping").is_empty());
    let r = app.delete(&path, Some(&token)).await;
    assert_problem(r, 404, "not_found").await;
}

#[tokio::test]
async fn bad_requests_and_other_customers_are_refused() {
    let app = TestApp::spawn().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    let hers = add(&app, &ann, &address("Lyon")).await;
    let path = format!("{BOOK}{}/", str_of(&hers["id"]));

    // Bob sees nothing of Ann's, and cannot change or remove it.
    assert!(book(&app, &bob).await.is_empty());
    assert_problem(app.get(&path, Some(&bob)).await, 404, "not_found").await;
    let r = app.patch(&path, Some(&bob), &json!({"city": "Rome"})).await;
    assert_problem(r, 404, "not_found").await;
    assert_problem(app.delete(&path, Some(&bob)).await, 404, "not_found").await;
    assert_eq!(book(&app, &ann).await.len(), 1);

    // No token, a bad token.
    assert_problem(app.get(BOOK, None).await, 401, "not_authenticated").await;
    let r = app.post(BOOK, Some("not-a-token"), &address("Lyon")).await;
    assert_eq!(r.status(), 401);

    // Missing, wrong-typed, unknown and bad fields; an empty patch; a huge body.
    for (body, field) in [
        (
            json!({"name": "A", "line1": "1", "city": "X", "country": "FR"}),
            "postal_code",
        ),
        (
            json!({"name": "A", "line1": "1", "city": 3, "postal_code": "1", "country": "FR"}),
            "city",
        ),
        (
            json!({"name": "A", "line1": "1", "city": "X", "postal_code": "1", "country": "XX"}),
            "country",
        ),
        (
            json!({"name": " ", "line1": "1", "city": "X", "postal_code": "1", "country": "FR"}),
            "name",
        ),
        (
            {
                let mut b = address("X");
                b["is_default_shipping"] = json!("yes");
                b
            },
            "is_default_shipping",
        ),
        (
            {
                let mut b = address("X");
                b["colour"] = json!("red");
                b
            },
            "colour",
        ),
    ] {
        let r = app.post(BOOK, Some(&ann), &body).await;
        let problem = assert_problem(r, 422, "validation_error").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let r = app.patch(&path, Some(&ann), &json!({})).await;
    assert_problem(r, 422, "validation_error").await;
    let r = app
        .patch(&path, Some(&ann), &json!({"country": "ZZ"}))
        .await;
    assert_problem(r, 422, "validation_error").await;
    let mut huge = address("Lyon");
    huge["line2"] = json!("x".repeat(2 * 1024 * 1024));
    let r = app.post(BOOK, Some(&ann), &huge).await;
    assert_eq!(r.status(), 413);
    let r = app.get(&format!("{BOOK}not-a-uuid/"), Some(&ann)).await;
    assert_problem(r, 404, "not_found").await;
    assert_eq!(book(&app, &ann).await.len(), 1, "nothing half-written");
}

#[tokio::test]
async fn concurrent_additions_keep_one_default_and_the_limit() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    // 25 at once, each asking to be the default for shipping.
    let adds = (0..25).map(|n| {
        let mut body = address(&format!("City {n}"));
        body["is_default_shipping"] = json!(true);
        let app = &app;
        let token = token.clone();
        async move { app.post(BOOK, Some(&token), &body).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(adds).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );
    let r = app
        .get(&format!("{BOOK}?page_size=100"), Some(&token))
        .await;
    let page: Value = r.body_json().await;
    let all = page["results"].as_array().expect("results").clone();
    assert_eq!(page["count"], 20);
    assert_eq!(defaults(&all, "is_default_shipping").len(), 1);
    assert_eq!(defaults(&all, "is_default_billing").len(), 1);
    let r = app.post(BOOK, Some(&token), &address("One more")).await;
    assert_problem(r, 409, "address_limit").await;

    // Switching the default from many requests at once still leaves one.
    let switches = all.iter().map(|a| {
        let path = format!("{BOOK}{}/", str_of(&a["id"]));
        let app = &app;
        let token = token.clone();
        async move {
            app.patch(&path, Some(&token), &json!({"is_default_billing": true}))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(switches).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let r = app
        .get(&format!("{BOOK}?page_size=100"), Some(&token))
        .await;
    let page: Value = r.body_json().await;
    let all = page["results"].as_array().expect("results").clone();
    assert_eq!(defaults(&all, "is_default_billing").len(), 1);
}

#[tokio::test]
async fn orders_and_checkouts_copy_an_address_from_the_book() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    let lamp = app
        .product(&admin, json!({"name": "Lamp", "stock": 10}))
        .await;
    let saved = add(&app, &ann, &address("Lyon")).await;
    let address_id = str_of(&saved["id"]);
    let items = json!([{"product_id": lamp["id"], "quantity": 1}]);

    let r = app
        .post(
            "/api/v1/orders/",
            Some(&ann),
            &json!({"items": items, "shipping_address_id": address_id}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["shipping_address"]["city"], "Lyon");
    // Editing the book never changes a placed order.
    let r = app
        .patch(
            &format!("{BOOK}{address_id}/"),
            Some(&ann),
            &json!({"city": "Nice"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let again: Value = app
        .get(
            &format!("/api/v1/orders/{}/", str_of(&order["id"])),
            Some(&ann),
        )
        .await
        .body_json()
        .await;
    assert_eq!(again["shipping_address"]["city"], "Lyon");

    // Another customer's address is not found; neither or both is refused.
    let r = app
        .post(
            "/api/v1/orders/",
            Some(&bob),
            &json!({"items": items, "shipping_address_id": address_id}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = app
        .post("/api/v1/orders/", Some(&ann), &json!({"items": items}))
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["field"], "shipping_address");
    let r = app
        .post(
            "/api/v1/orders/",
            Some(&ann),
            &json!({"items": items, "shipping_address_id": address_id,
                    "shipping_address": address("Lyon")}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["field"], "shipping_address_id");
    assert_eq!(
        app.stock_of(&admin, &lamp).await,
        9,
        "refusals hold no stock"
    );

    // Checkout takes it too.
    let r = app
        .post(
            "/api/v1/cart/items/",
            Some(&ann),
            &json!({"product_id": lamp["id"], "quantity": 2}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .post(
            "/api/v1/cart/checkout/",
            Some(&bob),
            &json!({"shipping_address_id": address_id}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .request(reqwest::Method::POST, "/api/v1/cart/checkout/", Some(&ann))
        .header("idempotency-key", "book-checkout-1")
        .json(&json!({"shipping_address_id": address_id}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["shipping_address"]["city"], "Nice");
    assert_eq!(order["items"][0]["quantity"], 2);
}
