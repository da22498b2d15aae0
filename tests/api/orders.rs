use std::time::Duration;

use emporium::actors::orders::messages::{GetOrderEvents, GetPurchaseHistory, MarkOrderPaid};
use emporium::actors::orders::OrdersError;
use emporium::actors::runtime::CallError;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{actor_metrics, assert_problem, error_fields, str_of, TestApp};

pub const ORDERS: &str = "/api/v1/orders/";

pub fn address() -> Value {
    json!({"name": "Ann Lee", "line1": "1 Main St", "city": "Lyon", "postal_code": "69001", "country": "fr"})
}

pub fn order_body(items: Value) -> Value {
    json!({"items": items, "shipping_address": address()})
}

pub async fn place(app: &TestApp, token: &str, items: Value) -> Value {
    let r = app.post(ORDERS, Some(token), &order_body(items)).await;
    assert_eq!(r.status(), 201, "placing an order");
    r.body_json().await
}

async fn pay(app: &TestApp, order: &Value, payment: &str) -> Result<Value, CallError<OrdersError>> {
    app.actors
        .orders
        .call(MarkOrderPaid {
            order_id: str_of(&order["id"]).parse().expect("uuid"),
            payment_id: payment.into(),
        })
        .await
        .map(|v| serde_json::to_value(v).expect("json"))
}

#[tokio::test]
async fn an_order_is_priced_by_the_catalog_and_holds_its_stock() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (user_id, token, _) = app.customer("ann@example.com").await;
    let boot = app
        .product(&admin, json!({"name": "Boot", "price": 12_999, "stock": 5}))
        .await;
    let sock = app
        .product(&admin, json!({"name": "Sock", "price": 499, "stock": 50}))
        .await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": boot["id"], "quantity": 1}, {"product_id": sock["id"], "quantity": 2}, {"product_id": sock["id"], "quantity": 1}]),
    )
    .await;
    let mut keys: Vec<&str> = order
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "currency",
            "discount",
            "email",
            "fulfilments",
            "history",
            "id",
            "items",
            "prices_include_tax",
            "refund_status",
            "refunded_amount",
            "shipping",
            "shipping_address",
            "shipping_method",
            "shipping_tax",
            "status",
            "subtotal",
            "tax",
            "total",
            "updated_at",
            "user_id"
        ]
    );
    assert_eq!(order["discount"], 0);
    assert_eq!(order["subtotal"], order["total"]);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["user_id"], user_id.as_str());
    assert_eq!(order["currency"], "EUR");
    assert_eq!(
        order["total"],
        12_999 + 3 * 499,
        "duplicate lines are merged"
    );
    let items = order["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    let sock_line = items
        .iter()
        .find(|i| i["name"] == "Sock")
        .expect("sock line");
    assert_eq!(
        (
            sock_line["unit_price"].as_i64(),
            sock_line["quantity"].as_i64(),
            sock_line["line_total"].as_i64()
        ),
        (Some(499), Some(3), Some(1497))
    );
    assert_eq!(order["shipping_address"]["country"], "FR");
    assert_eq!(order["history"][0]["to"], "pending");
    assert_eq!(app.stock_of(&admin, &boot).await, 4);
    assert_eq!(app.stock_of(&admin, &sock).await, 47);
    // A later price change does not touch the order's snapshot.
    app.patch(
        &format!("/api/v1/products/{}/", str_of(&boot["id"])),
        Some(&admin),
        &json!({"price": 1}),
    )
    .await;
    let again: Value = app
        .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(again["total"], order["total"]);
}

