//! Carts: the customer's own and guests', priced fresh from the catalog,
//! with their limits, their access rules and their races.

use emporium::actors::carts::messages::SweepGuestCarts;
use emporium::config::Domain;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, patient_redis, str_of, TestApp};

const CART: &str = "/api/v1/cart/";
const ITEMS: &str = "/api/v1/cart/items/";

fn item(product: &Value, quantity: i64) -> Value {
    json!({"product_id": product["id"], "quantity": quantity})
}

async fn cart_of(app: &TestApp, token: &str) -> Value {
    let r = app.get(CART, Some(token)).await;
    assert_eq!(r.status(), 200);
    r.body_json().await
}

/// A guest cart: (id, token).
async fn guest_cart(app: &TestApp) -> (String, String) {
    let r = app.post("/api/v1/carts/", None, &json!({})).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.body_json().await;
    (str_of(&body["id"]), str_of(&body["token"]))
}

async fn guest_request(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.request(method, path, None);
    if let Some(token) = token {
        request = request.header("x-cart-token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("answered")
}

#[tokio::test]
async fn a_customer_cart_adds_sets_removes_and_clears_priced_from_the_catalog() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app
        .product(&admin, json!({"price": 2500, "stock": 10}))
        .await;
    let mug = app.product(&admin, json!({"price": 800, "stock": 5})).await;

    let empty = cart_of(&app, &ann).await;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["currency"], Value::Null);
    assert_eq!(empty["checkout_ready"], false);

    assert_eq!(
        app.post(ITEMS, Some(&ann), &item(&lamp, 1)).await.status(),
        200
    );
    assert_eq!(
        app.post(ITEMS, Some(&ann), &item(&lamp, 2)).await.status(),
        200
    );
    let r = app.post(ITEMS, Some(&ann), &item(&mug, 1)).await;
    let cart: Value = r.body_json().await;
    assert_eq!(cart["items"][0]["quantity"], 3, "adding adds to the line");
    assert_eq!(cart["items"][0]["line_total"], 7500);
    assert_eq!(cart["items"][0]["max_quantity"], 10);
    assert_eq!(cart["items"][1]["name"], mug["name"]);
    assert_eq!(cart["subtotal"], 8300);
    assert_eq!(cart["total"], 8300);
    assert_eq!(cart["discount"], 0);
    assert_eq!(cart["currency"], "EUR");
    assert_eq!(cart["checkout_ready"], true);
    assert_eq!(cart, cart_of(&app, &ann).await, "the cart persists");

    let line = format!("{ITEMS}{}/", str_of(&mug["id"]));
    let cart: Value = app
        .patch(&line, Some(&ann), &json!({"quantity": 4}))
        .await
        .body_json()
        .await;
    assert_eq!(cart["items"][1]["quantity"], 4);
    let cart: Value = app
        .patch(&line, Some(&ann), &json!({"quantity": 0}))
        .await
        .body_json()
        .await;
    assert_eq!(
        cart["items"].as_array().expect("items").len(),
        1,
        "0 removes"
    );
    assert_problem(app.delete(&line, Some(&ann)).await, 404, "not_found").await;
    assert_problem(
        app.patch(&line, Some(&ann), &json!({"quantity": 1})).await,
        404,
        "not_found",
    )
    .await;

    let cart: Value = app.delete(CART, Some(&ann)).await.body_json().await;
    assert_eq!(cart["items"], json!([]));
}

