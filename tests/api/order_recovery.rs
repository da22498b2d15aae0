//! Orders under failure: crashes between steps, timeouts, lock conflicts,
//! failed releases and a database that goes away. Each test stops the work
//! between two steps from outside, as a crash or an outage would.

use std::time::{Duration, Instant};

use emporium::actors::orders::messages::ExpireOverdueOrders;
use emporium::config::Settings;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::db_proxy::DbProxy;
use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, assert_reservations_match_orders, str_of, TestApp};
use crate::orders::{order_body, place, ORDERS};

/// Short limits, so a test can outwait a timeout or a stale key quickly.
fn quick(s: &mut Settings) {
    s.http.request_timeout_ms = 2_500;
    s.actors.call_timeout_ms = 1_000;
    s.database.acquire_timeout_ms = 500;
    s.orders.idempotency_lock_secs = 3;
}

async fn post_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.request(reqwest::Method::POST, ORDERS, Some(token))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("sent")
}

async fn order_count(app: &TestApp) -> i64 {
    let pool = app.orders_pool().await;
    let n = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

/// Polls `check` every 100 ms for up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_crash_between_the_order_and_its_saved_response_never_places_a_second_order() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    let first = post_with_key(&app, &token, "crash-1", &body).await;
    assert_eq!(first.status(), 201, "the order was placed");
    let first: Value = first.body_json().await;
    // The answer commits with the order, so no crash can fall between the
    // two for an order; drop it, as a crash before a later save would
    // (a refund's, whose answer follows its commit), to reach recovery.
    let orders_db = app.orders_pool().await;
    let saved: Option<i16> = sqlx::query_scalar(
        "UPDATE idempotency_keys SET response_status = NULL, response_type = NULL, response_body = NULL \
         WHERE key = 'crash-1' RETURNING (SELECT response_status FROM idempotency_keys WHERE key = 'crash-1')",
    )
    .fetch_one(&orders_db)
    .await
    .expect("answer dropped");
    assert_eq!(saved, Some(201), "the answer was committed with the order");

    // A retry at once, and one after the key's lock went stale: both get
    // the one order back; neither places another.
    for wait in [0, 3_500] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let again = post_with_key(&app, &token, "crash-1", &body).await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.body_json().await;
        assert_eq!(again["id"], first["id"], "the same order is answered");
    }
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &p).await, 9);
    orders_db.close().await;
}

#[tokio::test]
async fn a_timed_out_order_keeps_its_key_in_flight_and_then_replays_what_happened() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    // Hold the orders table so the order's write waits past the timeout.
    let orders_db = app.orders_pool().await;
    let mut blocker = orders_db.begin().await.expect("tx");
    sqlx::query("LOCK TABLE orders IN SHARE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let r = post_with_key(&app, &token, "slow-1", &body).await;
    assert_problem(r, 504, "timeout").await;
    // A 504 is not an answer: the work may still finish.
    let r = post_with_key(&app, &token, "slow-1", &body).await;
    assert_problem(r, 409, "idempotency_conflict").await;
    blocker.commit().await.expect("unlock");
    assert!(eventually(5, || async { order_count(&app).await == 1 }).await);
    let r = post_with_key(&app, &token, "slow-1", &body).await;
    assert_eq!(r.status(), 201, "the order the slow request made");
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    // And stays so after the lock would have gone stale.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let r = post_with_key(&app, &token, "slow-1", &body).await;
    assert_eq!(r.status(), 201);
    assert_eq!(order_count(&app).await, 1);
    assert_eq!(app.stock_of(&admin, &p).await, 9);
    orders_db.close().await;
}