#[tokio::test]
async fn bad_orders_are_refused_field_by_field_and_leave_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 5, "price": 100})).await;
    let dollars = app
        .product(&admin, json!({"stock": 5, "currency": "USD"}))
        .await;
    let hidden = app
        .product(&admin, json!({"stock": 5, "is_active": false}))
        .await;
    let cases = [
        (json!({"shipping_address": address()}), vec!["items"]),
        (
            json!({"items": [{"product_id": p["id"], "quantity": 1}]}),
            vec!["shipping_address"],
        ),
        (order_body(json!([])), vec!["items"]),
        (
            order_body(json!([{"product_id": p["id"], "quantity": 0}])),
            vec!["items.0.quantity"],
        ),
        (
            order_body(json!([{"product_id": p["id"], "quantity": -2}])),
            vec!["items.0.quantity"],
        ),
        (
            order_body(json!([{"product_id": p["id"], "quantity": "two"}])),
            vec!["items.0.quantity"],
        ),
        (
            order_body(json!([{"product_id": "nope", "quantity": 1}])),
            vec!["items.0.product_id"],
        ),
        (
            order_body(json!([{"product_id": p["id"]}])),
            vec!["items.0.quantity"],
        ),
        (
            order_body(json!([{"product_id": p["id"], "quantity": 1, "price": 1}])),
            vec!["items.0.price"],
        ),
        (
            order_body(json!([{"product_id": Uuid::new_v4(), "quantity": 1}])),
            vec!["items.0.product_id"],
        ),
        (
            order_body(json!([{"product_id": hidden["id"], "quantity": 1}])),
            vec!["items.0.product_id"],
        ),
        (
            order_body(
                json!([{"product_id": p["id"], "quantity": 1}, {"product_id": dollars["id"], "quantity": 1}]),
            ),
            vec!["items.1.product_id"],
        ),
        (
            order_body(json!([{"product_id": p["id"], "quantity": 20_000}])),
            vec!["items"],
        ),
        (
            json!({"items": [{"product_id": p["id"], "quantity": 1}], "shipping_address": {"name": "A"}}),
            vec!["shipping_address.line1"],
        ),
        (
            json!({"items": [{"product_id": p["id"], "quantity": 1}], "shipping_address": {"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "France"}}),
            vec!["shipping_address.country"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post(ORDERS, Some(&token), &body).await;
        let problem = assert_problem(r, 422, "validation_error").await;
        let got = error_fields(&problem);
        assert!(
            fields.iter().all(|f| got.iter().any(|g| g == f)),
            "{body}: got {got:?}, want {fields:?}"
        );
    }
    let mine: Value = app.get(ORDERS, Some(&token)).await.body_json().await;
    assert_eq!(mine["count"], 0);
    assert_eq!(app.stock_of(&admin, &p).await, 5);
    assert_problem(
        app.post(ORDERS, None, &order_body(json!([]))).await,
        401,
        "not_authenticated",
    )
    .await;
}

#[tokio::test]
async fn insufficient_stock_is_409_naming_the_lines_and_holds_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let plenty = app.product(&admin, json!({"stock": 10})).await;
    let scarce = app.product(&admin, json!({"stock": 1})).await;
    let r = app
        .post(ORDERS, Some(&token), &order_body(json!([{"product_id": plenty["id"], "quantity": 2}, {"product_id": scarce["id"], "quantity": 3}])))
        .await;
    let problem = assert_problem(r, 409, "insufficient_stock").await;
    assert_eq!(
        error_fields(&problem),
        [format!("items.{}", str_of(&scarce["id"]))]
    );
    assert_eq!(problem["errors"][0]["message"], "requested 3, available 1");
    assert_eq!(app.stock_of(&admin, &plenty).await, 10);
    let mine: Value = app.get(ORDERS, Some(&token)).await.body_json().await;
    assert_eq!(mine["count"], 0);
}

#[tokio::test]
async fn concurrent_orders_for_the_last_unit_have_one_winner() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let last = app.product(&admin, json!({"stock": 1})).await;
    let mut tokens = Vec::new();
    for n in 0..6 {
        tokens.push(app.customer(&format!("buyer{n}@example.com")).await.1);
    }
    let body = order_body(json!([{"product_id": last["id"], "quantity": 1}]));
    let attempts = tokens.iter().map(|t| app.post(ORDERS, Some(t), &body));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(app.stock_of(&admin, &last).await, 0);
}

#[tokio::test]
async fn a_failed_order_write_releases_its_reservation() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 5})).await;
    // Make the orders database refuse this one order's write, after the
    // stock has been reserved in the catalog database.
    let orders_db = app.orders_pool().await;
    sqlx::query("ALTER TABLE orders ADD CONSTRAINT test_refuses_sabotage CHECK (shipping_address->>'name' <> 'Sabotage')")
        .execute(&orders_db)
        .await
        .expect("constraint");
    let mut body = order_body(json!([{"product_id": p["id"], "quantity": 3}]));
    body["shipping_address"]["name"] = json!("Sabotage");
    let r = app.post(ORDERS, Some(&token), &body).await;
    assert_problem(r, 500, "internal_error").await;
    assert_eq!(
        app.stock_of(&admin, &p).await,
        5,
        "the reservation was released"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&orders_db)
        .await
        .expect("count");
    assert_eq!(rows, 0, "no order row remains");
    orders_db.close().await;
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_mismatches_and_guard_concurrency() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let (_, other, _) = app.customer("bob@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    let send = |token: &str, key: &str, body: &Value| {
        app.request(reqwest::Method::POST, ORDERS, Some(token))
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let first = send(&token, "key-1", &body).await.expect("sent");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.body_json().await;
    let again = send(&token, "key-1", &body).await.expect("sent");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.body_json().await;
    assert_eq!(again, first);
    assert_eq!(
        app.stock_of(&admin, &p).await,
        9,
        "one order, one reservation"
    );

    // Same key, other request: 422. Same key, other user: their own key.
    let mut different = body.clone();
    different["items"][0]["quantity"] = json!(2);
    let r = send(&token, "key-1", &different).await.expect("sent");
    assert_problem(r, 422, "idempotency_error").await;
    assert_eq!(
        send(&other, "key-1", &body).await.expect("sent").status(),
        201
    );

    // A failed request's answer is saved and replayed too.
    let mut too_many = body.clone();
    too_many["items"][0]["quantity"] = json!(100);
    let r = send(&token, "key-2", &too_many).await.expect("sent");
    assert_eq!(r.status(), 409);
    let r = send(&token, "key-2", &too_many).await.expect("sent");
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_problem(r, 409, "insufficient_stock").await;

    // Concurrent requests with one key: one order; the others replay or
    // are told the first is still running.
    let attempts = (0..6).map(|_| send(&token, "key-3", &body));
    let responses = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses
        .iter()
        .map(|r| r.as_ref().expect("sent").status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    let mine: Value = app
        .get(&format!("{ORDERS}?page_size=100"), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(mine["count"], 2, "key-1 and key-3 made one order each");

    // Bad keys and bad bodies save nothing.
    let long = "k".repeat(256);
    assert_problem(
        send(&token, &long, &body).await.expect("sent"),
        400,
        "invalid_header",
    )
    .await;
    let r = send(&token, "key-4", &json!({"items": []}))
        .await
        .expect("sent");
    assert_eq!(r.status(), 422);
    assert_eq!(
        send(&token, "key-4", &body).await.expect("sent").status(),
        201,
        "the key was not used up"
    );
}

#[tokio::test]
async fn a_request_arriving_while_its_key_is_running_gets_409() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (user_id, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    // Claim the key as a first request that is still executing would.
    let fingerprint = emporium::domain::idempotency::fingerprint("POST", "/api/v1/orders", &body);
    app.actors
        .orders
        .call(emporium::actors::idempotency::ClaimIdempotencyKey(
            emporium::domain::idempotency::KeyedRequest {
                user_id: user_id.parse().expect("uuid"),
                key: emporium::domain::idempotency::IdempotencyKey::parse("busy").expect("key"),
                fingerprint,
            },
        ))
        .await
        .expect("claimed");
    let r = app
        .request(reqwest::Method::POST, ORDERS, Some(&token))
        .header("idempotency-key", "busy")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_problem(r, 409, "idempotency_conflict").await;
    assert_eq!(app.stock_of(&admin, &p).await, 10, "nothing ran");
}

#[tokio::test]
async fn the_lifecycle_follows_its_rules_and_records_history() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 2}]),
    )
    .await;
    let path = |action: &str| format!("{ORDERS}{}/{action}/", str_of(&order["id"]));
    // Not paid yet: cannot ship.
    let r = app.post(&path("ship"), Some(&admin), &json!({})).await;
    let problem = assert_problem(r, 409, "invalid_transition").await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("pending"),
        "names the current state"
    );
    // Customers never ship or deliver.
    assert_problem(
        app.post(&path("ship"), Some(&token), &json!({})).await,
        403,
        "permission_denied",
    )
    .await;

    let paid = pay(&app, &order, "pay_1").await.expect("paid");
    assert_eq!(paid["status"], "paid");
    assert_eq!(
        pay(&app, &order, "pay_1")
            .await
            .expect("same payment again")["status"],
        "paid"
    );
    assert!(matches!(
        pay(&app, &order, "pay_2").await,
        Err(CallError::Domain(OrdersError::PaidByAnotherPayment))
    ));
    // (Cancelling a paid order refunds it: see the refunds tests.)
    assert_problem(
        app.post(&path("deliver"), Some(&admin), &json!({})).await,
        409,
        "invalid_transition",
    )
    .await;

    let shipped: Value = app
        .post(
            &path("ship"),
            Some(&admin),
            &json!({"reason": "tracking 123"}),
        )
        .await
        .body_json()
        .await;
    assert_eq!(shipped["status"], "fulfilled");
    assert_problem(
        app.post(&path("cancel"), Some(&token), &json!({})).await,
        409,
        "invalid_transition",
    )
    .await;
    assert_eq!(shipped["fulfilments"].as_array().expect("parcels").len(), 1);
    assert_eq!(shipped["fulfilments"][0]["status"], "shipped");
    assert_eq!(shipped["items"][0]["shipped_quantity"], 2);
    let delivered: Value = app
        .request(reqwest::Method::POST, &path("deliver"), Some(&admin))
        .send()
        .await
        .expect("sent")
        .body_json()
        .await;
    assert_eq!(delivered["status"], "delivered");
    let history: Vec<(String, String)> = delivered["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h["to"].as_str().expect("to").to_owned(),
                h["actor"]
                    .as_str()
                    .expect("actor")
                    .split(':')
                    .next()
                    .expect("kind")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("pending".into(), "user".into()),
            ("paid".into(), "payments".into()),
            ("fulfilled".into(), "admin".into()),
            ("delivered".into(), "admin".into())
        ]
    );
    assert_eq!(delivered["history"][2]["reason"], "tracking 123");
    assert_eq!(delivered["history"][2]["from"], "paid");
    assert_eq!(app.stock_of(&admin, &p).await, 8, "paid stock stays sold");
    let r = app
        .post(&path("cancel"), Some(&admin), &json!({"reason": 5}))
        .await;
    assert_problem(r, 422, "validation_error").await;
}

