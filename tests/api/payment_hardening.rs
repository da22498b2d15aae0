//! Payments as an attacker or an unlucky operator finds them: a refund
//! racing a shipment, outcomes the orders service refuses, the refund
//! route's limits, NUL characters in signed webhooks, and the drill tools
//! in production.

use std::collections::HashMap;

use emporium::config::Environment;
use emporium::domain::payments::webhook;
use futures_util::future::join_all;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Value};

use crate::helpers::{admin_report, assert_problem, str_of, TestApp};
use crate::orders::{place, ORDERS};
use crate::payments::{
    order_status, pay, post_webhook, provider_calls, quick, settled, shop, simulate, wait_for,
    wait_order, PAYMENTS, VISA,
};

/// The provider's ledger for a payment: (kind, outcome) of every call.
async fn ledger(app: &TestApp, payment_id: &str) -> Vec<(String, String)> {
    let pool = app.payments_pool().await;
    let rows = sqlx::query_as(
        "SELECT kind, outcome FROM provider_ledger WHERE payment_id = $1::uuid ORDER BY created_at",
    )
    .bind(payment_id)
    .fetch_all(&pool)
    .await
    .expect("ledger");
    pool.close().await;
    rows
}

#[tokio::test]
async fn a_refund_and_a_shipment_of_one_order_never_both_happen() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let product = app
        .product(&admin, json!({"stock": 100, "price": 1500}))
        .await;
    let mut paid = Vec::new();
    for _ in 0..20 {
        let order = place(
            &app,
            &token,
            json!([{"product_id": product["id"], "quantity": 1}]),
        )
        .await;
        let payment = pay(&app, &token, &order, VISA).await;
        paid.push((order, payment));
    }
    for (order, payment) in &paid {
        wait_for(&app, &token, payment, settled).await;
        wait_order(&app, &token, order, "paid").await;
    }

    // Two admins at once on every order: one refunds, one ships.
    let races = paid.iter().map(|(order, payment)| {
        let refund = format!("{PAYMENTS}{}/refund/", str_of(&payment["id"]));
        let ship = format!("{ORDERS}{}/ship/", str_of(&order["id"]));
        let admin = admin.clone();
        let app = &app;
        async move {
            let empty = json!({});
            let (refunded, shipped) = tokio::join!(
                app.post(&refund, Some(&admin), &empty),
                app.post(&ship, Some(&admin), &empty),
            );
            (refunded.status().as_u16(), shipped.status().as_u16())
        }
    });
    let answers = join_all(races).await;

    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    for ((order, payment), (refund_status, ship_status)) in paid.iter().zip(answers) {
        let id = str_of(&payment["id"]);
        let payment = wait_for(&app, &token, payment, settled).await;
        let order_now = order_status(&app, &token, order).await;
        let refunds = ledger(&app, &id)
            .await
            .into_iter()
            .filter(|(kind, outcome)| kind == "refund" && outcome == "succeeded")
            .count();
        let status = str_of(&payment["status"]);
        match (order_now.as_str(), status.as_str()) {
            ("fulfilled", "succeeded") => {
                assert_eq!(ship_status, 200, "the shipment won");
                assert_eq!(refund_status, 409, "the refund lost and says so");
                assert_eq!(refunds, 0, "no money went back for a shipped order");
                outcomes.entry("shipped").or_default();
                *outcomes.get_mut("shipped").expect("entry") += 1;
            }
            ("refunded", "refunded") => {
                assert_eq!(refund_status, 202, "the refund won");
                assert_eq!(ship_status, 409, "the shipment lost and says so");
                assert_eq!(refunds, 1, "refunded once, in the provider's ledger");
                *outcomes.entry("refunded").or_default() += 1;
            }
            (o, p) => panic!("order {o} with its payment {p}: both or neither happened"),
        }
    }
    assert_eq!(outcomes.values().sum::<usize>(), 20);

    // Nothing the orders service refused is left unreconciled.
    let report = admin_report(&app, &admin).await;
    assert_eq!(
        report["payment_pool"]["refused_outcomes"],
        json!([]),
        "{report}"
    );
}

/// A shop whose one order was paid and then shipped: (admin token,
/// customer token, order, payment).
async fn paid_and_shipped(app: &TestApp) -> (String, String, Value, Value) {
    let (admin, token, order) = shop(app).await;
    let payment = pay(app, &token, &order, VISA).await;
    wait_for(app, &token, &payment, settled).await;
    wait_order(app, &token, &order, "paid").await;
    let ship = format!("{ORDERS}{}/ship/", str_of(&order["id"]));
    assert_eq!(
        app.post(&ship, Some(&admin), &json!({})).await.status(),
        200
    );
    (admin, token, order, payment)
}

#[tokio::test]
async fn a_refund_of_a_shipped_order_is_refused_before_the_provider_is_asked() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_and_shipped(&app).await;
    let refund = format!("{PAYMENTS}{}/refund/", str_of(&payment["id"]));
    let r = app.post(&refund, Some(&admin), &json!({})).await;
    assert_problem(r, 409, "order_not_payable").await;
    let now = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(now["status"], "succeeded");
    assert_eq!(
        provider_calls(&app, &str_of(&payment["id"])).await,
        1,
        "the charge only"
    );
    assert_eq!(order_status(&app, &token, &order).await, "fulfilled");
}

