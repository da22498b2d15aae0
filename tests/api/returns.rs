//! Returns: asked by the customer within the window, approved, received
//! (restocked or not) and refunded through the payment, each step once;
//! never more returned than delivered, restocked than received, or
//! refunded than captured, also when the steps race.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{
    assert_conserved, assert_orders_conserved, assert_problem, error_fields, str_of, TestApp,
};
use crate::orders::{place, ORDERS};
use crate::payments::{pay, quick, settled, wait_for, wait_order, VISA};
use crate::stock_locations::{level_at, levels, movements_of, MAIN};

fn returns_path(order: &Value) -> String {
    format!("{ORDERS}{}/returns/", str_of(&order["id"]))
}

fn return_path(order: &Value, ret: &Value, action: &str) -> String {
    format!("{}{}/{action}/", returns_path(order), str_of(&ret["id"]))
}

/// A delivered order of `quantity` units at 25.00: (admin, customer,
/// product, order, payment).
async fn delivered(app: &TestApp, quantity: i64) -> (String, String, Value, Value, Value) {
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app
        .product(&admin, json!({"stock": 10, "price": 2500}))
        .await;
    let order = place(
        app,
        &token,
        json!([{"product_id": p["id"], "quantity": quantity}]),
    )
    .await;
    let payment = pay(app, &token, &order, VISA).await;
    wait_for(app, &token, &payment, settled).await;
    wait_order(app, &token, &order, "paid").await;
    // Before delivery nothing can be returned.
    let line = str_of(&order["items"][0]["id"]);
    let r = app
        .post(
            &returns_path(&order),
            Some(&token),
            &json!({"lines": [{"line_id": line, "quantity": 1}]}),
        )
        .await;
    assert_problem(r, 422, "return_window_closed").await;
    for step in ["ship", "deliver"] {
        let r = app
            .post(
                &format!("{ORDERS}{}/{step}/", str_of(&order["id"])),
                Some(&admin),
                &json!({}),
            )
            .await;
        assert_eq!(r.status(), 200, "{step}");
    }
    let order: Value = app
        .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(order["status"], "delivered");
    (admin, token, p, order, payment)
}

async fn ask(app: &TestApp, token: &str, order: &Value, units: i64) -> reqwest::Response {
    let line = str_of(&order["items"][0]["id"]);
    app.post(
        &returns_path(order),
        Some(token),
        &json!({"lines": [{"line_id": line, "quantity": units, "reason": "broken"}], "note": "sorry"}),
    )
    .await
}

