//! Discount codes and checkout: admin management, applying a code, turning
//! the cart into exactly one order, and the races around both.

use emporium::actors::carts::promotions::ReconcilePromotionUses;
use emporium::config::Domain;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};

const CART: &str = "/api/v1/cart/";
const ITEMS: &str = "/api/v1/cart/items/";
const PROMOTION: &str = "/api/v1/cart/promotion/";
const CHECKOUT: &str = "/api/v1/cart/checkout/";
const PROMOTIONS: &str = "/api/v1/promotions/";

fn address() -> Value {
    json!({"shipping_address": {"name": "Ann Lee", "line1": "1 Main St", "city": "Lyon",
        "postal_code": "69001", "country": "FR"}})
}

async fn add(app: &TestApp, token: &str, product: &Value, quantity: i64) {
    let body = json!({"product_id": product["id"], "quantity": quantity});
    let r = app.post(ITEMS, Some(token), &body).await;
    assert_eq!(r.status(), 200, "adding to the cart");
}

async fn promotion(app: &TestApp, admin: &str, fields: Value) -> Value {
    let mut body = json!({"code": format!("P{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        "kind": "percent", "value": 10});
    for (k, v) in fields.as_object().expect("object") {
        body[k] = v.clone();
    }
    let r = app.post(PROMOTIONS, Some(admin), &body).await;
    assert_eq!(r.status(), 201, "creating promotion {body}");
    r.body_json().await
}

async fn checkout(app: &TestApp, token: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, CHECKOUT, Some(token))
        .json(&address());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
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

#[tokio::test]
async fn admins_manage_promotions_and_customers_cannot() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let body = json!({"code": "spring-10", "kind": "percent", "value": 10});
    assert_problem(
        app.post(PROMOTIONS, Some(&ann), &body).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.get(PROMOTIONS, Some(&ann)).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.post(PROMOTIONS, None, &body).await,
        401,
        "not_authenticated",
    )
    .await;

    let r = app.post(PROMOTIONS, Some(&admin), &body).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.body_json().await;
    assert_eq!(created["code"], "SPRING-10");
    assert_eq!(created["uses"], 0);
    let same = json!({"code": "Spring-10", "kind": "fixed", "value": 500, "currency": "EUR"});
    assert_problem(
        app.post(PROMOTIONS, Some(&admin), &same).await,
        409,
        "code_taken",
    )
    .await;

    for (bad, fields) in [
        (
            json!({"code": "x y", "kind": "percent", "value": 10}),
            vec!["code"],
        ),
        (
            json!({"code": "A", "kind": "percent", "value": 0}),
            vec!["value"],
        ),
        (
            json!({"code": "A", "kind": "percent", "value": 101}),
            vec!["value"],
        ),
        (
            json!({"code": "A", "kind": "fixed", "value": 100}),
            vec!["currency"],
        ),
        (
            json!({"code": "A", "kind": "fixed", "value": 100, "currency": "XXY"}),
            vec!["currency"],
        ),
        (
            json!({"code": "A", "kind": "percent", "value": 5, "starts_at": "2030-01-02T00:00:00Z",
            "ends_at": "2030-01-01T00:00:00Z"}),
            vec!["ends_at"],
        ),
        (
            json!({"code": "A", "kind": "percent", "value": 5, "max_uses": 0}),
            vec!["max_uses"],
        ),
        (
            json!({"code": "A", "kind": "half", "value": 5}),
            vec!["kind"],
        ),
        (
            json!({"code": "A", "kind": "percent", "value": "5"}),
            vec!["value"],
        ),
        (
            json!({"code": "A", "kind": "percent", "value": 5, "extra": 1}),
            vec!["extra"],
        ),
        (json!({"kind": "percent", "value": 5}), vec!["code"]),
    ] {
        let problem = assert_problem(
            app.post(PROMOTIONS, Some(&admin), &bad).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), fields, "{bad}");
    }

    let path = format!("{PROMOTIONS}{}/", str_of(&created["id"]));
    let r = app
        .patch(
            &path,
            Some(&admin),
            &json!({"active": false, "max_uses": 3}),
        )
        .await;
    let changed: Value = r.body_json().await;
    assert_eq!(
        (changed["active"].clone(), changed["max_uses"].clone()),
        (json!(false), json!(3))
    );
    let r = app
        .patch(&path, Some(&admin), &json!({"max_uses": null}))
        .await;
    assert_eq!(
        r.json::<Value>().await.expect("json")["max_uses"],
        Value::Null
    );
    assert_problem(
        app.patch(&path, Some(&admin), &json!({"value": 500})).await,
        422,
        "validation_error",
    )
    .await;
    let list: Value = app.get(PROMOTIONS, Some(&admin)).await.body_json().await;
    assert_eq!(list["count"], 1);
    assert_eq!(app.delete(&path, Some(&admin)).await.status(), 204);
    assert_problem(app.get(&path, Some(&admin)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{PROMOTIONS}nope/"), Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_code_applies_only_when_its_rules_hold_and_shows_its_discount() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app
        .product(&admin, json!({"price": 1001, "stock": 10}))
        .await;
    add(&app, &ann, &lamp, 1).await;

    assert_problem(
        app.post(PROMOTION, Some(&ann), &json!({"code": "NOPE"}))
            .await,
        404,
        "not_found",
    )
    .await;
    let ended = promotion(&app, &admin, json!({"ends_at": "2020-01-01T00:00:00Z"})).await;
    let later = promotion(&app, &admin, json!({"starts_at": "2099-01-01T00:00:00Z"})).await;
    let minimum = promotion(&app, &admin, json!({"min_subtotal": 5000})).await;
    let dollars = promotion(
        &app,
        &admin,
        json!({"kind": "fixed", "value": 100, "currency": "USD"}),
    )
    .await;
    let off = promotion(&app, &admin, json!({"active": false})).await;
    for (p, code) in [
        (&ended, "promotion_expired"),
        (&later, "promotion_not_started"),
        (&minimum, "promotion_below_minimum"),
        (&dollars, "promotion_currency_mismatch"),
        (&off, "promotion_inactive"),
    ] {
        let r = app
            .post(PROMOTION, Some(&ann), &json!({"code": p["code"]}))
            .await;
        assert_problem(r, 422, code).await;
    }

    // 10% of 1001 is 100.1: rounded down to 100.
    let tenth = promotion(&app, &admin, json!({})).await;
    let lower = str_of(&tenth["code"]).to_lowercase();
    let r = app
        .post(PROMOTION, Some(&ann), &json!({"code": lower}))
        .await;
    assert_eq!(r.status(), 200);
    let cart: Value = r.body_json().await;
    assert_eq!(cart["promotion_code"], tenth["code"]);
    assert_eq!(
        (
            cart["subtotal"].clone(),
            cart["discount"].clone(),
            cart["total"].clone()
        ),
        (json!(1001), json!(100), json!(901))
    );

    // Deactivated meanwhile: the cart says so and cannot be checked out.
    let path = format!("{PROMOTIONS}{}/", str_of(&tenth["id"]));
    app.patch(&path, Some(&admin), &json!({"active": false}))
        .await;
    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    assert_eq!(cart["discount"], 0);
    assert_eq!(cart["checkout_ready"], false);
    assert!(cart["warnings"]
        .as_array()
        .expect("w")
        .iter()
        .any(|w| w["code"] == "promotion_inactive"));
    let before = order_count(&app).await;
    assert_problem(checkout(&app, &ann, None).await, 422, "promotion_inactive").await;
    assert_eq!(order_count(&app).await, before, "nothing placed");

    let cart: Value = app.delete(PROMOTION, Some(&ann)).await.body_json().await;
    assert!(cart.get("promotion_code").is_none());
    assert_eq!(cart["total"], 1001);
}

#[tokio::test]
async fn checkout_places_one_discounted_order_empties_the_cart_and_replays() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app
        .product(&admin, json!({"price": 333, "stock": 10}))
        .await;
    let mug = app
        .product(&admin, json!({"price": 335, "stock": 10}))
        .await;
    add(&app, &ann, &lamp, 2).await;
    add(&app, &ann, &mug, 1).await;
    let tenth = promotion(&app, &admin, json!({})).await;
    app.post(PROMOTION, Some(&ann), &json!({"code": tenth["code"]}))
        .await;

    let r = checkout(&app, &ann, Some("checkout-1")).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["subtotal"], 1001);
    assert_eq!(order["discount"], 100);
    assert_eq!(order["total"], 901);
    assert_eq!(order["promotion_code"], tenth["code"]);
    let shares: Vec<i64> = order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["discount"].as_i64().expect("discount"))
        .collect();
    assert_eq!(shares, [67, 33], "largest remainder, adding up to 100");
    assert_eq!(app.stock_of(&admin, &lamp).await, 8, "stock reserved");

    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    assert_eq!(cart["items"], json!([]));
    assert!(cart.get("promotion_code").is_none());

    // A retry with the same key answers the same order; nothing else moves.
    let r = checkout(&app, &ann, Some("checkout-1")).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let again: Value = r.body_json().await;
    assert_eq!(again["id"], order["id"]);
    assert_eq!(order_count(&app).await, 1);
    let used: Value = app
        .get(
            &format!("{PROMOTIONS}{}/", str_of(&tenth["id"])),
            Some(&admin),
        )
        .await
        .body_json()
        .await;
    assert_eq!(used["uses"], 1);

    // An empty cart, or one with an unavailable line, places nothing.
    assert_problem(checkout(&app, &ann, None).await, 409, "cart_empty").await;
    add(&app, &ann, &mug, 1).await;
    let path = format!("/api/v1/products/{}/", str_of(&mug["id"]));
    app.patch(&path, Some(&admin), &json!({"is_active": false}))
        .await;
    assert_problem(checkout(&app, &ann, None).await, 409, "cart_not_ready").await;
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &mug).await, 9, "nothing reserved");

    // Bad bodies.
    let r = app.post(CHECKOUT, Some(&ann), &json!({})).await;
    assert_eq!(
        error_fields(&assert_problem(r, 422, "validation_error").await),
        ["shipping_address"]
    );
    let r = app
        .post(
            CHECKOUT,
            Some(&ann),
            &json!({"shipping_address": {"name": "x"}}),
        )
        .await;
    assert_problem(r, 422, "validation_error").await;
    assert_problem(
        app.post(CHECKOUT, None, &address()).await,
        401,
        "not_authenticated",
    )
    .await;
}