#[tokio::test]
async fn a_timed_out_reservation_is_released_not_left_to_expire() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    // Hold the product row so the reservation waits past the timeout.
    let catalog_db = app.catalog_pool().await;
    let mut blocker = catalog_db.begin().await.expect("tx");
    sqlx::query("SELECT id FROM products WHERE id = $1::uuid FOR UPDATE")
        .bind(str_of(&p["id"]))
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    let r = app.post(ORDERS, Some(&token), &body).await;
    assert!([503, 504].contains(&r.status().as_u16()), "{}", r.status());
    blocker.commit().await.expect("unlock");
    // The late reservation is given back at once, not after its TTL.
    assert!(
        eventually(5, || async { app.stock_of(&admin, &p).await == 10 }).await,
        "the reservation was released"
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status = 'held'")
        .fetch_one(&catalog_db)
        .await
        .expect("count");
    assert_eq!(held, 0);
    assert_eq!(order_count(&app).await, 0);
    catalog_db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_multi_product_orders_and_cancels_never_deadlock() {
    let app = TestApp::spawn_with(|s| s.database.max_connections = 10).await;
    let (_, admin) = app.admin().await;
    let mut products = Vec::new();
    for _ in 0..4 {
        products.push(app.product(&admin, json!({"stock": 100_000})).await);
    }
    let mut tokens = Vec::new();
    for n in 0..10 {
        tokens.push(app.customer(&format!("c{n}@example.com")).await.1);
    }
    let catalog_db = app.catalog_pool().await;
    let deadlocks = || async {
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&catalog_db)
            .await
            .expect("clear");
        sqlx::query_scalar::<_, i64>(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&catalog_db)
        .await
        .expect("deadlocks")
    };
    let before = deadlocks().await;
    let until = Instant::now() + Duration::from_secs(4);
    let clients = tokens.iter().enumerate().map(|(n, token)| {
        let app = &app;
        let products = &products;
        async move {
            let mut statuses = Vec::new();
            let mut round = n;
            while Instant::now() < until {
                // Each client names the four products in a different order.
                round += 1;
                let items: Vec<Value> = (0..4)
                    .map(|i| json!({"product_id": products[(i + round) % 4]["id"], "quantity": 1}))
                    .collect();
                let r = app
                    .post(ORDERS, Some(token), &order_body(json!(items)))
                    .await;
                statuses.push(r.status().as_u16());
                if r.status() != 201 {
                    continue;
                }
                let order: Value = r.body_json().await;
                let cancel = format!("{ORDERS}{}/cancel/", str_of(&order["id"]));
                let r = app.post(&cancel, Some(token), &json!({})).await;
                statuses.push(r.status().as_u16());
            }
            statuses
        }
    });
    let statuses: Vec<u16> = join_all(clients).await.into_iter().flatten().collect();
    assert!(statuses.len() > 40, "the load ran: {}", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "every request succeeded: {:?}",
        statuses.iter().filter(|s| **s >= 300).collect::<Vec<_>>()
    );
    // Statistics reach the view within a second of a transaction's end.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(deadlocks().await - before, 0, "PostgreSQL saw no deadlock");
    for p in &products {
        assert_eq!(app.stock_of(&admin, p).await, 100_000, "stock conserved");
    }
    assert!(assert_reservations_match_orders(&app).await > 20);
    assert_eq!(crate::helpers::assert_stock_ledger_adds_up(&app).await, 4);
    catalog_db.close().await;
}

