//! Payments: the API, the pool of payment workers on a durable queue, the
//! simulated provider, refunds, signed webhooks, and outcomes that reach
//! orders exactly once — across concurrency, crashes and two instances.

use std::time::{Duration, Instant};

use emporium::actors::orders::messages::ExpireOverdueOrders;
use emporium::config::{Delivery, Settings};
use emporium::domain::payments::webhook;
use futures_util::future::join_all;
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{
    assert_problem, assert_reservations_match_orders, error_fields, str_of, TestApp,
};
use crate::orders::{place, ORDERS};

pub(crate) const PAYMENTS: &str = "/api/v1/payments/";
const WEBHOOK: &str = "/api/v1/payments/webhook/";
pub(crate) const VISA: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NO_FUNDS: &str = "4000000000009995";
const FLAKY: &str = "4000000000000119";

/// A quick provider and a quick pool, so tests finish fast.
pub(crate) fn quick(s: &mut Settings) {
    s.payments.simulator.latency_ms = 2;
    s.payments.simulator.latency_jitter_ms = 3;
    s.payments.retry_base_ms = 10;
    s.payments.retry_max_ms = 50;
    s.payments.poll_interval_ms = 50;
    s.payments.relay_interval_ms = 50;
    s.payments.workers = 4;
}

pub(crate) fn card(number: &str) -> Value {
    json!({"card_number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"})
}

pub(crate) fn pay_body(order: &Value, number: &str) -> Value {
    json!({"order_id": order["id"], "payment_method": card(number)})
}

pub(crate) async fn pay(app: &TestApp, token: &str, order: &Value, number: &str) -> Value {
    let r = app
        .post(PAYMENTS, Some(token), &pay_body(order, number))
        .await;
    assert_eq!(r.status(), 202, "paying");
    r.body_json().await
}