#[tokio::test]
async fn concurrent_checkouts_of_one_cart_place_one_order() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app.product(&admin, json!({"stock": 100})).await;
    add(&app, &ann, &lamp, 3).await;
    let keys: Vec<String> = (0..8).map(|i| format!("race-{i}")).collect();
    let attempts = keys.iter().map(|k| checkout(&app, &ann, Some(k)));
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 201 || s == 409),
        "{statuses:?}"
    );
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &lamp).await, 97);
}

#[tokio::test]
async fn fifty_checkouts_with_ten_uses_left_give_exactly_ten_discounts() {
    // Fifty sign-ups from one address: past the per-client limits.
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.register_per_client = 100;
        s.rate_limit.login_per_client = 100;
    })
    .await;
    let (_, admin) = app.admin().await;
    let lamp = app
        .product(&admin, json!({"price": 1000, "stock": 1000}))
        .await;
    let code = promotion(&app, &admin, json!({"max_uses": 10})).await;
    let customers = join_all((0..50).map(|i| {
        let app = &app;
        async move { app.customer(&format!("shopper{i}@example.com")).await.1 }
    }))
    .await;
    for token in &customers {
        add(&app, token, &lamp, 1).await;
        let r = app
            .post(PROMOTION, Some(token), &json!({"code": code["code"]}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let results = join_all(customers.iter().map(|t| checkout(&app, t, None))).await;
    let mut placed = 0;
    let mut used_up = 0;
    for r in results {
        match r.status().as_u16() {
            201 => {
                let order: Value = r.body_json().await;
                assert_eq!(order["discount"], 100);
                placed += 1;
            }
            409 => {
                let problem: Value = r.body_json().await;
                assert_eq!(problem["code"], "promotion_used_up");
                used_up += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((placed, used_up), (10, 40));
    assert_eq!(order_count(&app).await, 10);
    let path = format!("{PROMOTIONS}{}/", str_of(&code["id"]));
    let counted: Value = app.get(&path, Some(&admin)).await.body_json().await;
    assert_eq!(counted["uses"], 10, "refused checkouts consumed no use");
    assert_eq!(
        app.stock_of(&admin, &lamp).await,
        990,
        "failed checkouts reserved nothing"
    );
}

#[tokio::test]
async fn a_cancelled_order_gives_its_use_back() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    let lamp = app.product(&admin, json!({"stock": 100})).await;
    let once = promotion(&app, &admin, json!({"max_uses": 1})).await;
    for token in [&ann, &bob] {
        add(&app, token, &lamp, 1).await;
        app.post(PROMOTION, Some(token), &json!({"code": once["code"]}))
            .await;
    }
    let order: Value = checkout(&app, &ann, None).await.body_json().await;
    assert_problem(checkout(&app, &bob, None).await, 409, "promotion_used_up").await;

    let cancel = format!("/api/v1/orders/{}/cancel/", str_of(&order["id"]));
    assert_eq!(
        app.post(&cancel, Some(&ann), &json!({})).await.status(),
        200
    );
    let released = app
        .actors
        .carts
        .call(ReconcilePromotionUses { min_age_secs: 0 })
        .await
        .expect("reconciled");
    assert_eq!(released, 1);
    let r = checkout(&app, &bob, None).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<Value>().await.expect("json")["discount"].as_i64(),
        Some(100)
    );
}

#[tokio::test]
async fn a_checkout_stopped_after_placing_its_order_is_finished_not_repeated() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (ann_id, ann, _) = app.customer("ann@example.com").await;
    let lamp = app.product(&admin, json!({"stock": 100})).await;
    add(&app, &ann, &lamp, 2).await;
    let order: Value = checkout(&app, &ann, None).await.body_json().await;

    // What a crash between placing the order and emptying the cart leaves:
    // the cart still full and still claimed for that order, not recorded.
    let pool = app.database_pool(Domain::Carts).await;
    let cart_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM carts WHERE user_id = $1::uuid")
        .bind(&ann_id)
        .fetch_one(&pool)
        .await
        .expect("cart");
    sqlx::query("DELETE FROM checkouts WHERE cart_id = $1")
        .bind(cart_id)
        .execute(&pool)
        .await
        .expect("unrecorded");
    sqlx::query(
        "UPDATE carts SET checkout_order_id = $2::uuid, \
           checkout_started_at = now() - interval '10 minutes' WHERE id = $1",
    )
    .bind(cart_id)
    .bind(str_of(&order["id"]))
    .execute(&pool)
    .await
    .expect("claimed");
    sqlx::query(
        "INSERT INTO cart_items (cart_id, variant_id, quantity, seen_price, seen_currency) \
         VALUES ($1, $2::uuid, 2, 1000, 'EUR')",
    )
    .bind(cart_id)
    .bind(str_of(&lamp["id"]))
    .execute(&pool)
    .await
    .expect("refilled");

    let r = checkout(&app, &ann, None).await;
    assert_eq!(r.status(), 201);
    let again: Value = r.body_json().await;
    assert_eq!(again["id"], order["id"], "the same order, not a second");
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &lamp).await, 98);
    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    assert_eq!(cart["items"], json!([]));
}