#[tokio::test]
async fn a_failed_release_is_retried_by_the_sweep_until_the_catalog_confirms() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 1}]),
    )
    .await;
    // The catalog refuses to release anything for a while.
    let catalog_db = app.catalog_pool().await;
    sqlx::query("ALTER TABLE reservations ADD CONSTRAINT test_no_release CHECK (status <> 'released') NOT VALID")
        .execute(&catalog_db)
        .await
        .expect("constraint");
    let cancel = format!("{ORDERS}{}/cancel/", str_of(&order["id"]));
    let r = app.post(&cancel, Some(&token), &json!({})).await;
    assert_eq!(r.status(), 200, "the cancellation itself stands");
    assert_eq!(app.stock_of(&admin, &p).await, 9, "not released yet");
    let orders_db = app.orders_pool().await;
    let unreleased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE status = 'cancelled' AND stock_released_at IS NULL",
    )
    .fetch_one(&orders_db)
    .await
    .expect("count");
    assert_eq!(unreleased, 1, "the intent is recorded");

    // The catalog recovers; the next sweep past the grace period releases.
    sqlx::query("ALTER TABLE reservations DROP CONSTRAINT test_no_release")
        .execute(&catalog_db)
        .await
        .expect("drop constraint");
    sqlx::query("UPDATE orders SET updated_at = now() - interval '1 minute'")
        .execute(&orders_db)
        .await
        .expect("age");
    app.actors
        .orders
        .call(ExpireOverdueOrders)
        .await
        .expect("sweep");
    assert_eq!(app.stock_of(&admin, &p).await, 10);
    assert_eq!(assert_reservations_match_orders(&app).await, 1);
    orders_db.close().await;
    catalog_db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_down_answers_503_quickly_and_recovers() {
    let proxy = DbProxy::start("127.0.0.1:5432").await;
    let url = |s: &Settings| proxy.url(&format!("{}_orders", s.database.prefix));
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.database.orders_url = Some(url(s));
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    assert_eq!(app.get(ORDERS, Some(&token)).await.status(), 200);

    proxy.cut();
    let started = Instant::now();
    let r = app.get(ORDERS, Some(&token)).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 503, "service_unavailable").await;
    let r = app.post(ORDERS, Some(&token), &body).await;
    assert_problem(r, 503, "service_unavailable").await;
    // Two requests, each bounded by the 0.5 s acquire timeout (before this
    // fix each waited for the pool until the call timed out, then 500).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the acquire timeout: {:?}",
        started.elapsed()
    );
    // Nothing half-done: the order that could not be written holds no stock.
    assert_eq!(app.stock_of(&admin, &p).await, 10);
    // Readiness says which database is down.
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status(), 503);
    let ready: Value = r.json().await.expect("readiness body");
    assert_eq!(ready["checks"]["orders"]["ok"], false, "{ready}");
    assert_eq!(ready["checks"]["catalog"]["ok"], true, "{ready}");

    proxy.restore();
    assert!(
        eventually(5, || async {
            app.get(ORDERS, Some(&token)).await.status() == 200
        })
        .await,
        "recovered on its own"
    );
    assert_eq!(app.post(ORDERS, Some(&token), &body).await.status(), 201);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_crossing_into_another_domain_stays_a_503_and_gives_the_key_back() {
    let catalog = DbProxy::start("127.0.0.1:5432").await;
    let orders = DbProxy::start("127.0.0.1:5432").await;
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.database.catalog_url = Some(catalog.url(&format!("{}_catalog", s.database.prefix)));
        s.database.orders_url = Some(orders.url(&format!("{}_orders", s.database.prefix)));
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    let unpaid = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 1}]),
    )
    .await;

    // The catalog's database goes away: orders cannot hold stock.
    catalog.cut();
    let r = post_with_key(&app, &token, "outage-1", &body).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 503, "service_unavailable").await;
    let r = app.post(ORDERS, Some(&token), &body).await;
    assert_problem(r, 503, "service_unavailable").await;
    let similar = format!("/api/v1/products/{}/similar/", str_of(&p["id"]));
    let status = app.get(&similar, None).await.status().as_u16();
    assert!(matches!(status, 200 | 503), "similar answered {status}");
    catalog.restore();
    // The key was given back: once the catalog is back, it places the order.
    assert!(
        eventually(10, || async {
            post_with_key(&app, &token, "outage-1", &body)
                .await
                .status()
                == 201
        })
        .await,
        "the key places the order after recovery"
    );

    // The orders database goes away: payments cannot read the order.
    orders.cut();
    let pay = json!({"order_id": unpaid["id"], "payment_method":
        {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}});
    let r = app.post("/api/v1/payments/", Some(&token), &pay).await;
    assert_problem(r, 503, "service_unavailable").await;
    orders.restore();
    assert!(
        eventually(10, || async {
            app.post("/api/v1/payments/", Some(&token), &pay)
                .await
                .status()
                == 202
        })
        .await,
        "pays once the orders database is back"
    );
}