/// Polls a payment until `done` says so (10 s at most).
pub(crate) async fn wait_for(
    app: &TestApp,
    token: &str,
    payment: &Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("{PAYMENTS}{}/", str_of(&payment["id"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Value = app.get(&path, Some(token)).await.body_json().await;
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "payment never settled: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn settled(p: &Value) -> bool {
    !matches!(p["status"].as_str(), Some("processing" | "refund_pending"))
}

pub(crate) async fn order_status(app: &TestApp, token: &str, order: &Value) -> String {
    let o: Value = app
        .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(token))
        .await
        .body_json()
        .await;
    str_of(&o["status"])
}

/// Polls an order until it is in `status` (10 s at most).
pub(crate) async fn wait_order(app: &TestApp, token: &str, order: &Value, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while order_status(app, token, order).await != status {
        assert!(Instant::now() < deadline, "order never became {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Provider calls recorded for a payment (its charges and refunds).
pub(crate) async fn provider_calls(app: &TestApp, payment_id: &str) -> i64 {
    let pool = app.payments_pool().await;
    let n = sqlx::query_scalar("SELECT count(*) FROM provider_ledger WHERE payment_id = $1::uuid")
        .bind(payment_id)
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

pub(crate) async fn timeline(app: &TestApp, token: &str, payment: &Value) -> Vec<String> {
    let body: Value = app
        .get(
            &format!("{PAYMENTS}{}/events/", str_of(&payment["id"])),
            Some(token),
        )
        .await
        .body_json()
        .await;
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| str_of(&e["kind"]))
        .collect()
}

/// A shop with one product, a customer and an order of theirs.
pub(crate) async fn shop(app: &TestApp) -> (String, String, Value) {
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app
        .product(&admin, json!({"stock": 100, "price": 2500}))
        .await;
    let order = place(app, &token, json!([{"product_id": p["id"], "quantity": 2}])).await;
    (admin, token, order)
}

#[tokio::test]
async fn a_payment_charges_the_orders_amount_once_and_marks_it_paid() {
    let app = TestApp::spawn_with(quick).await;
    let (_, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    assert_eq!(payment["status"], "processing");
    assert_eq!(payment["amount"], 5000);
    assert_eq!(payment["currency"], order["currency"]);
    assert_eq!(payment["card"], json!({"brand": "visa", "last4": "4242"}));
    assert!(
        !payment.to_string().contains(VISA),
        "the number is never sent back"
    );
    let done = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"], 1);
    wait_order(&app, &token, &order, "paid").await;
    assert_eq!(provider_calls(&app, &str_of(&payment["id"])).await, 1);
    let kinds = timeline(&app, &token, &payment).await;
    assert_eq!(kinds, ["created", "attempt_started", "charge_succeeded"]);
    // The card number and CVC are stored nowhere.
    let pool = app.payments_pool().await;
    // Field by field: the CVC is short enough to occur inside an id.
    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT f.value FROM payments p, jsonb_each_text(to_jsonb(p)) f WHERE f.value IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("dump");
    assert!(
        fields.iter().all(|f| !f.contains(VISA) && f != "123"),
        "{fields:?}"
    );
    pool.close().await;
    // A paid order cannot be paid again.
    let r = app
        .post(PAYMENTS, Some(&token), &pay_body(&order, VISA))
        .await;
    assert_problem(r, 409, "order_not_payable").await;
    assert_reservations_match_orders(&app).await;
}

#[tokio::test]
async fn declines_are_final_and_leave_the_order_pending_for_another_payment() {
    let app = TestApp::spawn_with(quick).await;
    let (_, token, order) = shop(&app).await;
    for (number, code) in [
        (DECLINED, "card_declined"),
        (NO_FUNDS, "insufficient_funds"),
    ] {
        let payment = pay(&app, &token, &order, number).await;
        let done = wait_for(&app, &token, &payment, settled).await;
        assert_eq!(done["status"], "failed");
        assert_eq!(done["failure_code"], code);
        assert_eq!(done["attempts"], 1, "a decline is not retried");
        assert_eq!(order_status(&app, &token, &order).await, "pending");
    }
    let payment = pay(&app, &token, &order, VISA).await;
    assert_eq!(
        wait_for(&app, &token, &payment, settled).await["status"],
        "succeeded"
    );
    wait_order(&app, &token, &order, "paid").await;
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_up_to_the_limit() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.max_attempts = 3;
    })
    .await;
    let (_, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, FLAKY).await;
    let done = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure_code"], "processing_error");
    assert_eq!(done["attempts"], 3);
    let kinds = timeline(&app, &token, &payment).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "attempt_failed").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        provider_calls(&app, &str_of(&payment["id"])).await,
        0,
        "nothing charged"
    );
    assert_eq!(order_status(&app, &token, &order).await, "pending");
}

#[tokio::test]
async fn bad_payment_requests_are_refused_and_write_nothing() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order) = shop(&app).await;
    let (_, other, _) = app.customer("bob@example.com").await;
    for field in ["amount", "currency", "status"] {
        let mut body = pay_body(&order, VISA);
        body[field] = json!(1);
        let problem = assert_problem(
            app.post(PAYMENTS, Some(&token), &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), [field]);
    }
    let mut bad = pay_body(&order, "4242424242424241");
    bad["payment_method"]["exp_year"] = json!(2020);
    bad["payment_method"]["cvc"] = json!("12");
    let problem = assert_problem(
        app.post(PAYMENTS, Some(&token), &bad).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        [
            "payment_method.card_number",
            "payment_method.exp_year",
            "payment_method.cvc"
        ]
    );
    let problem = assert_problem(
        app.post(PAYMENTS, Some(&token), &json!({"order_id": order["id"]}))
            .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["payment_method"]);
    let problem = assert_problem(
        app.post(
            PAYMENTS,
            Some(&token),
            &json!({"order_id": "x", "payment_method": card(VISA)}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["order_id"]);
    // Someone else's order, or one that does not exist, is not found; an
    // admin cannot pay a customer's order either.
    for t in [&other, &admin] {
        let r = app.post(PAYMENTS, Some(t), &pay_body(&order, VISA)).await;
        assert_problem(r, 404, "not_found").await;
    }
    let ghost = json!({"id": uuid::Uuid::new_v4()});
    assert_problem(
        app.post(PAYMENTS, Some(&token), &pay_body(&ghost, VISA))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.post(PAYMENTS, None, &pay_body(&order, VISA)).await,
        401,
        "not_authenticated",
    )
    .await;
    let r = app
        .request(reqwest::Method::POST, PAYMENTS, Some(&token))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"order_id\": \"{}\", \"pad\": \"{}\"}}",
            str_of(&order["id"]),
            "x".repeat(70_000)
        ))
        .send()
        .await
        .expect("sent");
    assert_problem(r, 413, "payload_too_large").await;
    // A cancelled order cannot be paid.
    let cancel = format!("{ORDERS}{}/cancel/", str_of(&order["id"]));
    assert_eq!(
        app.post(&cancel, Some(&token), &json!({})).await.status(),
        200
    );
    let problem = assert_problem(
        app.post(PAYMENTS, Some(&token), &pay_body(&order, VISA))
            .await,
        409,
        "order_not_payable",
    )
    .await;
    assert!(problem["detail"]
        .as_str()
        .expect("detail")
        .contains("cancelled"));
    let pool = app.payments_pool().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_requests_with_one_key_make_one_payment_and_one_charge() {
    let app = TestApp::spawn_with(quick).await;
    let (_, token, order) = shop(&app).await;
    let body = pay_body(&order, VISA);
    let send = |key: &'static str, body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let r = app
                .request(reqwest::Method::POST, PAYMENTS, Some(&token))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let replies = join_all((0..50).map(|_| send("pay-1", body.clone()))).await;
    let accepted: Vec<&Value> = replies
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, b)| b)
        .collect();
    assert!(!accepted.is_empty());
    assert!(
        accepted.iter().all(|b| *b == accepted[0]),
        "identical bodies"
    );
    for (status, b) in &replies {
        assert!(
            *status == 202 || (*status == 409 && b["code"] == "idempotency_conflict"),
            "{status} {b}"
        );
    }
    let payment = accepted[0].clone();
    wait_for(&app, &token, &payment, settled).await;
    let (status, again) = send("pay-1", body.clone()).await;
    assert_eq!((status, &again["id"]), (202, &payment["id"]));
    assert_eq!(provider_calls(&app, &str_of(&payment["id"])).await, 1);
    let mut other = body.clone();
    other["payment_method"]["exp_month"] = json!(11);
    let (status, problem) = send("pay-1", other).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("idempotency_error"))
    );
    let pool = app.payments_pool().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_keys_for_one_order_at_once_make_one_payment() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        // Long enough that every request arrives while the first processes.
        s.payments.simulator.latency_ms = 1_000;
    })
    .await;
    let (_, token, order) = shop(&app).await;
    let body = pay_body(&order, VISA);
    let replies = join_all((0..20).map(|n| {
        app.request(reqwest::Method::POST, PAYMENTS, Some(&token))
            .header("idempotency-key", format!("key-{n}"))
            .json(&body)
            .send()
    }))
    .await;
    let statuses: Vec<u16> = replies
        .iter()
        .map(|r| r.as_ref().expect("sent").status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn customers_see_their_own_payments_and_only_admins_refund() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order) = shop(&app).await;
    let (bob_id, bob, _) = app.customer("bob@example.com").await;
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    let path = format!("{PAYMENTS}{}/", str_of(&payment["id"]));
    assert_problem(app.get(&path, Some(&bob)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{path}events/"), Some(&bob)).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("{PAYMENTS}not-a-uuid/"), Some(&token))
            .await,
        404,
        "not_found",
    )
    .await;
    let mine: Value = app.get(PAYMENTS, Some(&bob)).await.body_json().await;
    assert_eq!(mine["count"], 0);
    let theirs: Value = app
        .get(&format!("{PAYMENTS}?user_id={bob_id}"), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(
        theirs["count"], 1,
        "a customer's filter cannot reach others"
    );
    let all: Value = app
        .get(
            &format!(
                "{PAYMENTS}?status=succeeded&order_id={}",
                str_of(&order["id"])
            ),
            Some(&admin),
        )
        .await
        .body_json()
        .await;
    assert_eq!(all["count"], 1);
    assert_problem(
        app.get(&format!("{PAYMENTS}?status=paid"), Some(&admin))
            .await,
        400,
        "invalid_query",
    )
    .await;
    let refund = format!("{path}refund/");
    assert_problem(
        app.post(&refund, Some(&token), &json!({})).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.post(&refund, None, &json!({})).await,
        401,
        "not_authenticated",
    )
    .await;
}

#[tokio::test]
async fn an_admin_refund_moves_the_order_through_refund_pending_to_refunded_once() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    wait_order(&app, &token, &order, "paid").await;
    let refund = format!("{PAYMENTS}{}/refund/", str_of(&payment["id"]));
    let send = || {
        app.request(reqwest::Method::POST, &refund, Some(&admin))
            .header("idempotency-key", "refund-1")
            .send()
    };
    let first = send().await.expect("sent");
    assert_eq!(first.status(), 202);
    let first: Value = first.body_json().await;
    assert_eq!(first["status"], "refund_pending");
    let done = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(done["status"], "refunded");
    wait_order(&app, &token, &order, "refunded").await;
    let again = send().await.expect("sent");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        provider_calls(&app, &str_of(&payment["id"])).await,
        2,
        "one charge, one refund"
    );
    // Refunding again without the key is refused by the status machine.
    let r = app.post(&refund, Some(&admin), &json!({})).await;
    assert_problem(r, 409, "invalid_transition").await;
    let o: Value = app
        .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(&token))
        .await
        .body_json()
        .await;
    let path: Vec<&str> = o["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["to"].as_str().expect("to"))
        .collect();
    assert_eq!(path, ["pending", "paid", "refund_pending", "refunded"]);
}

