//! Guest checkout: a guest cart becomes an order that belongs to no user,
//! opened only by the `order_token` its checkout answered, under the same
//! exactly-once, stock, shipping and tax rules as a customer's checkout.

use std::time::{Duration, Instant};

use emporium::config::Domain;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};
use crate::payments::{pay_body, quick, PAYMENTS, VISA};

const CARTS: &str = "/api/v1/carts/";
const ORDERS: &str = "/api/v1/orders/";

/// A guest cart: (id, token).
async fn guest_cart(app: &TestApp) -> (String, String) {
    let r = app.post(CARTS, None, &json!({})).await;
    assert_eq!(r.status(), 201, "making a guest cart");
    let cart: Value = r.body_json().await;
    (str_of(&cart["id"]), str_of(&cart["token"]))
}

/// A request on guest cart `cart` (`/carts/{id}/{tail}`) with `token`.
fn on_cart(
    app: &TestApp,
    method: Method,
    cart: &str,
    tail: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.request(method, &format!("{CARTS}{cart}/{tail}"), None)
        .header("x-cart-token", token)
}

async fn add(app: &TestApp, (cart, token): (&str, &str), product: &Value, quantity: i64) {
    let body = json!({"product_id": product["id"], "quantity": quantity});
    let r = on_cart(app, Method::POST, cart, "items/", token)
        .json(&body)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200, "adding to the guest cart");
}

fn paris() -> Value {
    json!({"name": "Ann Lee", "line1": "1 Rue de Rivoli", "city": "Paris",
        "postal_code": "75001", "country": "FR"})
}

fn body(email: &str) -> Value {
    json!({"email": email, "shipping_address": paris()})
}

async fn checkout(
    app: &TestApp,
    (cart, token): (&str, &str),
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = on_cart(app, Method::POST, cart, "checkout/", token).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("answered")
}

/// A guest order placed from a new cart holding one `product`, shipped by
/// `method`: the reply.
async fn guest_order(app: &TestApp, product: &Value, email: &str, method: &Value) -> Value {
    let (cart, token) = guest_cart(app).await;
    add(app, (&cart, &token), product, 1).await;
    let mut sent = body(email);
    sent["shipping_method_id"] = method["id"].clone();
    let r = checkout(app, (&cart, &token), None, &sent).await;
    assert_eq!(r.status(), 201, "guest checkout");
    r.body_json().await
}

/// `GET /orders/{id}/` with an optional order token and bearer token.
async fn read(
    app: &TestApp,
    order_id: &str,
    order_token: Option<&str>,
    bearer: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(Method::GET, &format!("{ORDERS}{order_id}/"), bearer);
    if let Some(t) = order_token {
        request = request.header("x-order-token", t);
    }
    request.send().await.expect("answered")
}

async fn order_count(app: &TestApp) -> i64 {
    let pool = app.database_pool(Domain::Orders).await;
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .expect("count")
}

/// How many orders hold `needle` anywhere in their row.
async fn orders_holding(app: &TestApp, needle: &str) -> i64 {
    let pool = app.database_pool(Domain::Orders).await;
    sqlx::query_scalar("SELECT count(*) FROM orders o WHERE strpos(row_to_json(o)::text, $1) > 0")
        .bind(needle)
        .fetch_one(&pool)
        .await
        .expect("search")
}

/// How many saved Idempotency-Key answers hold `needle`.
async fn saved_answers_holding(app: &TestApp, needle: &str) -> i64 {
    let pool = app.database_pool(Domain::Orders).await;
    sqlx::query_scalar(
        "SELECT count(*) FROM idempotency_keys \
         WHERE strpos(convert_from(response_body, 'UTF8'), $1) > 0",
    )
    .bind(needle)
    .fetch_one(&pool)
    .await
    .expect("search")
}

async fn created(app: &TestApp, admin: &str, path: &str, body: Value) -> Value {
    let r = app.post(path, Some(admin), &body).await;
    assert_eq!(r.status(), 201, "creating at {path}: {body}");
    r.body_json().await
}

/// France ships by a flat 4.90 method and taxes at 20 %.
async fn french_shop(app: &TestApp, admin: &str) -> Value {
    let zone = created(
        app,
        admin,
        "/api/v1/shipping/zones/",
        json!({"name": "EU", "countries": ["FR"]}),
    )
    .await;
    let method = created(
        app,
        admin,
        "/api/v1/shipping/methods/",
        json!({"zone_id": zone["id"], "name": "Colissimo", "currency": "EUR",
            "rate": {"kind": "flat", "amount": 490}}),
    )
    .await;
    created(
        app,
        admin,
        "/api/v1/tax/rates/",
        json!({"tax_class": "standard", "country": "FR", "rate_bp": 2000}),
    )
    .await;
    method
}