async fn wait_return(
    app: &TestApp,
    token: &str,
    order: &Value,
    ret: &Value,
    status: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all: Value = app
            .get(&returns_path(order), Some(token))
            .await
            .body_json()
            .await;
        let now = all
            .as_array()
            .expect("list")
            .iter()
            .find(|r| r["id"] == ret["id"])
            .cloned()
            .expect("the return");
        if now["status"] == status {
            return now;
        }
        assert!(Instant::now() < deadline, "return never {status}: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_delivered_unit_is_returned_received_restocked_and_refunded_exactly() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, p, order, payment) = delivered(&app, 2).await;
    assert_eq!(level_at(&levels(&app, &admin, &p).await, MAIN), (8, 0));

    let r = ask(&app, &token, &order, 1).await;
    assert_eq!(r.status(), 201);
    let ret: Value = r.body_json().await;
    assert_eq!(ret["status"], "requested");
    assert_eq!(ret["lines"][0]["reason"], "broken");
    assert_eq!(ret["note"], "sorry");
    let seen: Value = app
        .get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(seen["items"][0]["returned_quantity"], 1);

    // Customers ask; admins decide.
    let r = app
        .post(
            &return_path(&order, &ret, "approve"),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_problem(r, 403, "permission_denied").await;
    let r = app
        .post(
            &return_path(&order, &ret, "approve"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Not received yet: no refund.
    let r = app
        .post(
            &return_path(&order, &ret, "refund"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;

    let line = str_of(&order["items"][0]["id"]);
    let r = app
        .post(
            &return_path(&order, &ret, "receive"),
            Some(&admin),
            &json!({"lines": [{"line_id": line, "quantity": 1, "restock": true}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let received: Value = r.body_json().await;
    assert_eq!(received["status"], "received");
    assert_eq!(received["lines"][0]["restocked"], 1);
    assert_eq!(
        received["lines"][0]["location_id"], MAIN,
        "where its parcel left"
    );
    // Back on the shelf, and available, at once.
    assert_eq!(level_at(&levels(&app, &admin, &p).await, MAIN), (9, 0));
    assert_eq!(app.stock_of(&admin, &p).await, 9);
    let moved = movements_of(&app, &admin, &order).await;
    assert!(
        moved.contains(&("return".to_owned(), MAIN.to_owned(), 1, 0)),
        "{moved:?}"
    );
    // Receiving twice is refused.
    let r = app
        .post(
            &return_path(&order, &ret, "receive"),
            Some(&admin),
            &json!({"lines": [{"line_id": line, "quantity": 1, "restock": true}]}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;

    // The refund is the unit's exact value, through the payment.
    let r = app
        .post(
            &return_path(&order, &ret, "refund"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let refund: Value = r.body_json().await;
    assert_eq!(refund["amount"], 2500);
    assert_eq!(refund["return_id"], ret["id"]);
    let done = wait_return(&app, &token, &order, &ret, "refunded").await;
    assert_eq!(done["refund_id"], refund["id"]);
    let paid_back = wait_for(&app, &token, &payment, |p| p["refunded_amount"] == 2500).await;
    assert_eq!(paid_back["status"], "succeeded");
    let r = app
        .post(
            &return_path(&order, &ret, "refund"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;
    assert_conserved(&app).await;
}

#[tokio::test]
async fn returns_that_should_not_be_are_refused_and_write_nothing() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, _, order, _) = delivered(&app, 2).await;
    let (_, other, _) = app.customer("bob@example.com").await;
    let path = returns_path(&order);
    let line = str_of(&order["items"][0]["id"]);
    let one = json!({"lines": [{"line_id": line, "quantity": 1}]});

    assert_problem(app.post(&path, None, &one).await, 401, "not_authenticated").await;
    assert_eq!(
        app.post(&path, Some("not-a-token"), &one).await.status(),
        401
    );
    assert_problem(app.post(&path, Some(&other), &one).await, 404, "not_found").await;
    assert_problem(app.get(&path, Some(&other)).await, 404, "not_found").await;
    let unknown = format!("{ORDERS}{}/returns/", Uuid::new_v4());
    assert_problem(
        app.post(&unknown, Some(&token), &one).await,
        404,
        "not_found",
    )
    .await;
    let cases = [
        (json!({}), vec!["lines"]),
        (json!({"lines": []}), vec!["lines"]),
        (
            json!({"lines": [{"line_id": line, "quantity": 0}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"line_id": line, "quantity": "one"}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"line_id": Uuid::new_v4(), "quantity": 1}]}),
            vec!["lines.0.line_id"],
        ),
        (
            json!({"lines": [{"line_id": line, "quantity": 1, "reason": "x".repeat(501)}]}),
            vec!["lines.0.reason"],
        ),
        (
            json!({"lines": [{"line_id": line, "quantity": 1}], "colour": "red"}),
            vec!["colour"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post(&path, Some(&token), &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let problem: Value = r.body_json().await;
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }
    let huge = json!({"lines": [{"line_id": line, "quantity": 1}], "note": "x".repeat(3_000_000)});
    assert_eq!(app.post(&path, Some(&token), &huge).await.status(), 413);
    assert_problem(ask(&app, &token, &order, 3).await, 409, "over_return").await;
    let listed: Value = app.get(&path, Some(&token)).await.body_json().await;
    assert_eq!(listed, json!([]), "nothing was written");

    // A rejected return gives its units back to be asked for again.
    let first: Value = ask(&app, &token, &order, 2).await.body_json().await;
    assert_problem(ask(&app, &token, &order, 1).await, 409, "over_return").await;
    let r = app
        .post(
            &return_path(&order, &first, "reject"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 422, "a rejection says why");
    let r = app
        .post(
            &return_path(&order, &first, "reject"),
            Some(&admin),
            &json!({"reason": "worn"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.body_json().await["reject_reason"], "worn");
    let second: Value = ask(&app, &token, &order, 2).await.body_json().await;
    assert_eq!(second["status"], "requested");
    // Receipts within the return only; locations that exist only.
    app.post(
        &return_path(&order, &second, "approve"),
        Some(&admin),
        &json!({}),
    )
    .await;
    let r = app
        .post(
            &return_path(&order, &second, "receive"),
            Some(&admin),
            &json!({"lines": [{"line_id": line, "quantity": 3, "restock": true}]}),
        )
        .await;
    assert_problem(r, 422, "over_receipt").await;
    let r = app
        .post(
            &return_path(&order, &second, "receive"),
            Some(&admin),
            &json!({"lines": [{"line_id": line, "quantity": 1, "restock": true, "location_id": Uuid::new_v4()}]}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(error_fields(&problem), ["lines.0.location_id"]);
    // Unknown returns, and customers on admin routes.
    let ghost = json!({"id": Uuid::new_v4()});
    for action in ["approve", "close", "receive", "refund"] {
        let body = if action == "receive" {
            json!({"lines": []})
        } else {
            json!({})
        };
        let r = app
            .post(&return_path(&order, &ghost, action), Some(&admin), &body)
            .await;
        assert_problem(r, 404, "not_found").await;
        let r = app
            .post(&return_path(&order, &second, action), Some(&token), &body)
            .await;
        assert_problem(r, 403, "permission_denied").await;
    }
    // Closed before anything arrived: its units may be asked for again.
    let r = app
        .post(
            &return_path(&order, &second, "close"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let third: Value = ask(&app, &token, &order, 2).await.body_json().await;
    assert_eq!(third["status"], "requested");
    let r = app
        .post(
            &return_path(&order, &third, "close"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);

    // Too late: the window runs from the last delivery.
    let orders = app.orders_pool().await;
    sqlx::query("UPDATE fulfilments SET delivered_at = now() - interval '31 days' WHERE order_id = $1::uuid")
        .bind(str_of(&order["id"]))
        .execute(&orders)
        .await
        .expect("aged");
    orders.close().await;
    assert_problem(
        ask(&app, &token, &order, 1).await,
        422,
        "return_window_closed",
    )
    .await;
    // A closed return stays closed.
    let r = app
        .post(
            &return_path(&order, &third, "close"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;
    assert_orders_conserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_returns_receipts_and_refunds_conserve_units_and_money() {
    let app = TestApp::spawn_with(quick).await;
    let (admin, token, p, order, payment) = delivered(&app, 3).await;
    // Six asks of one unit each for three delivered units: three win.
    let asks = join_all((0..6).map(|_| ask(&app, &token, &order, 1))).await;
    let mut returns = Vec::new();
    for r in asks {
        match r.status().as_u16() {
            201 => returns.push(r.body_json().await),
            409 => assert_eq!(r.body_json().await["code"], "over_return"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(returns.len(), 3);
    for ret in &returns {
        let r = app
            .post(
                &return_path(&order, ret, "approve"),
                Some(&admin),
                &json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    // Each return received twice and refunded twice, all at once.
    let line = str_of(&order["items"][0]["id"]);
    let receipt = json!({"lines": [{"line_id": line, "quantity": 1, "restock": true}]});
    let mut calls = Vec::new();
    for ret in &returns {
        for action in ["receive", "receive", "refund", "refund"] {
            let body = if action == "receive" {
                receipt.clone()
            } else {
                json!({})
            };
            calls.push((action, return_path(&order, ret, action), body));
        }
    }
    let answers = join_all(calls.iter().map(|(action, url, body)| {
        let app = &app;
        let admin = admin.clone();
        async move {
            (
                *action,
                app.post(url, Some(&admin), body).await.status().as_u16(),
            )
        }
    }))
    .await;
    let received = answers
        .iter()
        .filter(|(a, s)| *a == "receive" && *s == 200)
        .count();
    assert_eq!(received, 3, "each return received once: {answers:?}");
    assert!(
        answers.iter().all(|(_, s)| matches!(s, 200 | 201 | 409)),
        "{answers:?}"
    );
    // Refunds that raced ahead of their receipt are asked again.
    for ret in &returns {
        let r = app
            .post(
                &return_path(&order, ret, "refund"),
                Some(&admin),
                &json!({}),
            )
            .await;
        assert!(matches!(r.status().as_u16(), 201 | 409), "{}", r.status());
        wait_return(&app, &token, &order, ret, "refunded").await;
    }
    wait_for(&app, &token, &payment, |p| p["refunded_amount"] == 7500).await;
    assert_eq!(level_at(&levels(&app, &admin, &p).await, MAIN), (10, 0));
    assert_conserved(&app).await;
}