#[tokio::test]
async fn a_payment_that_succeeds_after_its_order_expired_is_refunded_automatically() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.simulator.latency_ms = 1_500;
    })
    .await;
    let (_, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    // The order expires while the provider is still charging.
    let orders_db = app.orders_pool().await;
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second'")
        .execute(&orders_db)
        .await
        .expect("overdue");
    app.actors
        .orders
        .call(ExpireOverdueOrders)
        .await
        .expect("sweep");
    assert_eq!(order_status(&app, &token, &order).await, "expired");
    wait_for(&app, &token, &payment, |p| p["status"] == "refunded").await;
    assert_eq!(
        order_status(&app, &token, &order).await,
        "expired",
        "never paid"
    );
    let body: Value = app
        .get(
            &format!("{PAYMENTS}{}/events/", str_of(&payment["id"])),
            Some(&token),
        )
        .await
        .body_json()
        .await;
    let why = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "refund_requested")
        .expect("refund requested");
    assert!(why["detail"]["reason"]
        .as_str()
        .expect("reason")
        .contains("expired"));
    orders_db.close().await;
}

/// Posts a webhook body with a signature header.
/// Asks the simulated provider (as `admin`) to send `event` for `payment`.
pub(crate) async fn simulate(
    app: &TestApp,
    admin: &str,
    payment: &Value,
    event: &str,
) -> reqwest::Response {
    let path = format!(
        "/api/v1/admin/payments/{}/simulate/",
        str_of(&payment["id"])
    );
    app.post(&path, Some(admin), &json!({"event": event})).await
}