#[tokio::test]
async fn prices_and_availability_are_read_fresh_and_unavailable_lines_block() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app
        .product(&admin, json!({"price": 2500, "stock": 10}))
        .await;
    let mug = app.product(&admin, json!({"price": 800, "stock": 5})).await;
    app.post(ITEMS, Some(&ann), &item(&lamp, 2)).await;
    app.post(ITEMS, Some(&ann), &item(&mug, 2)).await;

    let lamp_path = format!("/api/v1/products/{}/", str_of(&lamp["id"]));
    let mug_path = format!("/api/v1/products/{}/", str_of(&mug["id"]));
    assert_eq!(
        app.patch(&lamp_path, Some(&admin), &json!({"price": 3000}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.patch(&mug_path, Some(&admin), &json!({"is_active": false}))
            .await
            .status(),
        200
    );
    let cart = cart_of(&app, &ann).await;
    assert_eq!(cart["items"][0]["unit_price"], 3000);
    assert_eq!(cart["items"][0]["price_changed_from"], 2500);
    assert_eq!(cart["items"][1]["available"], false);
    assert_eq!(cart["subtotal"], 6000, "only available lines count");
    assert_eq!(cart["checkout_ready"], false);
    let codes: Vec<&str> = cart["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["price_changed", "product_unavailable"]);

    // Stock falling below the line marks it too.
    app.patch(
        &mug_path,
        Some(&admin),
        &json!({"is_active": true, "stock": 1}),
    )
    .await;
    let cart = cart_of(&app, &ann).await;
    assert_eq!(cart["items"][1]["available"], false);
    assert_eq!(cart["items"][1]["max_quantity"], 1);
    assert!(cart["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .any(|w| w["code"] == "insufficient_stock"));
}

#[tokio::test]
async fn limits_and_stock_are_refused_with_what_is_available() {
    let app = TestApp::spawn_with(|s| {
        s.carts.max_lines = 2;
        s.carts.max_quantity = 5;
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let scarce = app.product(&admin, json!({"stock": 3})).await;
    let plenty = app.product(&admin, json!({"stock": 1000})).await;
    let third = app.product(&admin, json!({"stock": 1000})).await;

    let r = app.post(ITEMS, Some(&ann), &item(&scarce, 4)).await;
    let problem = assert_problem(r, 409, "insufficient_stock").await;
    assert!(problem["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("available 3"));
    assert_eq!(
        app.post(ITEMS, Some(&ann), &item(&scarce, 3))
            .await
            .status(),
        200
    );
    assert_problem(
        app.post(ITEMS, Some(&ann), &item(&scarce, 1)).await,
        409,
        "insufficient_stock",
    )
    .await;

    let r = app.post(ITEMS, Some(&ann), &item(&plenty, 6)).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(error_fields(&problem), ["quantity"]);
    assert_eq!(
        app.post(ITEMS, Some(&ann), &item(&plenty, 5))
            .await
            .status(),
        200
    );
    assert_problem(
        app.post(ITEMS, Some(&ann), &item(&plenty, 1)).await,
        422,
        "validation_error",
    )
    .await;
    let r = app.post(ITEMS, Some(&ann), &item(&third, 1)).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "too_many");

    // Unknown and inactive products cannot go in.
    let unknown = json!({"product_id": uuid::Uuid::new_v4(), "quantity": 1});
    let problem = assert_problem(
        app.post(ITEMS, Some(&ann), &unknown).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "unknown");
    assert_eq!(
        cart_of(&app, &ann).await["items"]
            .as_array()
            .expect("items")
            .len(),
        2
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app.product(&admin, json!({})).await;
    for (body, field) in [
        (json!({"quantity": 1}), "product_id"),
        (json!({"product_id": lamp["id"]}), "quantity"),
        (json!({"product_id": "lamp", "quantity": 1}), "product_id"),
        (
            json!({"product_id": lamp["id"], "quantity": "2"}),
            "quantity",
        ),
        (
            json!({"product_id": lamp["id"], "quantity": 1.5}),
            "quantity",
        ),
        (json!({"product_id": lamp["id"], "quantity": 0}), "quantity"),
        (
            json!({"product_id": lamp["id"], "quantity": -1}),
            "quantity",
        ),
        (
            json!({"product_id": lamp["id"], "quantity": 99_999_999_999_i64}),
            "quantity",
        ),
        (
            json!({"product_id": lamp["id"], "quantity": 1, "price": 1}),
            "price",
        ),
    ] {
        let r = app.post(ITEMS, Some(&ann), &body).await;
        let problem = assert_problem(r, 422, "validation_error").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    let r = app
        .request(Method::POST, ITEMS, Some(&ann))
        .header("content-type", "application/json")
        .body("{\"product_id\":")
        .send()
        .await
        .expect("answered");
    assert_problem(r, 400, "malformed_json").await;
    let huge = json!({"product_id": lamp["id"], "quantity": 1, "x": "a".repeat(100_000)});
    assert_problem(
        app.post(ITEMS, Some(&ann), &huge).await,
        413,
        "payload_too_large",
    )
    .await;
    let line = format!("{ITEMS}not-a-uuid/");
    assert_problem(
        app.patch(&line, Some(&ann), &json!({"quantity": 1})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.get(CART, None).await, 401, "not_authenticated").await;
    assert_problem(
        app.get(CART, Some("not.a.token")).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn one_customer_never_reaches_another_customers_cart() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    let lamp = app.product(&admin, json!({})).await;
    app.post(ITEMS, Some(&ann), &item(&lamp, 2)).await;
    assert_eq!(cart_of(&app, &bob).await["items"], json!([]));
    let line = format!("{ITEMS}{}/", str_of(&lamp["id"]));
    assert_problem(
        app.patch(&line, Some(&bob), &json!({"quantity": 9})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.delete(&line, Some(&bob)).await, 404, "not_found").await;
    assert_eq!(cart_of(&app, &ann).await["items"][0]["quantity"], 2);
}

#[tokio::test]
async fn a_guest_cart_opens_only_with_its_token_and_merges_once() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app.product(&admin, json!({"stock": 4})).await;
    let mug = app.product(&admin, json!({"stock": 50})).await;
    let (id, token) = guest_cart(&app).await;
    let cart_path = format!("/api/v1/carts/{id}/");
    let items = format!("/api/v1/carts/{id}/items/");

    let r = guest_request(
        &app,
        Method::POST,
        &items,
        Some(&token),
        Some(item(&lamp, 3)),
    )
    .await;
    assert_eq!(r.status(), 200);
    guest_request(
        &app,
        Method::POST,
        &items,
        Some(&token),
        Some(item(&mug, 1)),
    )
    .await;
    let r = guest_request(&app, Method::GET, &cart_path, Some(&token), None).await;
    let cart: Value = r.body_json().await;
    assert_eq!(cart["id"], json!(id));
    assert_eq!(cart["items"].as_array().expect("items").len(), 2);

    // Without the token, with another, or by a malformed id: as if absent.
    let (_, other_token) = guest_cart(&app).await;
    for (path, token) in [
        (cart_path.as_str(), None),
        (cart_path.as_str(), Some(other_token.as_str())),
        (cart_path.as_str(), Some("")),
        ("/api/v1/carts/not-a-uuid/", Some(token.as_str())),
    ] {
        let r = guest_request(&app, Method::GET, path, token, None).await;
        assert_problem(r, 404, "not_found").await;
    }
    let r = guest_request(&app, Method::POST, &items, None, Some(item(&lamp, 1))).await;
    assert_problem(r, 404, "not_found").await;

    // Ann already has 2 lamps: merging adds, capped at the stock (4).
    app.post(ITEMS, Some(&ann), &item(&lamp, 2)).await;
    let merge = json!({"cart_id": id, "token": token});
    let wrong = json!({"cart_id": id, "token": other_token});
    assert_problem(
        app.post("/api/v1/cart/merge/", Some(&ann), &wrong).await,
        404,
        "not_found",
    )
    .await;
    let r = app.post("/api/v1/cart/merge/", Some(&ann), &merge).await;
    assert_eq!(r.status(), 200);
    let merged: Value = r.body_json().await;
    assert_eq!(merged["items"][0]["quantity"], 4);
    assert_eq!(merged["items"][1]["quantity"], 1);
    // Twice: harmless.
    let again: Value = app
        .post("/api/v1/cart/merge/", Some(&ann), &merge)
        .await
        .body_json()
        .await;
    assert_eq!(again["items"], merged["items"]);
    // The guest cart is retired; nobody else can merge it.
    let r = guest_request(&app, Method::GET, &cart_path, Some(&token), None).await;
    assert_problem(r, 404, "not_found").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    assert_problem(
        app.post("/api/v1/cart/merge/", Some(&bob), &merge).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.post("/api/v1/cart/merge/", None, &merge).await,
        401,
        "not_authenticated",
    )
    .await;
}

#[tokio::test]
async fn abandoned_guest_carts_expire_and_are_swept() {
    let app = TestApp::spawn().await;
    let (id, token) = guest_cart(&app).await;
    let (kept, kept_token) = guest_cart(&app).await;
    let pool = app.database_pool(Domain::Carts).await;
    sqlx::query("UPDATE carts SET updated_at = now() - interval '31 days' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&pool)
        .await
        .expect("aged");
    let path = format!("/api/v1/carts/{id}/");
    let r = guest_request(&app, Method::GET, &path, Some(&token), None).await;
    assert_problem(r, 404, "not_found").await;
    let swept = app.actors.carts.call(SweepGuestCarts).await.expect("swept");
    assert_eq!(swept, 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM carts")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 1);
    let r = guest_request(
        &app,
        Method::GET,
        &format!("/api/v1/carts/{kept}/"),
        Some(&kept_token),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = guest_request(
        &app,
        Method::DELETE,
        &format!("/api/v1/carts/{kept}/"),
        Some(&kept_token),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn concurrent_adds_sum_and_never_pass_the_stock() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let plenty = app.product(&admin, json!({"stock": 1000})).await;
    let scarce = app.product(&admin, json!({"stock": 5})).await;

    let one = item(&plenty, 1);
    let adds = (0..20).map(|_| app.post(ITEMS, Some(&ann), &one));
    let statuses: Vec<u16> = join_all(adds)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(cart_of(&app, &ann).await["items"][0]["quantity"], 20);

    let one = item(&scarce, 1);
    let adds = (0..12).map(|_| app.post(ITEMS, Some(&ann), &one));
    let statuses: Vec<u16> = join_all(adds)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(cart_of(&app, &ann).await["items"][1]["quantity"], 5);
}

#[tokio::test]
async fn guest_carts_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.rate_limit.guest_carts_per_client = 2;
    })
    .await;
    guest_cart(&app).await;
    guest_cart(&app).await;
    let r = app.post("/api/v1/carts/", None, &json!({})).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 429, "rate_limited").await;
}

/// A change that needs no catalog before it commits (removing a line) while
/// the catalog's database is down: the removal commits, and its answer is
/// the cart as stored, never a 503 a client would retry. (An add asks the
/// catalog first, so it fails before committing; its render falls back the
/// same way when the catalog goes away between the two.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_change_answers_the_cart_as_stored_while_the_catalog_is_down() {
    let proxy = crate::db_proxy::DbProxy::start("127.0.0.1:5432").await;
    let app = TestApp::spawn_with(|s| {
        s.database.acquire_timeout_ms = 300;
        s.database.catalog_url = Some(proxy.url(&format!("{}_catalog", s.database.prefix)));
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app.product(&admin, json!({"price": 2500})).await;
    let mug = app.product(&admin, json!({"price": 800})).await;
    for product in [&lamp, &mug] {
        assert_eq!(
            app.post(ITEMS, Some(&ann), &item(product, 2))
                .await
                .status(),
            200
        );
    }

    // Renamed: every instance's view drops the catalog's variants, so the
    // answers below must ask the catalog (a view still holding them would
    // price the cart without it).
    let r = app
        .patch(
            &format!("/api/v1/products/{}/", str_of(&lamp["id"])),
            Some(&admin),
            &json!({"name": "Renamed lamp"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    proxy.cut();
    let mug_line = format!("{ITEMS}{}/", str_of(&mug["id"]));
    let r = app.delete(&mug_line, Some(&ann)).await;
    assert_eq!(r.status(), 200, "a committed removal is answered, not 503");
    let cart: Value = r.body_json().await;
    let items = cart["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "the removal committed: {cart}");
    assert_eq!(items[0]["product_id"], lamp["id"]);
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(cart["checkout_ready"], false);
    assert_eq!(cart["warnings"][0]["code"], "prices_unconfirmed", "{cart}");
    // The client's retry finds the line already gone: applied once.
    assert_problem(app.delete(&mug_line, Some(&ann)).await, 404, "not_found").await;
    // A read cannot price the cart and says so; nothing was changed.
    let r = app.get(CART, Some(&ann)).await;
    assert_eq!(r.status(), 503);

    proxy.restore();
    let mut cart = Value::Null;
    for _ in 0..50 {
        let r = app.get(CART, Some(&ann)).await;
        if r.status() == 200 {
            cart = r.body_json().await;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(cart["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        cart["warnings"],
        json!([]),
        "priced again once the catalog is back"
    );
    assert_eq!(cart["subtotal"], 5000);
    assert_eq!(cart["checkout_ready"], true);
}