#[tokio::test]
async fn checkout_racing_a_price_change_carries_one_consistent_price() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let lamp = app
        .product(&admin, json!({"price": 1000, "stock": 1000}))
        .await;
    let code = promotion(&app, &admin, json!({"value": 25})).await;
    let path = format!("/api/v1/products/{}/", str_of(&lamp["id"]));
    for round in 0..6 {
        let (_, token, _) = app.customer(&format!("racer{round}@example.com")).await;
        add(&app, &token, &lamp, 3).await;
        app.post(PROMOTION, Some(&token), &json!({"code": code["code"]}))
            .await;
        let new_price = 1000 + 100 * (round + 1);
        let change = json!({"price": new_price});
        let (r, _) = futures_util::join!(
            checkout(&app, &token, None),
            app.patch(&path, Some(&admin), &change)
        );
        assert_eq!(r.status(), 201);
        let order: Value = r.body_json().await;
        let line = &order["items"][0];
        let unit = line["unit_price"].as_i64().expect("unit");
        let previous = 1000 + 100 * round;
        assert!(unit == previous || unit == new_price, "{unit}");
        assert_eq!(line["line_total"].as_i64(), Some(unit * 3));
        assert_eq!(order["subtotal"].as_i64(), Some(unit * 3));
        assert_eq!(order["discount"].as_i64(), Some(unit * 3 / 4));
        assert_eq!(order["total"].as_i64(), Some(unit * 3 - unit * 3 / 4));
    }
}