pub(crate) async fn post_webhook(
    app: &TestApp,
    body: &str,
    signature: Option<String>,
) -> reqwest::Response {
    let mut r = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        r = r.header("emporium-signature", signature);
    }
    r.send().await.expect("sent")
}

#[tokio::test]
async fn webhooks_are_verified_over_raw_bytes_deduplicated_and_never_move_backwards() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.webhook_previous_secret =
            Some(secrecy::SecretString::from("whsec_previous_secret_1234"));
    })
    .await;
    let (_, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    wait_order(&app, &token, &order, "paid").await;
    let secret = app
        .settings
        .payments
        .webhook_secret
        .expose_secret()
        .to_owned();
    let now = chrono::Utc::now().timestamp();
    let event = |id: &str, kind: &str| {
        json!({"id": id, "type": kind, "created": now, "data": {"payment_id": payment["id"]}})
            .to_string()
    };
    let refunded = event("evt_1", "charge.refunded");
    let signed = |body: &str, secrets: &[&[u8]], at: i64| {
        Some(webhook::header(secrets, at, body.as_bytes()))
    };
    // Stale and future by a minute past the 300 s tolerance, so that a slow
    // run cannot bring them back inside it.
    let refused = [
        (
            "tampered",
            refunded.replace("evt_1", "evt_2"),
            signed(&refunded, &[secret.as_bytes()], now),
        ),
        (
            "wrong secret",
            refunded.clone(),
            signed(&refunded, &[b"whsec_someone_else_entirely"], now),
        ),
        (
            "stale",
            refunded.clone(),
            signed(&refunded, &[secret.as_bytes()], now - 360),
        ),
        (
            "future",
            refunded.clone(),
            signed(&refunded, &[secret.as_bytes()], now + 360),
        ),
        ("missing", refunded.clone(), None),
        (
            "malformed",
            refunded.clone(),
            Some("t=now,v1=zz".to_owned()),
        ),
    ];
    for (case, body, signature) in refused {
        let r = post_webhook(&app, &body, signature).await;
        assert_problem(r, 400, "invalid_signature").await;
        assert_eq!(
            wait_for(&app, &token, &payment, settled).await["status"],
            "succeeded",
            "{case}"
        );
    }
    // A rotation: the provider signs with an unknown and a known secret.
    let r = post_webhook(
        &app,
        &refunded,
        signed(
            &refunded,
            &[b"whsec_next_secret_unknown", secret.as_bytes()],
            now,
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    let outcome: Value = r.body_json().await;
    assert_eq!(outcome, json!({"duplicate": false, "applied": true}));
    assert_eq!(
        wait_for(&app, &token, &payment, settled).await["status"],
        "refunded"
    );
    wait_order(&app, &token, &order, "refunded").await;
    // A redelivery changes nothing; a late success cannot undo the refund;
    // the previous secret is still accepted.
    let r = post_webhook(
        &app,
        &refunded,
        signed(&refunded, &[secret.as_bytes()], now),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"duplicate": true, "applied": false})
    );
    let late = event("evt_3", "charge.succeeded");
    let r = post_webhook(
        &app,
        &late,
        signed(&late, &[b"whsec_previous_secret_1234"], now),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"duplicate": false, "applied": false})
    );
    assert_eq!(
        wait_for(&app, &token, &payment, settled).await["status"],
        "refunded"
    );
    let kinds = timeline(&app, &token, &payment).await;
    assert!(
        kinds.contains(&"webhook_received".to_owned())
            && kinds.contains(&"event_ignored".to_owned()),
        "{kinds:?}"
    );
    // Not JSON, once signed: 400 invalid_event.
    let r = post_webhook(&app, "nope", signed("nope", &[secret.as_bytes()], now)).await;
    assert_problem(r, 400, "invalid_event").await;
}