#[tokio::test]
async fn cancelling_returns_the_stock_and_only_the_owner_or_an_admin_may() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let order = place(&app, &ann, json!([{"product_id": p["id"], "quantity": 4}])).await;
    let cancel = format!("{ORDERS}{}/cancel/", str_of(&order["id"]));
    assert_problem(
        app.post(&cancel, Some(&bob), &json!({})).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.stock_of(&admin, &p).await, 6);
    let cancelled: Value = app
        .post(&cancel, Some(&ann), &json!({"reason": "changed my mind"}))
        .await
        .body_json()
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(app.stock_of(&admin, &p).await, 10);
    assert_problem(
        app.post(&cancel, Some(&ann), &json!({})).await,
        409,
        "invalid_transition",
    )
    .await;
    // An admin may cancel someone else's pending order.
    let second = place(&app, &ann, json!([{"product_id": p["id"], "quantity": 1}])).await;
    let r = app
        .post(
            &format!("{ORDERS}{}/cancel/", str_of(&second["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Payment of a cancelled order is refused.
    assert!(matches!(
        pay(&app, &second, "pay_x").await,
        Err(CallError::Domain(OrdersError::Transition(_)))
    ));
}

#[tokio::test]
async fn cancel_racing_pay_has_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 100})).await;
    for round in 0..5 {
        let order = place(
            &app,
            &token,
            json!([{"product_id": p["id"], "quantity": 1}]),
        )
        .await;
        let cancel_path = format!("{ORDERS}{}/cancel/", str_of(&order["id"]));
        let payment = format!("pay_{round}");
        let empty = json!({});
        let (cancelled, paid) = tokio::join!(
            app.post(&cancel_path, Some(&token), &empty),
            pay(&app, &order, &payment)
        );
        let cancel_won = cancelled.status() == 200;
        assert_ne!(cancel_won, paid.is_ok(), "round {round}: exactly one wins");
        let now: Value = app
            .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(&token))
            .await
            .body_json()
            .await;
        assert_eq!(now["status"], if cancel_won { "cancelled" } else { "paid" });
        assert_eq!(
            now["history"].as_array().expect("history").len(),
            2,
            "one transition recorded"
        );
    }
    let paid_orders: Value = app
        .get(&format!("{ORDERS}?status=paid"), Some(&token))
        .await
        .body_json()
        .await;
    let paid = paid_orders["count"].as_i64().expect("count");
    assert_eq!(
        app.stock_of(&admin, &p).await,
        100 - paid,
        "cancelled orders returned their unit"
    );
}