#[tokio::test]
async fn a_timed_out_checkout_is_answered_by_its_key_with_the_cart_emptied() {
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout_ms = 2_500;
        s.actors.call_timeout_ms = 1_000;
        s.database.acquire_timeout_ms = 500;
        s.orders.idempotency_lock_secs = 3;
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let lamp = app.product(&admin, json!({"stock": 10})).await;
    add(&app, &ann, &lamp, 2).await;
    // Hold the orders table so the order's write waits past the timeouts.
    let orders_db = app.database_pool(Domain::Orders).await;
    let mut blocker = orders_db.begin().await.expect("tx");
    sqlx::query("LOCK TABLE orders IN SHARE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let r = checkout(&app, &ann, Some("slow-checkout")).await;
    assert_problem(r, 504, "timeout").await;
    blocker.commit().await.expect("unlock");
    let mut placed = false;
    for _ in 0..50 {
        if order_count(&app).await == 1 {
            placed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(placed, "the slow checkout's order was written");

    // Once the key's lock is stale, the retry recovers that order and
    // finishes the checkout it belonged to.
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let r = checkout(&app, &ann, Some("slow-checkout")).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    assert_eq!(
        cart["items"],
        json!([]),
        "the cart was emptied into the order"
    );
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &lamp).await, 8);
    // And a new checkout starts clean.
    add(&app, &ann, &lamp, 1).await;
    assert_eq!(checkout(&app, &ann, None).await.status(), 201);
    assert_eq!(order_count(&app).await, 2);
}

/// Every cart, promotion and checkout route (the guest cart's included),
/// and whether it takes a body.
fn new_routes() -> Vec<(Method, String, bool)> {
    let any = "00000000-0000-4000-8000-000000000000";
    vec![
        (Method::GET, CART.into(), false),
        (Method::DELETE, CART.into(), false),
        (Method::POST, ITEMS.into(), true),
        (Method::PATCH, format!("{ITEMS}{any}/"), true),
        (Method::DELETE, format!("{ITEMS}{any}/"), false),
        (Method::POST, "/api/v1/cart/merge/".into(), true),
        (Method::POST, PROMOTION.into(), true),
        (Method::DELETE, PROMOTION.into(), false),
        (Method::POST, CHECKOUT.into(), true),
        (Method::POST, "/api/v1/carts/".into(), false),
        (Method::GET, format!("/api/v1/carts/{any}/"), false),
        (Method::POST, format!("/api/v1/carts/{any}/items/"), true),
        (Method::POST, format!("/api/v1/carts/{any}/checkout/"), true),
        (
            Method::GET,
            format!("/api/v1/carts/{any}/shipping-methods/"),
            false,
        ),
        (Method::PUT, format!("/api/v1/carts/{any}/shipping/"), true),
        (
            Method::DELETE,
            format!("/api/v1/carts/{any}/shipping/"),
            false,
        ),
        (Method::GET, PROMOTIONS.into(), false),
        (Method::POST, PROMOTIONS.into(), true),
        (Method::GET, format!("{PROMOTIONS}{any}/"), false),
        (Method::PATCH, format!("{PROMOTIONS}{any}/"), true),
        (Method::DELETE, format!("{PROMOTIONS}{any}/"), false),
    ]
}

#[tokio::test]
async fn every_new_route_refuses_bad_tokens_huge_bodies_and_other_media_types() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let huge = json!({"x": "a".repeat(100_000)});
    for (method, path, has_body) in new_routes() {
        let r = app
            .request(method.clone(), &path, Some("not.a.token"))
            .send()
            .await
            .expect("answered");
        assert_problem(r, 401, "invalid_token").await;
        if !has_body {
            continue;
        }
        let r = app
            .request(method.clone(), &path, Some(&admin))
            .header("x-cart-token", "t")
            .json(&huge)
            .send()
            .await
            .expect("answered");
        assert_problem(r, 413, "payload_too_large").await;
        let r = app
            .request(method.clone(), &path, Some(&admin))
            .header("x-cart-token", "t")
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .expect("answered");
        assert_problem(r, 415, "unsupported_media_type").await;
    }
}

