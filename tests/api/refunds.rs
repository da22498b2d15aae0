//! Partial and repeated refunds: amounts and order lines priced from the
//! order, never more than was captured (also when twenty are fired at
//! once), every refund final after a crash, and the shop, the provider's
//! ledger and the order agreeing on what went back.

use std::time::{Duration, Instant};

use emporium::config::Settings;
use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_money_conserved, assert_problem, error_fields, str_of, TestApp};
use crate::orders::{place, ORDERS};
use crate::payments::{pay, quick, settled, shop, wait_for, PAYMENTS, VISA};

fn refunds_path(payment: &Value) -> String {
    format!("{PAYMENTS}{}/refunds/", str_of(&payment["id"]))
}

/// A shop whose one order (2 × 25.00) is paid: (admin, customer, order,
/// payment).
async fn paid_shop(app: &TestApp) -> (String, String, Value, Value) {
    let (admin, token, order) = shop(app).await;
    let payment = pay(app, &token, &order, VISA).await;
    let payment = wait_for(app, &token, &payment, settled).await;
    assert_eq!(payment["status"], "succeeded");
    // Refunds wait for the order to have taken the payment: the order says
    // paid, and payments has recorded that orders took the outcome.
    crate::payments::wait_order(app, &token, &order, "paid").await;
    let pool = app.payments_pool().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let undelivered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM payment_outbox WHERE payment_id = $1::text::uuid AND delivered_at IS NULL",
        )
        .bind(str_of(&payment["id"]))
        .fetch_one(&pool)
        .await
        .expect("outbox");
        if undelivered == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outcome never reached orders"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;
    (admin, token, order, payment)
}