#[tokio::test]
async fn a_guest_checks_out_with_shipping_and_tax_and_reads_and_pays_by_the_token_only() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let method = french_shop(&app, &admin).await;
    let shirt = app
        .product(&admin, json!({"price": 2000, "stock": 10}))
        .await;
    let (cart, token) = guest_cart(&app).await;
    add(&app, (&cart, &token), &shirt, 2).await;

    // The guest cart has the customer cart's shipping routes.
    let r = on_cart(
        &app,
        Method::GET,
        &cart,
        "shipping-methods/?country=FR",
        &token,
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(r.status(), 200);
    let quotes: Value = r.body_json().await;
    assert_eq!(quotes[0]["method_id"], method["id"], "{quotes}");
    let r = on_cart(&app, Method::GET, &cart, "shipping-methods/", "wrong")
        .send()
        .await
        .expect("answered");
    assert_problem(r, 404, "not_found").await;
    let choice = json!({"method_id": method["id"], "address": paris()});
    let r = on_cart(&app, Method::PUT, &cart, "shipping/", &token)
        .json(&choice)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let priced: Value = r.body_json().await;
    assert_eq!(priced["shipping"]["amount"], 490);
    // 40.00 at 20 % = 8.00, shipping 4.90 at 20 % = 0.98.
    assert_eq!(priced["total"], 4000 + 490 + 800 + 98);
    let with_book = json!({"method_id": method["id"], "address_id": uuid::Uuid::new_v4()});
    let r = on_cart(&app, Method::PUT, &cart, "shipping/", &token)
        .json(&with_book)
        .send()
        .await
        .expect("answered");
    assert_problem(r, 422, "validation_error").await;
    let r = on_cart(&app, Method::DELETE, &cart, "shipping/", &token)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let cleared: Value = r.body_json().await;
    assert_eq!(cleared["shipping"], Value::Null);

    // Checkout with the body's address and method, as a customer's.
    let mut order_body = body("  Guest@Example.COM ");
    order_body["shipping_method_id"] = method["id"].clone();
    order_body["expected_total"] = priced["total"].clone();
    let r = checkout(&app, (&cart, &token), None, &order_body).await;
    assert_eq!(r.status(), 201);
    let placed: Value = r.body_json().await;
    let order = &placed["order"];
    let order_token = str_of(&placed["order_token"]);
    let id = str_of(&order["id"]);
    assert_eq!(order["user_id"], Value::Null);
    assert_eq!(order["email"], "guest@example.com");
    assert_eq!(
        (order["shipping"].clone(), order["tax"].clone()),
        (json!(490), json!(898))
    );
    assert_eq!(order["total"], priced["total"]);
    assert_eq!(order["shipping_method"]["method_id"], method["id"]);
    assert_eq!(app.stock_of(&admin, &shirt).await, 8, "stock is reserved");
    // The cart is emptied into the order.
    let r = on_cart(&app, Method::GET, &cart, "", &token)
        .send()
        .await
        .expect("answered");
    let emptied: Value = r.body_json().await;
    assert_eq!(emptied["items"], json!([]));
    // Stored: no user, the email; the token nowhere.
    let pool = app.database_pool(Domain::Orders).await;
    let (user, email): (Option<uuid::Uuid>, Option<String>) =
        sqlx::query_as("SELECT user_id, email FROM orders WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!((user, email.as_deref()), (None, Some("guest@example.com")));
    assert_eq!(orders_holding(&app, &order_token).await, 0);

    // Read back by the token; without it, with a wrong one or another
    // order's, the order does not exist.
    let r = read(&app, &id, Some(&order_token), None).await;
    assert_eq!(r.status(), 200);
    let read_back: Value = r.body_json().await;
    assert_eq!(read_back["total"], order["total"]);
    let other = guest_order(&app, &shirt, "bob@example.com", &method).await;
    let other_token = str_of(&other["order_token"]);
    let (ann_id, ann, _) = app.customer("ann@example.com").await;
    for (t, bearer) in [
        (None, None),
        (Some("wrong"), None),
        (Some(other_token.as_str()), None),
        (Some(&order_token[..42]), None),
        (None, Some(ann.as_str())),
        (Some("wrong"), Some(admin.as_str())),
    ] {
        let r = read(&app, &id, t, bearer).await;
        assert_problem(r, 404, "not_found").await;
    }
    // A token opens its own order only.
    let r = read(
        &app,
        &str_of(&other["order"]["id"]),
        Some(&order_token),
        None,
    )
    .await;
    assert_problem(r, 404, "not_found").await;

    // A customer's own orders work as before, without any token, and
    // their list holds no guest order.
    let items = json!({"product_id": shirt["id"], "quantity": 1});
    let r = app.post("/api/v1/cart/items/", Some(&ann), &items).await;
    assert_eq!(r.status(), 200);
    let mut mine = json!({"shipping_method_id": method["id"]});
    mine["shipping_address"] = paris();
    let r = app.post("/api/v1/cart/checkout/", Some(&ann), &mine).await;
    assert_eq!(r.status(), 201);
    let ann_order: Value = r.body_json().await;
    assert_eq!(ann_order["user_id"], ann_id.as_str());
    assert_eq!(ann_order["email"], Value::Null);
    let ann_order_id = str_of(&ann_order["id"]);
    assert_eq!(
        read(&app, &ann_order_id, None, Some(&ann)).await.status(),
        200
    );
    let r = read(&app, &ann_order_id, None, None).await;
    assert_problem(r, 404, "not_found").await;
    let r = read(&app, &ann_order_id, Some(&order_token), None).await;
    assert_problem(r, 404, "not_found").await;
    let list: Value = app.get(ORDERS, Some(&ann)).await.body_json().await;
    assert_eq!(list["count"], 1);

    // Admins see guest orders like any order.
    let all: Value = app.get(ORDERS, Some(&admin)).await.body_json().await;
    assert_eq!(all["count"], 3);
    let ids: Vec<String> = all["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|o| str_of(&o["id"]))
        .collect();
    assert!(ids.contains(&id), "{ids:?}");
    assert_eq!(read(&app, &id, None, Some(&admin)).await.status(), 200);

    // Paying: the token pays; without it, nothing is found.
    let pay = |t: Option<&str>, bearer: Option<&str>| {
        let mut request = app
            .request(Method::POST, PAYMENTS, bearer)
            .json(&pay_body(order, VISA));
        if let Some(t) = t {
            request = request.header("x-order-token", t);
        }
        request.send()
    };
    let r = pay(None, Some(&ann)).await.expect("answered");
    assert_problem(r, 404, "not_found").await;
    let r = pay(Some(&other_token), None).await.expect("answered");
    assert_problem(r, 404, "not_found").await;
    let r = pay(None, None).await.expect("answered");
    assert_problem(r, 401, "not_authenticated").await;
    let r = pay(Some(&order_token), None).await.expect("answered");
    assert_eq!(r.status(), 202);
    let payment: Value = r.body_json().await;
    assert_eq!(payment["amount"], order["total"]);
    assert_eq!(payment["user_id"], Value::Null);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Value = read(&app, &id, Some(&order_token), None)
            .await
            .body_json()
            .await;
        if now["status"] == "paid" {
            break;
        }
        assert!(Instant::now() < deadline, "never paid: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A customer cannot pay a guest order, paid or not, by their login.
    let r = app
        .post(PAYMENTS, Some(&ann), &pay_body(&other["order"], VISA))
        .await;
    assert_problem(r, 404, "not_found").await;

    // Admins list the guest's payment; the customer's list holds none.
    let payments: Value = app.get(PAYMENTS, Some(&admin)).await.body_json().await;
    assert_eq!(payments["count"], 1);
    assert_eq!(payments["results"][0]["user_id"], Value::Null);
    let theirs: Value = app.get(PAYMENTS, Some(&ann)).await.body_json().await;
    assert_eq!(theirs["count"], 0);

    // A paid guest order (no user to learn for) does not break a build.
    const REPORT: &str = "/api/v1/admin/recommendations/";
    let before: Value = app.get(REPORT, Some(&admin)).await.body_json().await;
    let r = app
        .post(&format!("{REPORT}rebuild/"), Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now: Value = app.get(REPORT, Some(&admin)).await.body_json().await;
        if now["builds"].as_u64() > before["builds"].as_u64() && now["building"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "no build finished: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = app.get("/api/v1/products/recommendations/", None).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn guest_checkouts_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| s.rate_limit.guest_checkouts_per_client = 2).await;
    let (_, admin) = app.admin().await;
    let lamp = app.product(&admin, json!({"stock": 10})).await;
    for _ in 0..2 {
        let (cart, token) = guest_cart(&app).await;
        add(&app, (&cart, &token), &lamp, 1).await;
        let r = checkout(&app, (&cart, &token), None, &body("ann@example.com")).await;
        assert_eq!(r.status(), 201);
    }
    let (cart, token) = guest_cart(&app).await;
    add(&app, (&cart, &token), &lamp, 1).await;
    // Refused by validation first: not counted, and not throttled.
    let r = checkout(&app, (&cart, &token), None, &body("nope")).await;
    assert_problem(r, 422, "validation_error").await;
    let r = checkout(&app, (&cart, &token), None, &body("ann@example.com")).await;
    let problem = assert_problem(r, 429, "rate_limited").await;
    assert!(problem["detail"].is_string(), "{problem}");
    assert_eq!(order_count(&app).await, 2);
}

#[tokio::test]
async fn a_replayed_guest_checkout_answers_the_same_order_and_a_working_token() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let lamp = app.product(&admin, json!({"stock": 5})).await;
    let (cart, token) = guest_cart(&app).await;
    add(&app, (&cart, &token), &lamp, 2).await;
    let sent = body("ann@example.com");
    let first = checkout(&app, (&cart, &token), Some("guest-key-1"), &sent).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.body_json().await;
    let again = checkout(&app, (&cart, &token), Some("guest-key-1"), &sent).await;
    assert_eq!(again.status(), 201);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let again: Value = again.body_json().await;
    assert_eq!(again["order"]["id"], first["order"]["id"]);
    assert_eq!(again["order_token"], first["order_token"]);
    let order_token = str_of(&again["order_token"]);
    let id = str_of(&again["order"]["id"]);
    assert_eq!(
        read(&app, &id, Some(&order_token), None).await.status(),
        200
    );
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &lamp).await, 3);
    // The saved answer holds the order, never its token.
    assert_eq!(
        saved_answers_holding(&app, &id).await,
        1,
        "the key's saved answer holds the order"
    );
    assert_eq!(saved_answers_holding(&app, &order_token).await, 0);
    assert_eq!(orders_holding(&app, &order_token).await, 0);

    // The same key with another body is the usual mismatch; without the
    // cart's token, the key answers nothing at all.
    let other = body("bob@example.com");
    let r = checkout(&app, (&cart, &token), Some("guest-key-1"), &other).await;
    assert_problem(r, 422, "idempotency_error").await;
    let r = checkout(&app, (&cart, "wrong"), Some("guest-key-1"), &sent).await;
    assert_problem(r, 404, "not_found").await;
    assert_eq!(order_count(&app).await, 1);
}

#[tokio::test]
async fn two_concurrent_guest_checkouts_with_one_key_make_one_order() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let lamp = app.product(&admin, json!({"stock": 5})).await;
    let (cart, token) = guest_cart(&app).await;
    add(&app, (&cart, &token), &lamp, 1).await;
    let sent = body("ann@example.com");
    let (a, b) = tokio::join!(
        checkout(&app, (&cart, &token), Some("race"), &sent),
        checkout(&app, (&cart, &token), Some("race"), &sent),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "{statuses:?}"
    );
    let mut ids = Vec::new();
    for r in [a, b] {
        if r.status() == 201 {
            let placed: Value = r.body_json().await;
            ids.push(placed["order"]["id"].clone());
        } else {
            let problem: Value = r.body_json().await;
            let code = str_of(&problem["code"]);
            assert!(
                code == "idempotency_conflict" || code == "checkout_in_progress",
                "{problem}"
            );
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &lamp).await, 4);
}

#[tokio::test]
async fn bad_guest_checkouts_are_clear_4xx_problems_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let lamp = app.product(&admin, json!({"stock": 5})).await;
    let (cart, token) = guest_cart(&app).await;
    add(&app, (&cart, &token), &lamp, 1).await;
    let ours = (cart.as_str(), token.as_str());

    let mut bad_address = paris();
    bad_address["country"] = json!("XX");
    bad_address["name"] = json!(" ");
    let cases = [
        (json!({"shipping_address": paris()}), vec!["email"]),
        (body(""), vec!["email"]),
        (body("not-an-email"), vec!["email"]),
        (body("ann@"), vec!["email"]),
        (
            json!({"email": 5, "shipping_address": paris()}),
            vec!["email"],
        ),
        (
            json!({"email": "ann@example.com", "shipping_address": "Paris"}),
            vec!["shipping_address"],
        ),
        (
            json!({"email": "ann@example.com", "shipping_address": bad_address}),
            vec!["shipping_address.country", "shipping_address.name"],
        ),
        (
            json!({"email": "ann@example.com", "shipping_address_id": uuid::Uuid::new_v4()}),
            vec!["shipping_address_id"],
        ),
        (
            json!({"email": "ann@example.com", "shipping_address": paris(), "expected_total": "10"}),
            vec!["expected_total"],
        ),
    ];
    for (sent, fields) in cases {
        let r = checkout(&app, ours, Some("bad-key"), &sent).await;
        let problem = assert_problem(r, 422, "validation_error").await;
        let mut got = error_fields(&problem);
        got.sort();
        assert_eq!(got, fields, "{sent}");
    }
    // Nothing chosen, nothing given: the address is missing (found by the
    // cart, so answered under a key like any checkout's refusal).
    let r = checkout(&app, ours, None, &json!({"email": "ann@example.com"})).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(error_fields(&problem), ["shipping_address"]);
    let r = app
        .request(Method::POST, &format!("{CARTS}{cart}/checkout/"), None)
        .header("x-cart-token", &token)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .expect("answered");
    assert_problem(r, 400, "malformed_json").await;
    let mut huge = body("ann@example.com");
    huge["shipping_address"]["line2"] = json!("a".repeat(100_000));
    let r = checkout(&app, ours, None, &huge).await;
    assert_problem(r, 413, "payload_too_large").await;
    let r = app
        .request(Method::POST, &format!("{CARTS}{cart}/checkout/"), None)
        .json(&body("ann@example.com"))
        .send()
        .await
        .expect("answered");
    assert_problem(r, 404, "not_found").await;
    let good = body("ann@example.com");
    let ghost = uuid::Uuid::new_v4().to_string();
    for (c, t) in [
        (cart.as_str(), "wrong"),
        (ghost.as_str(), token.as_str()),
        ("not-a-uuid", token.as_str()),
    ] {
        let r = checkout(&app, (c, t), None, &good).await;
        assert_problem(r, 404, "not_found").await;
    }
    let (empty, empty_token) = guest_cart(&app).await;
    let r = checkout(&app, (&empty, &empty_token), None, &good).await;
    assert_problem(r, 409, "cart_empty").await;

    assert_eq!(order_count(&app).await, 0);
    assert_eq!(app.stock_of(&admin, &lamp).await, 5);
    // The refused requests left the key free: the first good one runs.
    let r = checkout(&app, ours, Some("bad-key"), &good).await;
    assert_eq!(r.status(), 201);
    assert_eq!(order_count(&app).await, 1);
}