#[tokio::test]
async fn cart_changes_made_while_a_checkout_runs_are_never_lost() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let kettle = app
        .product(&admin, json!({"stock": 10_000, "price": 900}))
        .await;
    let mug = app
        .product(&admin, json!({"stock": 10_000, "price": 300}))
        .await;
    let mut acknowledged = 0;
    for round in 0..5 {
        add(&app, &ann, &kettle, 2).await;
        // Adds of both products race the checkout; each acknowledged one
        // must end in the order or stay in the cart.
        let adds = (0..8).map(|i| {
            let product = if i % 2 == 0 { &kettle } else { &mug };
            let body = json!({"product_id": product["id"], "quantity": 1});
            let (app, ann) = (&app, &ann);
            async move { app.post(ITEMS, Some(ann), &body).await.status().as_u16() }
        });
        let (placed, answers) = tokio::join!(checkout(&app, &ann, None), join_all(adds));
        assert_eq!(placed.status(), 201, "round {round}");
        acknowledged += answers.iter().filter(|s| **s == 200).count() as i64;
        assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    }
    let ordered: i64 = {
        let pool = app.database_pool(Domain::Orders).await;
        sqlx::query_scalar("SELECT COALESCE(sum(quantity), 0)::bigint FROM order_items")
            .fetch_one(&pool)
            .await
            .expect("sum")
    };
    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    let in_cart: i64 = cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["quantity"].as_i64().expect("quantity"))
        .sum();
    assert_eq!(
        ordered + in_cart,
        5 * 2 + acknowledged,
        "every acknowledged unit was ordered or is still in the cart"
    );
}