async fn refund(app: &TestApp, admin: &str, payment: &Value, body: Value) -> reqwest::Response {
    app.request(reqwest::Method::POST, &refunds_path(payment), Some(admin))
        .header("idempotency-key", Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .expect("sent")
}

/// Polls until every refund of the payment is final; returns them.
async fn settled_refunds(app: &TestApp, token: &str, payment: &Value) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list: Value = app
            .get(&refunds_path(payment), Some(token))
            .await
            .body_json()
            .await;
        let list = list.as_array().expect("list").clone();
        if list.iter().all(|r| r["status"] != "pending") {
            return list;
        }
        assert!(Instant::now() < deadline, "refunds never settled: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the order until its refunded amount is `amount`.
async fn wait_refunded(app: &TestApp, token: &str, order: &Value, amount: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o: Value = app
            .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(token))
            .await
            .body_json()
            .await;
        if o["refunded_amount"] == amount {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "order never refunded {amount}: {o}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn amounts_and_lines_are_refunded_in_pieces_up_to_the_capture_and_the_order_follows() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    let line = str_of(&order["items"][0]["id"]);
    assert_eq!(order["refund_status"], "none");

    let r = refund(
        &app,
        &admin,
        &payment,
        json!({"amount": 700, "reason": "late"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let first: Value = r.body_json().await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["amount"], 700);
    assert_eq!(first["reason"], "late");
    // The full refund is no shortcut once partial refunds exist.
    let r = app
        .post(
            &format!("{PAYMENTS}{}/refund/", str_of(&payment["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 409, "partially_refunded").await;
    // Units still on the shelf are not refunded by line: they would be
    // both paid back and sent.
    let r = refund(
        &app,
        &admin,
        &payment,
        json!({"lines": [{"line_id": line, "quantity": 1}]}),
    )
    .await;
    assert_problem(r, 409, "over_refund").await;
    let ship = format!("{ORDERS}{}/ship/", str_of(&order["id"]));
    assert_eq!(
        app.post(&ship, Some(&admin), &json!({})).await.status(),
        200
    );
    // One shipped unit of the line: its price, exactly.
    let r = refund(
        &app,
        &admin,
        &payment,
        json!({"lines": [{"line_id": line, "quantity": 1}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let second: Value = r.body_json().await;
    assert_eq!(second["amount"], 2500);
    assert_eq!(second["lines"][0]["quantity"], 1);
    // Two more units than are left: over the line.
    let r = refund(
        &app,
        &admin,
        &payment,
        json!({"lines": [{"line_id": line, "quantity": 2}]}),
    )
    .await;
    assert_problem(r, 409, "over_refund").await;
    // The last unit (2500) is more than the 1800 left of the capture.
    let r = refund(
        &app,
        &admin,
        &payment,
        json!({"lines": [{"line_id": line, "quantity": 1}]}),
    )
    .await;
    let problem = assert_problem(r, 409, "refund_exceeds_captured").await;
    assert!(str_of(&problem["detail"]).contains("1800"), "{problem}");
    let r = refund(&app, &admin, &payment, json!({"amount": 1800})).await;
    assert_eq!(r.status(), 201);
    let r = refund(&app, &admin, &payment, json!({"amount": 1})).await;
    assert_problem(r, 409, "refund_exceeds_captured").await;

    let all = settled_refunds(&app, &token, &payment).await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r["status"] == "succeeded"), "{all:?}");
    let now = wait_for(&app, &token, &payment, |p| p["refunded_amount"] == 5000).await;
    assert_eq!(
        now["status"], "succeeded",
        "partial refunds leave the charge"
    );
    let o = wait_refunded(&app, &token, &order, 5000).await;
    assert_eq!(o["refund_status"], "refunded");
    assert_eq!(o["status"], "fulfilled", "refunds do not move goods");
    assert_money_conserved(&app).await;
}

#[tokio::test]
async fn bad_refund_requests_are_refused_clearly_and_write_nothing() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    let (_, other, _) = app.customer("bob@example.com").await;
    let path = refunds_path(&payment);
    let line = str_of(&order["items"][0]["id"]);
    let fine = json!({"amount": 100});

    assert_problem(app.post(&path, None, &fine).await, 401, "not_authenticated").await;
    assert_eq!(
        app.post(&path, Some("not-a-token"), &fine).await.status(),
        401
    );
    assert_problem(
        app.post(&path, Some(&token), &fine).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(app.get(&path, Some(&other)).await, 404, "not_found").await;
    let unknown = format!("{PAYMENTS}{}/refunds/", Uuid::new_v4());
    assert_problem(
        app.post(&unknown, Some(&admin), &fine).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("{PAYMENTS}nope/refunds/"), Some(&admin))
            .await,
        404,
        "not_found",
    )
    .await;

    // Another order's line is no line of this one.
    let p = app.product(&admin, json!({"stock": 5})).await;
    let elsewhere = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 1}]),
    )
    .await;
    let cases = [
        (json!({}), vec!["amount"]),
        (
            json!({"amount": 100, "lines": [{"line_id": line, "quantity": 1}]}),
            vec!["amount"],
        ),
        (json!({"amount": 0}), vec!["amount"]),
        (json!({"amount": "ten"}), vec!["amount"]),
        (json!({"lines": []}), vec!["lines"]),
        (
            json!({"lines": [{"line_id": line, "quantity": 0}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"line_id": line}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"line_id": "nope", "quantity": 1}]}),
            vec!["lines.0.line_id"],
        ),
        (
            json!({"lines": [{"line_id": elsewhere["items"][0]["id"], "quantity": 1}]}),
            vec!["lines.0.line_id"],
        ),
        (json!({"amount": 5, "colour": "red"}), vec!["colour"]),
    ];
    for (body, fields) in cases {
        let r = app.post(&path, Some(&admin), &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let problem: Value = r.body_json().await;
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }
    let huge = json!({"amount": 5, "reason": "x".repeat(3_000_000)});
    assert_eq!(app.post(&path, Some(&admin), &huge).await.status(), 413);
    // A payment that is not captured cannot be refunded.
    let unpaid = pay(&app, &token, &elsewhere, "4000000000000002").await;
    let unpaid = wait_for(&app, &token, &unpaid, settled).await;
    assert_eq!(unpaid["status"], "failed");
    let r = app.post(&refunds_path(&unpaid), Some(&admin), &fine).await;
    assert_problem(r, 409, "invalid_transition").await;
    let listed: Value = app.get(&path, Some(&admin)).await.body_json().await;
    assert_eq!(listed, json!([]), "nothing was written");

    // One key, one refund; the same key with another body is refused.
    let send = |body: Value| {
        app.request(reqwest::Method::POST, &path, Some(&admin))
            .header("idempotency-key", "refund-1")
            .json(&body)
            .send()
    };
    let first: Value = send(json!({"amount": 100}))
        .await
        .expect("sent")
        .body_json()
        .await;
    let again = send(json!({"amount": 100})).await.expect("sent");
    assert_eq!(again.status(), 201);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.body_json().await["id"], first["id"]);
    let other_body = send(json!({"amount": 200})).await.expect("sent");
    assert_problem(other_body, 422, "idempotency_error").await;
    let listed: Value = app.get(&path, Some(&token)).await.body_json().await;
    assert_eq!(
        listed.as_array().expect("list").len(),
        1,
        "the payer reads them"
    );
    settled_refunds(&app, &token, &payment).await;
    assert_money_conserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_refunds_of_a_tenth_fired_together_give_back_the_capture_once() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    let tenth = payment["amount"].as_i64().expect("amount") / 10;
    let answers =
        join_all((0..20).map(|_| refund(&app, &admin, &payment, json!({"amount": tenth})))).await;
    let mut created = 0;
    for r in answers {
        match r.status().as_u16() {
            201 => created += 1,
            409 => assert_eq!(r.body_json().await["code"], "refund_exceeds_captured"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 10);
    let all = settled_refunds(&app, &token, &payment).await;
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|r| r["status"] == "succeeded"));
    wait_refunded(&app, &token, &order, tenth * 10).await;
    assert_money_conserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_with_refunds_in_flight_leaves_each_final_and_made_once() {
    let slow = |s: &mut Settings| {
        quick(s);
        s.payments.simulator.latency_ms = 1_500;
        s.payments.provider_timeout_ms = 2_000;
        s.payments.lease_secs = 5;
    };
    let app = TestApp::spawn_with(slow).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    for amount in [1000, 1500, 2000] {
        let r = refund(&app, &admin, &payment, json!({"amount": amount})).await;
        assert_eq!(r.status(), 201);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Crash while the provider calls are under way.
    let settings = app.crash();
    let app = TestApp::spawn_beside(&settings).await;
    let all = settled_refunds(&app, &token, &payment).await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r["status"] == "succeeded"), "{all:?}");
    wait_refunded(&app, &token, &order, 4500).await;
    assert_money_conserved(&app).await;
    drop(app);
    emporium::store::database::drop_databases(&settings.database)
        .await
        .expect("drop");
}

#[tokio::test]
async fn a_full_refund_of_an_unshipped_order_puts_its_units_back_on_sale() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    let product = order["items"][0]["product_id"].clone();
    let p = json!({"id": product});
    crate::payments::wait_order(&app, &token, &order, "paid").await;
    assert_eq!(app.stock_of(&admin, &p).await, 98);
    // A parcel being packed when the money goes back is cancelled.
    let parcels = format!("{ORDERS}{}/fulfilments/", str_of(&order["id"]));
    let r = app
        .post(
            &parcels,
            Some(&admin),
            &json!({"lines": [{"variant_id": product, "quantity": 1}]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            &format!("{PAYMENTS}{}/refund/", str_of(&payment["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202);
    crate::payments::wait_order(&app, &token, &order, "refunded").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.stock_of(&admin, &p).await != 100 {
        assert!(Instant::now() < deadline, "the units never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let o: Value = app
        .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(o["refunded_amount"], o["total"]);
    assert_eq!(o["refund_status"], "refunded");
    assert_eq!(o["fulfilments"][0]["status"], "cancelled");
    crate::helpers::assert_reservations_match_orders(&app).await;
    crate::helpers::assert_stock_ledger_adds_up(&app).await;
    crate::helpers::assert_orders_conserved(&app).await;
    assert_money_conserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_paid_unfulfilled_order_refunds_it_and_gives_its_stock_back_once() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    let product = json!({"id": order["items"][0]["product_id"]});
    crate::payments::wait_order(&app, &token, &order, "paid").await;
    let cancel = format!("{ORDERS}{}/cancel/", str_of(&order["id"]));
    // With a parcel being packed it is refused: that parcel comes first.
    let parcels = format!("{ORDERS}{}/fulfilments/", str_of(&order["id"]));
    let parcel: Value = app
        .post(
            &parcels,
            Some(&admin),
            &json!({"lines": [{"variant_id": product["id"], "quantity": 1}]}),
        )
        .await
        .body_json()
        .await;
    let r = app.post(&cancel, Some(&token), &json!({})).await;
    assert_problem(r, 409, "order_has_fulfilments").await;
    let r = app
        .post(
            &format!("{parcels}{}/cancel/", str_of(&parcel["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Five cancels at once: one refund.
    let nothing = json!({});
    let answers = join_all((0..5).map(|_| app.post(&cancel, Some(&token), &nothing))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 409)),
        "{statuses:?}"
    );
    crate::payments::wait_order(&app, &token, &order, "refunded").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.stock_of(&admin, &product).await != 100 {
        assert!(Instant::now() < deadline, "the units never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        crate::payments::provider_calls(&app, &str_of(&payment["id"])).await,
        2,
        "one charge, one refund"
    );
    let r = app.post(&cancel, Some(&token), &json!({})).await;
    assert_problem(r, 409, "invalid_transition").await;
    crate::helpers::assert_reservations_match_orders(&app).await;
    crate::helpers::assert_stock_ledger_adds_up(&app).await;
    assert_money_conserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_parcel_while_a_refund_is_under_way_leaves_the_order_refunding() {
    let slow = |s: &mut Settings| {
        quick(s);
        s.payments.simulator.latency_ms = 1_500;
        s.payments.provider_timeout_ms = 2_000;
        s.payments.lease_secs = 5;
    };
    let app = TestApp::spawn_with(slow).await;
    let (admin, token, order, payment) = paid_shop(&app).await;
    let product = order["items"][0]["product_id"].clone();
    let parcels = format!("{ORDERS}{}/fulfilments/", str_of(&order["id"]));
    let parcel: Value = app
        .post(
            &parcels,
            Some(&admin),
            &json!({"lines": [{"variant_id": product, "quantity": 1}]}),
        )
        .await
        .body_json()
        .await;
    let r = app
        .post(
            &format!("{PAYMENTS}{}/refund/", str_of(&payment["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202);
    // The provider takes its time: the order is refund_pending meanwhile.
    let r = app
        .post(
            &format!("{parcels}{}/cancel/", str_of(&parcel["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        crate::payments::order_status(&app, &token, &order).await,
        "refund_pending",
        "a parcel's cancel never moves a refunding order back to paid"
    );
    crate::payments::wait_order(&app, &token, &order, "refunded").await;
    crate::helpers::assert_conserved(&app).await;
}