#[tokio::test]
async fn an_outcome_orders_refuses_is_kept_counted_and_reported() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_and_shipped(&app).await;
    // The provider refunds a shipped order on its own (a chargeback): the
    // orders service cannot follow, and that must not vanish.
    let r = simulate(&app, &admin, &payment, "charge.refunded").await;
    assert_eq!(r.status(), 202);
    wait_for(&app, &token, &payment, |p| p["status"] == "refunded").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        let report = admin_report(&app, &admin).await;
        if report["payment_pool"]["refused_outcomes"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reported: {report}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let refused = &report["payment_pool"]["refused_outcomes"];
    let kinds: Vec<String> = refused
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            assert_eq!(r["payment_id"], payment["id"]);
            assert_eq!(r["order_id"], order["id"]);
            assert!(str_of(&r["refusal"]).contains("fulfilled"), "{r}");
            str_of(&r["kind"])
        })
        .collect();
    assert_eq!(kinds, ["refund_started", "refund_succeeded"]);
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "emporium_payment_outbox_refused 2"),
        "{metrics}"
    );
    assert_eq!(order_status(&app, &token, &order).await, "fulfilled");
}

#[tokio::test]
async fn the_refund_route_reads_no_more_than_the_body_limit() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.http.body_limit_bytes = 1024;
    })
    .await;
    let (admin, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    let refund = format!("{PAYMENTS}{}/refund/", str_of(&payment["id"]));
    let big = json!({"padding": "x".repeat(4096)});
    let r = app.post(&refund, Some(&admin), &big).await;
    assert_problem(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn provider_event_simulation_does_not_exist_in_production() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.app.environment = Environment::Production;
        s.diagnostics.enabled = false;
        s.webhooks.allow_loopback_http = false;
        s.auth.jwt_secret = SecretString::from("j".repeat(48));
        s.payments.webhook_secret = SecretString::from("w".repeat(40));
        s.orders.order_token_secret = SecretString::from("o".repeat(40));
        s.observability.metrics_token = Some(SecretString::from("m".repeat(24)));
    })
    .await;
    let (admin, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    wait_order(&app, &token, &order, "paid").await;
    let r = simulate(&app, &admin, &payment, "charge.refunded").await;
    assert_problem(r, 404, "not_found").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let now = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(now["status"], "succeeded");
    assert_eq!(order_status(&app, &token, &order).await, "paid");
}

#[tokio::test]
async fn a_signed_webhook_holding_nul_characters_is_refused_as_an_invalid_event() {
    let app = TestApp::spawn_with(quick).await;
    let (_, token, order) = shop(&app).await;
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    let secret = app
        .settings
        .payments
        .webhook_secret
        .expose_secret()
        .to_owned();
    let now = chrono::Utc::now().timestamp();
    let bodies = [
        json!({"id": "evt_\u{0}1", "type": "charge.refunded", "created": now,
            "data": {"payment_id": payment["id"]}}),
        json!({"id": "evt_2", "type": "charge.\u{0}refunded", "created": now,
            "data": {"payment_id": payment["id"]}}),
        json!({"id": "evt_3", "type": "charge.refund_failed", "created": now,
            "data": {"payment_id": payment["id"], "code": "no\u{0}pe"}}),
    ];
    for body in bodies {
        let body = body.to_string();
        assert!(body.contains("\\u0000"), "{body}");
        let signature = webhook::header(&[secret.as_bytes()], now, body.as_bytes());
        let r = post_webhook(&app, &body, Some(signature)).await;
        assert_problem(r, 400, "invalid_event").await;
    }
    let now = wait_for(&app, &token, &payment, settled).await;
    assert_eq!(now["status"], "succeeded");
}

#[tokio::test]
async fn declined_attempts_are_limited_per_order_and_per_customer() {
    const DECLINED: &str = "4000000000000002";
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.payments.failed_attempts_per_order = 3;
        s.payments.failed_attempts_per_customer = 5;
    })
    .await;
    let (admin, token, order) = shop(&app).await;
    for _ in 0..3 {
        let p = pay(&app, &token, &order, DECLINED).await;
        assert_eq!(
            wait_for(&app, &token, &p, settled).await["status"],
            "failed"
        );
    }
    let body = json!({"order_id": order["id"], "payment_method":
        {"card_number": VISA, "exp_month": 12, "exp_year": 2031, "cvc": "123"}});
    let r = app.post(PAYMENTS, Some(&token), &body).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    assert_problem(r, 429, "rate_limited").await;

    // Another order of the same customer: two more failures, then the
    // customer's limit holds too.
    let product = app.product(&admin, json!({"stock": 10})).await;
    let second = place(
        &app,
        &token,
        json!([{"product_id": product["id"], "quantity": 1}]),
    )
    .await;
    for _ in 0..2 {
        let p = pay(&app, &token, &second, DECLINED).await;
        assert_eq!(
            wait_for(&app, &token, &p, settled).await["status"],
            "failed"
        );
    }
    let body = json!({"order_id": second["id"], "payment_method":
        {"card_number": VISA, "exp_month": 12, "exp_year": 2031, "cvc": "123"}});
    assert_problem(
        app.post(PAYMENTS, Some(&token), &body).await,
        429,
        "rate_limited",
    )
    .await;

    // Someone else is not affected.
    let (_, bob, _) = app.customer("bob@example.com").await;
    let theirs = place(
        &app,
        &bob,
        json!([{"product_id": product["id"], "quantity": 1}]),
    )
    .await;
    let p = pay(&app, &bob, &theirs, VISA).await;
    assert_eq!(
        wait_for(&app, &bob, &p, settled).await["status"],
        "succeeded"
    );
}