#[tokio::test]
async fn unpaid_orders_expire_and_return_their_stock() {
    let app = TestApp::spawn_with(|s| {
        s.orders.pending_ttl_secs = 1;
        s.orders.sweep_interval_secs = 1;
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 3})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 3}]),
    )
    .await;
    let path = format!("{ORDERS}{}/", str_of(&order["id"]));
    let mut expired = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        expired = app.get(&path, Some(&token)).await.body_json().await;
        if expired["status"] == "expired" {
            break;
        }
    }
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["history"][1]["actor"], "system");
    // The expiry is recorded first; its release follows (the saga's order).
    let mut stock = 0;
    for _ in 0..50 {
        stock = app.stock_of(&admin, &p).await;
        if stock == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stock, 3, "the expired order's units came back");
    assert!(
        pay(&app, &order, "late").await.is_err(),
        "an expired order cannot be paid"
    );
}

#[tokio::test]
async fn customers_see_only_their_orders_and_admins_filter_all() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (ann_id, ann, _) = app.customer("ann@example.com").await;
    let (_, bob, _) = app.customer("bob@example.com").await;
    let p = app.product(&admin, json!({"stock": 100})).await;
    let line = json!([{"product_id": p["id"], "quantity": 1}]);
    let a1 = place(&app, &ann, line.clone()).await;
    let a2 = place(&app, &ann, line.clone()).await;
    let b1 = place(&app, &bob, line.clone()).await;
    pay(&app, &a2, "p").await.expect("paid");

    let mine: Value = app.get(ORDERS, Some(&ann)).await.body_json().await;
    assert_eq!(mine["count"], 2);
    assert_eq!(mine["results"][0]["id"], a2["id"], "newest first");
    // A customer's user_id filter cannot reach other users.
    let sneaky: Value = app
        .get(
            &format!("{ORDERS}?user_id={}", str_of(&b1["user_id"])),
            Some(&ann),
        )
        .await
        .body_json()
        .await;
    assert_eq!(sneaky["count"], 2);
    assert_problem(
        app.get(&format!("{ORDERS}{}/", str_of(&b1["id"])), Some(&ann))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("{ORDERS}{}/", Uuid::new_v4()), Some(&ann))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("{ORDERS}nope/"), Some(&ann)).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.get(ORDERS, None).await, 401, "not_authenticated").await;

    let all: Value = app.get(ORDERS, Some(&admin)).await.body_json().await;
    assert_eq!(all["count"], 3);
    let anns: Value = app
        .get(&format!("{ORDERS}?user_id={ann_id}"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(anns["count"], 2);
    let paid: Value = app
        .get(&format!("{ORDERS}?status=paid"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(paid["count"], 1);
    assert_eq!(paid["results"][0]["id"], a2["id"]);
    let created = str_of(&a1["created_at"]);
    let since: Value = app
        .get(
            &format!("{ORDERS}?created_after={}", urlencode(&created)),
            Some(&admin),
        )
        .await
        .body_json()
        .await;
    assert_eq!(since["count"], 3);
    let before: Value = app
        .get(
            &format!("{ORDERS}?created_before={}", urlencode(&created)),
            Some(&admin),
        )
        .await
        .body_json()
        .await;
    assert_eq!(before["count"], 0);
    for bad in [
        "status=lost",
        "user_id=x",
        "created_after=yesterday",
        "page=0",
    ] {
        assert_problem(
            app.get(&format!("{ORDERS}?{bad}"), Some(&admin)).await,
            400,
            "invalid_query",
        )
        .await;
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn paid_orders_feed_events_and_purchase_history() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (ann_id, ann, _) = app.customer("ann@example.com").await;
    let a = app.product(&admin, json!({"stock": 10})).await;
    let b = app.product(&admin, json!({"stock": 10})).await;
    let order = place(
        &app,
        &ann,
        json!([{"product_id": a["id"], "quantity": 2}, {"product_id": b["id"], "quantity": 1}]),
    )
    .await;
    place(&app, &ann, json!([{"product_id": a["id"], "quantity": 1}])).await;
    pay(&app, &order, "pay_1").await.expect("paid");
    pay(&app, &order, "pay_1").await.expect("replayed payment");
    let events = app
        .actors
        .orders
        .call(GetOrderEvents {
            after_id: 0,
            limit: 100,
        })
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "one event, even for a repeated payment");
    assert_eq!(
        events[0].kind,
        emporium::domain::orders::events::OrderEventKind::OrderPaid
    );
    assert_eq!(events[0].payload.0["user_id"], ann_id.as_str());
    assert_eq!(
        events[0].payload.0["items"]
            .as_array()
            .expect("items")
            .len(),
        2
    );
    let history = app
        .actors
        .orders
        .call(GetPurchaseHistory {
            user_ids: vec![ann_id.parse().expect("uuid")],
            limit: 100,
        })
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "only the paid order's lines");
    let everyone = app
        .actors
        .orders
        .call(GetPurchaseHistory {
            user_ids: vec![],
            limit: 100,
        })
        .await
        .expect("history");
    assert_eq!(everyone.len(), 2);
}

/// A keyed write is one message to the orders actor, a replay too: the
/// key is claimed, the order placed and its answer saved by one handler.
#[tokio::test]
async fn a_keyed_order_and_its_replay_are_one_message_each_to_orders() {
    // The recommender follows order events every few seconds; a tick
    // between the two requests would be counted, so it waits here.
    let app = TestApp::spawn_with(|s| s.recommendations.follow_interval_ms = 3_600_000).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    // Background work (the recommender following order events) also
    // sends orders messages; count only once it has settled.
    let settled = || async {
        let mut last = u64::MAX;
        loop {
            let now = actor_metrics(&app, &admin, "orders").await["handled"]
                .as_u64()
                .expect("handled");
            if now == last {
                return now;
            }
            last = now;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    };
    let before = settled().await;
    for _ in 0..2 {
        let r = app
            .request(reqwest::Method::POST, ORDERS, Some(&token))
            .header("idempotency-key", "one-trip")
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 201);
    }
    let after = settled().await;
    assert_eq!(after - before, 2, "one message per request");
    assert_eq!(app.stock_of(&admin, &p).await, 9);
}

#[tokio::test]
async fn idempotency_keys_are_purged_after_their_retention() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    for key in ["old", "fresh"] {
        let r = app
            .request(reqwest::Method::POST, ORDERS, Some(&token))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 201);
    }
    let orders_db = app.orders_pool().await;
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(&orders_db)
    .await
    .expect("aged");
    app.actors
        .orders
        .call(emporium::actors::orders::messages::ExpireOverdueOrders)
        .await
        .expect("swept");
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&orders_db)
        .await
        .expect("keys");
    assert_eq!(keys, ["fresh"]);
    orders_db.close().await;
    // The purged key is free again: it makes a new order.
    let r = app
        .request(reqwest::Method::POST, ORDERS, Some(&token))
        .header("idempotency-key", "old")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_paid_orders_stock_commit_is_recorded_and_retried_until_confirmed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 2}]),
    )
    .await;
    let id: Uuid = str_of(&order["id"]).parse().expect("uuid");
    pay(&app, &order, "pay_1").await.expect("paid");
    let orders_db = app.orders_pool().await;
    let catalog_db = app.catalog_pool().await;
    let status: String = sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_one(&catalog_db)
        .await
        .expect("reservation");
    assert_eq!(status, "committed");
    let committed: bool =
        sqlx::query_scalar("SELECT stock_committed_at IS NOT NULL FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&orders_db)
            .await
            .expect("order");
    assert!(committed);
    // As if the catalog had been unreachable when the payment arrived.
    sqlx::query("UPDATE orders SET stock_committed_at = NULL, updated_at = now() - interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(&orders_db)
        .await
        .expect("reset");
    app.actors
        .orders
        .call(emporium::actors::orders::messages::ExpireOverdueOrders)
        .await
        .expect("swept");
    let committed: bool =
        sqlx::query_scalar("SELECT stock_committed_at IS NOT NULL FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&orders_db)
            .await
            .expect("order");
    assert!(committed, "the sweep confirmed the commit");
    assert_eq!(app.stock_of(&admin, &p).await, 8);
    orders_db.close().await;
    catalog_db.close().await;
}

#[tokio::test]
async fn an_order_that_does_not_price_holds_no_stock() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let euro = app
        .product(&admin, json!({"name": "Boot", "price": 100, "stock": 5}))
        .await;
    let dollar = app
        .product(
            &admin,
            json!({"name": "Hat", "price": 100, "currency": "USD", "stock": 5}),
        )
        .await;
    // Held in the catalog, then refused by pricing: the hold is released.
    let r = app
        .post(
            ORDERS,
            Some(&token),
            &order_body(json!([{"product_id": euro["id"], "quantity": 2}, {"product_id": dollar["id"], "quantity": 1}])),
        )
        .await;
    let problem = crate::helpers::assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "currency_mismatch");
    for p in [&euro, &dollar] {
        let detail: Value = app
            .get(&format!("/api/v1/products/{}/", str_of(&p["id"])), None)
            .await
            .body_json()
            .await;
        assert_eq!(detail["stock"], 5, "{detail}");
    }
    // An unknown product is named and nothing is held either.
    let r = app
        .post(
            ORDERS,
            Some(&token),
            &order_body(json!([{"product_id": euro["id"], "quantity": 1}, {"product_id": uuid::Uuid::new_v4(), "quantity": 1}])),
        )
        .await;
    let problem = crate::helpers::assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "unknown");
    let detail: Value = app
        .get(&format!("/api/v1/products/{}/", str_of(&euro["id"])), None)
        .await
        .body_json()
        .await;
    assert_eq!(detail["stock"], 5);
}

#[tokio::test]
async fn order_filters_beyond_the_storable_years_select_as_the_nearest_bound() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 5})).await;
    place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 1}]),
    )
    .await;
    for (query, count) in [
        ("created_after=0001-01-01T00:00:00Z", 1),
        ("created_before=0001-01-01T00:00:00Z", 0),
        ("created_before=9999-12-31T23:59:59Z", 1),
    ] {
        let r = app.get(&format!("{ORDERS}?{query}"), Some(&token)).await;
        assert_eq!(r.status(), 200, "{query}");
        let page: Value = r.body_json().await;
        assert_eq!(page["count"], count, "{query}");
    }
}