#[tokio::test]
async fn in_webhook_mode_the_provider_settles_payments_by_signed_events() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.delivery = Delivery::Webhook;
    })
    .await;
    let (admin, token, order) = shop(&app).await;
    let declined = pay(&app, &token, &order, DECLINED).await;
    let done = wait_for(&app, &token, &declined, settled).await;
    assert_eq!(
        (done["status"].as_str(), done["failure_code"].as_str()),
        (Some("failed"), Some("card_declined"))
    );
    let payment = pay(&app, &token, &order, VISA).await;
    assert_eq!(
        wait_for(&app, &token, &payment, settled).await["status"],
        "succeeded"
    );
    wait_order(&app, &token, &order, "paid").await;
    assert!(timeline(&app, &token, &payment)
        .await
        .contains(&"webhook_received".to_owned()));
    // A provider-initiated dispute is recorded; a provider refund applies.
    let simulate = format!(
        "/api/v1/admin/payments/{}/simulate/",
        str_of(&payment["id"])
    );
    let r = app
        .post(
            &simulate,
            Some(&admin),
            &json!({"event": "charge.dispute_created"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let r = app
        .post(
            &simulate,
            Some(&admin),
            &json!({"event": "charge.refunded"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    wait_for(&app, &token, &payment, |p| p["status"] == "refunded").await;
    wait_order(&app, &token, &order, "refunded").await;
    let r = app
        .post(
            &simulate,
            Some(&admin),
            &json!({"event": "charge.exploded"}),
        )
        .await;
    assert_problem(r, 422, "validation_error").await;
    let r = app
        .post(
            &simulate,
            Some(&token),
            &json!({"event": "charge.refunded"}),
        )
        .await;
    assert_problem(r, 403, "permission_denied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_payment_loses_nothing_and_charges_each_payment_once() {
    let slow = |s: &mut Settings| {
        quick(s);
        s.payments.simulator.latency_ms = 1_500;
        s.payments.provider_timeout_ms = 2_000;
        s.payments.lease_secs = 5;
    };
    let app = TestApp::spawn_with(slow).await;
    let (_, admin) = app.admin().await;
    let p = app.product(&admin, json!({"stock": 100})).await;
    let mut paid = Vec::new();
    for n in 0..4 {
        let (_, token, _) = app.customer(&format!("c{n}@example.com")).await;
        let order = place(
            &app,
            &token,
            json!([{"product_id": p["id"], "quantity": 1}]),
        )
        .await;
        let payment = pay(&app, &token, &order, VISA).await;
        paid.push((token, order, payment));
    }
    // Crash while the provider calls are under way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settings = app.crash();
    let app = TestApp::spawn_beside(&settings).await;
    for (token, order, payment) in &paid {
        assert_eq!(
            wait_for(&app, token, payment, settled).await["status"],
            "succeeded"
        );
        wait_order(&app, token, order, "paid").await;
        assert_eq!(
            provider_calls(&app, &str_of(&payment["id"])).await,
            1,
            "charged once"
        );
        let o: Value = app
            .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(token))
            .await
            .body_json()
            .await;
        let paid_entries = o["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|h| h["to"] == "paid")
            .count();
        assert_eq!(paid_entries, 1, "paid exactly once");
    }
    assert_eq!(app.stock_of(&admin, &p).await, 96, "no stock leaked");
    assert_reservations_match_orders(&app).await;
    // The databases outlived the crashed instance; drop them now.
    drop(app);
    emporium::store::database::drop_databases(&settings.database)
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_drain_one_queue_and_do_every_job_once() {
    let first = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.simulator.latency_ms = 20;
    })
    .await;
    let second = TestApp::spawn_beside(&first.settings).await;
    let (_, admin) = first.admin().await;
    let p = first.product(&admin, json!({"stock": 1000})).await;
    let (_, token, _) = first.customer("ann@example.com").await;
    let mut payments = Vec::new();
    for n in 0..30 {
        // Orders and payments arrive through both instances.
        let app = if n % 2 == 0 { &first } else { &second };
        let order = place(app, &token, json!([{"product_id": p["id"], "quantity": 1}])).await;
        payments.push(pay(app, &token, &order, VISA).await);
    }
    for payment in &payments {
        assert_eq!(
            wait_for(&first, &token, payment, settled).await["status"],
            "succeeded"
        );
    }
    let pool = first.payments_pool().await;
    let doubles: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT payment_id FROM payment_events WHERE kind = 'attempt_started' \
         GROUP BY payment_id HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(doubles, 0, "no job ran twice");
    let charges: i64 = sqlx::query_scalar("SELECT count(*) FROM provider_ledger")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(charges, 30);
    pool.close().await;
    let attempts = |report: Value| {
        report["payment_pool"]["attempts"]
            .as_u64()
            .expect("attempts")
    };
    let a: Value = first
        .get("/api/v1/admin/actors/", Some(&admin))
        .await
        .body_json()
        .await;
    let b: Value = second
        .get("/api/v1/admin/actors/", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(attempts(a.clone()) + attempts(b), 30);
    assert_eq!(a["payment_pool"]["workers"], 4);
    drop(second);
}

#[tokio::test]
async fn a_worker_that_panics_is_restarted_and_its_job_retried_after_the_lease() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.simulator.panic_on_first_call = true;
        s.payments.provider_timeout_ms = 1_000;
        s.payments.lease_secs = 3;
    })
    .await;
    let (admin, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    let done = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"], 2, "the panicked attempt, then the retry");
    wait_order(&app, &token, &order, "paid").await;
    assert_eq!(provider_calls(&app, &str_of(&payment["id"])).await, 1);
    let report: Value = app
        .get("/api/v1/admin/actors/", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(report["payment_pool"]["worker_restarts"], 1);
    assert_eq!(report["payment_pool"]["workers"], 4);
}

/// The same shop flow, whichever way the provider reports outcomes.
async fn charge_decline_and_refund(delivery: Delivery) {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.delivery = delivery;
    })
    .await;
    let (admin, token, order) = shop(&app).await;
    let declined = pay(&app, &token, &order, NO_FUNDS).await;
    let done = wait_for(&app, &token, &declined, settled).await;
    assert_eq!(done["failure_code"], "insufficient_funds", "{delivery:?}");
    let payment = pay(&app, &token, &order, VISA).await;
    assert_eq!(
        wait_for(&app, &token, &payment, settled).await["status"],
        "succeeded"
    );
    wait_order(&app, &token, &order, "paid").await;
    let refund = format!("{PAYMENTS}{}/refund/", str_of(&payment["id"]));
    assert_eq!(
        app.post(&refund, Some(&admin), &json!({})).await.status(),
        202
    );
    wait_for(&app, &token, &payment, |p| p["status"] == "refunded").await;
    wait_order(&app, &token, &order, "refunded").await;
    assert_eq!(
        provider_calls(&app, &str_of(&payment["id"])).await,
        2,
        "{delivery:?}"
    );
}

#[tokio::test]
async fn both_delivery_modes_take_a_payment_a_decline_and_a_refund_alike() {
    charge_decline_and_refund(Delivery::Direct).await;
    charge_decline_and_refund(Delivery::Webhook).await;
}