#[tokio::test]
async fn promotion_dates_outside_the_supported_years_are_refused_on_the_field() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    for (field, value) in [
        ("starts_at", "-5000-01-01T00:00:00Z"),
        ("ends_at", "+10000-01-01T00:00:00Z"),
        ("starts_at", "1969-12-31T23:59:59Z"),
    ] {
        let body = json!({"code": "OLD-1", "kind": "percent", "value": 10, field: value});
        let r = app.post(PROMOTIONS, Some(&admin), &body).await;
        let status = r.status().as_u16();
        let problem: Value = r.json().await.expect("problem");
        assert_eq!(status, 422, "{field}={value}: {problem}");
        let fields = error_fields(&problem);
        assert!(fields.iter().any(|f| f == field), "{problem}");
    }
    let made = promotion(&app, &admin, json!({})).await;
    let path = format!("{PROMOTIONS}{}/", str_of(&made["id"]));
    let r = app
        .request(Method::PATCH, &path, Some(&admin))
        .json(&json!({"ends_at": "-5000-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("sent");
    let problem = assert_problem(r, 422, "validation_error").await;
    assert!(
        error_fields(&problem).iter().any(|f| f == "ends_at"),
        "{problem}"
    );
    // Within range is fine.
    let r = app
        .request(Method::PATCH, &path, Some(&admin))
        .json(&json!({"ends_at": "9999-12-31T00:00:00Z"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn checkout_with_an_expected_total_refuses_a_total_that_changed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let kettle = app
        .product(&admin, json!({"stock": 10, "price": 1000}))
        .await;
    add(&app, &ann, &kettle, 2).await;
    let with_total = |total: i64| {
        let mut body = address();
        body["expected_total"] = json!(total);
        body
    };
    // The price changes after the customer saw 2 × 1000.
    let path = format!("/api/v1/products/{}/", str_of(&kettle["id"]));
    let r = app
        .request(Method::PATCH, &path, Some(&admin))
        .json(&json!({"price": 1200}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let r = app.post(CHECKOUT, Some(&ann), &with_total(2000)).await;
    let problem = assert_problem(r, 409, "total_changed").await;
    assert!(str_of(&problem["detail"]).contains("2400"), "{problem}");
    assert_eq!(order_count(&app).await, 0, "nothing placed");
    assert_eq!(app.stock_of(&admin, &kettle).await, 10, "nothing held");
    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    assert_eq!(cart["items"][0]["quantity"], 2, "the cart is as it was");
    // Wrong type is a field error.
    let mut bad = address();
    bad["expected_total"] = json!("2400");
    let r = app.post(CHECKOUT, Some(&ann), &bad).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(error_fields(&problem), ["expected_total"]);
    // The total now shown is accepted.
    let r = app.post(CHECKOUT, Some(&ann), &with_total(2400)).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["total"], 2400);
}

#[tokio::test]
async fn a_deleted_promotion_warns_on_the_cart_and_blocks_checkout_until_removed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let kettle = app
        .product(&admin, json!({"stock": 10, "price": 1234}))
        .await;
    add(&app, &ann, &kettle, 1).await;
    let promo = promotion(&app, &admin, json!({"value": 50})).await;
    let r = app
        .post(PROMOTION, Some(&ann), &json!({"code": promo["code"]}))
        .await;
    assert_eq!(r.status(), 200);
    let path = format!("{PROMOTIONS}{}/", str_of(&promo["id"]));
    let r = app
        .request(Method::DELETE, &path, Some(&admin))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);

    let cart: Value = app.get(CART, Some(&ann)).await.body_json().await;
    assert_eq!(cart["promotion_code"], promo["code"], "{cart}");
    assert_eq!(cart["checkout_ready"], false, "{cart}");
    assert_eq!(cart["total"], 1234, "no discount is shown");
    let codes: Vec<String> = cart["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| str_of(&w["code"]))
        .collect();
    assert_eq!(codes, ["promotion_deleted"]);
    let r = checkout(&app, &ann, None).await;
    assert_problem(r, 422, "promotion_deleted").await;
    assert_eq!(
        order_count(&app).await,
        0,
        "never charged full price silently"
    );

    let r = app
        .request(Method::DELETE, PROMOTION, Some(&ann))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let r = checkout(&app, &ann, None).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["total"], 1234);
}