#[tokio::test]
async fn a_timed_out_guest_checkout_is_answered_by_its_key_with_its_token_and_the_cart_emptied() {
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout_ms = 2_500;
        s.actors.call_timeout_ms = 1_000;
        s.database.acquire_timeout_ms = 500;
        s.orders.idempotency_lock_secs = 3;
    })
    .await;
    let (_, admin) = app.admin().await;
    let lamp = app.product(&admin, json!({"stock": 10})).await;
    let (cart, token) = guest_cart(&app).await;
    let ours = (cart.as_str(), token.as_str());
    add(&app, ours, &lamp, 2).await;
    let sent = body("ann@example.com");
    // Hold the orders table so the order's write waits past the timeouts.
    let orders_db = app.database_pool(Domain::Orders).await;
    let mut blocker = orders_db.begin().await.expect("tx");
    sqlx::query("LOCK TABLE orders IN SHARE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let r = checkout(&app, ours, Some("slow-guest"), &sent).await;
    assert_problem(r, 504, "timeout").await;
    blocker.commit().await.expect("unlock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while order_count(&app).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow checkout's order was written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Once the key's lock is stale, the retry recovers that order (read as
    // the token's holder) and finishes the guest cart's checkout.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let r = checkout(&app, ours, Some("slow-guest"), &sent).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let placed: Value = r.body_json().await;
    assert_eq!(placed["order"]["email"], "ann@example.com");
    let id = str_of(&placed["order"]["id"]);
    let order_token = str_of(&placed["order_token"]);
    assert_eq!(
        read(&app, &id, Some(&order_token), None).await.status(),
        200
    );
    let r = on_cart(&app, Method::GET, &cart, "", &token)
        .send()
        .await
        .expect("answered");
    let now: Value = r.body_json().await;
    assert_eq!(
        now["items"],
        json!([]),
        "the cart was emptied into the order"
    );
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &lamp).await, 8);
    assert_eq!(saved_answers_holding(&app, &order_token).await, 0);
}
