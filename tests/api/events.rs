//! The public event outboxes: every committed change appends its event to
//! its domain's `event_outbox` in the change's transaction, once; replays
//! and refused requests append nothing. Read straight from each domain's
//! database.

use std::time::{Duration, Instant};

use emporium::config::Domain;
use emporium::domain::events::{
    CustomerData, FulfilmentData, OrderData, PaymentData, ProductData, RefundData, ReturnData,
    VariantStockData,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{str_of, TestApp};
use crate::orders::{order_body, place, ORDERS};
use crate::payments::{pay, quick, settled, wait_for, wait_order, PAYMENTS, VISA};

const DECLINED: &str = "4000000000000002";

/// One outbox row: type, subject, payload.
type Row = (String, String, Value);

/// Every event in `domain`'s outbox, oldest first.
async fn outbox(app: &TestApp, domain: Domain) -> Vec<Row> {
    let pool = app.database_pool(domain).await;
    let rows: Vec<(String, String, sqlx::types::Json<Value>)> =
        sqlx::query_as("SELECT type, subject, data FROM event_outbox ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("outbox");
    pool.close().await;
    rows.into_iter().map(|(t, s, d)| (t, s, d.0)).collect()
}

/// How many events of `kind` about `subject` there are.
fn count(rows: &[Row], kind: &str, subject: &str) -> usize {
    rows.iter()
        .filter(|(t, s, _)| t == kind && s == subject)
        .count()
}

/// The one event of `kind` about `subject`, its payload read as `T`.
fn once<T: DeserializeOwned>(rows: &[Row], kind: &str, subject: &str) -> T {
    let found: Vec<&Row> = rows
        .iter()
        .filter(|(t, s, _)| t == kind && s == subject)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{kind} about {subject} once; outbox: {:#?}",
        rows.iter().map(|r| (&r.0, &r.1)).collect::<Vec<_>>()
    );
    serde_json::from_value(found[0].2.clone())
        .unwrap_or_else(|e| panic!("{kind} payload {}: {e}", found[0].2))
}

/// Polls until `domain`'s outbox has `kind` about `subject` (the payment
/// pool and the relay work after the request answered).
async fn wait_event(app: &TestApp, domain: Domain, kind: &str, subject: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&outbox(app, domain).await, kind, subject) == 0 {
        assert!(Instant::now() < deadline, "no {kind} about {subject}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ok(r: reqwest::Response, status: u16, what: &str) -> Value {
    let got = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(got.as_u16(), status, "{what}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn order_path(order: &Value, rest: &str) -> String {
    format!("{ORDERS}{}/{rest}", str_of(&order["id"]))
}

#[tokio::test]
async fn every_committed_change_appends_its_event_once_and_nothing_else_does() {
    let app = TestApp::spawn_with(quick).await;
    let (admin_id, admin) = app.admin().await;
    let (ann_id, token, _) = app.customer("ann@example.com").await;

    // auth: registration and create-admin both tell customer.created.
    let auth = outbox(&app, Domain::Auth).await;
    let ann: CustomerData = once(&auth, "customer.created", &ann_id);
    assert_eq!(ann.email, "ann@example.com");
    assert_eq!(ann.customer_id.to_string(), ann_id);
    assert!(!ann.email_verified);
    let boss: CustomerData = once(&auth, "customer.created", &admin_id);
    assert_eq!(
        (boss.first_name.as_str(), boss.last_name.as_str()),
        ("Admin", "")
    );
    // A taken email is refused and tells nothing.
    let r = app
        .post(
            "/api/v1/auth/register/",
            None,
            &json!({"email": "ann@example.com", "password": crate::helpers::PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(outbox(&app, Domain::Auth).await.len(), auth.len());

    // catalog: create, edit, delete; opening stock and admin changes.
    let p = app
        .product(&admin, json!({"stock": 10, "price": 2500}))
        .await;
    let pid = str_of(&p["id"]);
    ok(
        app.patch(
            &format!("/api/v1/products/{pid}/"),
            Some(&admin),
            &json!({"price": 2600, "stock": 12}),
        )
        .await,
        200,
        "editing the product",
    )
    .await;
    let gone = app.product(&admin, json!({"stock": 0})).await;
    let gone_id = str_of(&gone["id"]);
    ok(
        app.delete(&format!("/api/v1/products/{gone_id}/"), Some(&admin))
            .await,
        204,
        "deleting a product",
    )
    .await;
    let catalog = outbox(&app, Domain::Catalog).await;
    let created: ProductData = once(&catalog, "product.created", &pid);
    assert_eq!((created.price, created.is_active), (2500, true));
    let updated: ProductData = once(&catalog, "product.updated", &pid);
    assert_eq!(updated.price, 2600);
    let deleted: ProductData = once(&catalog, "product.deleted", &gone_id);
    assert_eq!(deleted.product_id.to_string(), gone_id);
    assert_eq!(count(&catalog, "product.created", &gone_id), 1);
    // No stock, no movement: the empty product's stock never moved.
    assert_eq!(count(&catalog, "variant.stock_changed", &gone_id), 0);
    // A product without options has one variant with the product's id.
    let stock: Vec<VariantStockData> = catalog
        .iter()
        .filter(|(t, s, _)| t == "variant.stock_changed" && *s == pid)
        .map(|r| serde_json::from_value(r.2.clone()).expect("stock payload"))
        .collect();
    let seen: Vec<(&str, i64, i64)> = stock
        .iter()
        .map(|s| (s.reason.as_str(), s.stock_quantity, s.available))
        .collect();
    assert_eq!(seen, [("adjustment", 10, 10), ("adjustment", 12, 12)]);

    // orders: a keyed order, replayed, makes one order.created.
    let keyed = || {
        app.request(reqwest::Method::POST, ORDERS, Some(&token))
            .header("idempotency-key", "events-order-1")
            .json(&order_body(json!([{"product_id": pid, "quantity": 2}])))
            .send()
    };
    let order = ok(keyed().await.expect("sent"), 201, "placing a keyed order").await;
    let again = keyed().await.expect("sent");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = ok(again, 201, "replaying it").await;
    assert_eq!(again["id"], order["id"]);
    let oid = str_of(&order["id"]);

    // A refused order (more than the stock) tells nothing anywhere.
    let before = (
        outbox(&app, Domain::Orders).await.len(),
        outbox(&app, Domain::Catalog).await.len(),
    );
    let r = app
        .post(
            ORDERS,
            Some(&token),
            &order_body(json!([{"product_id": pid, "quantity": 1000}])),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let after = (
        outbox(&app, Domain::Orders).await.len(),
        outbox(&app, Domain::Catalog).await.len(),
    );
    assert_eq!(after, before, "a refused order appends nothing");

    // Pay, ship, deliver.
    let payment = pay(&app, &token, &order, VISA).await;
    wait_for(&app, &token, &payment, settled).await;
    wait_order(&app, &token, &order, "paid").await;
    for step in ["ship", "deliver"] {
        ok(
            app.post(
                &order_path(&order, &format!("{step}/")),
                Some(&admin),
                &json!({}),
            )
            .await,
            200,
            step,
        )
        .await;
    }
    let parcels = ok(
        app.get(&order_path(&order, "fulfilments/"), Some(&admin))
            .await,
        200,
        "parcels",
    )
    .await;
    let parcel = str_of(&parcels[0]["id"]);
    let line = str_of(&order["items"][0]["id"]);

    // A return asked, approved, received (restocked) and refunded; another
    // asked and rejected.
    let returns = order_path(&order, "returns/");
    let ask = |note: &'static str| {
        let body =
            json!({"lines": [{"line_id": line, "quantity": 1, "reason": "broken"}], "note": note});
        let path = returns.clone();
        let token = token.clone();
        let app = &app;
        async move { app.post(&path, Some(&token), &body).await }
    };
    let ret = ok(ask("too big").await, 201, "asking a return").await;
    let rid = str_of(&ret["id"]);
    let ret_path = |ret: &str, action: &str| format!("{ORDERS}{oid}/returns/{ret}/{action}/");
    ok(
        app.post(&ret_path(&rid, "approve"), Some(&admin), &json!({}))
            .await,
        200,
        "approving",
    )
    .await;
    ok(
        app.post(
            &ret_path(&rid, "receive"),
            Some(&admin),
            &json!({"lines": [{"line_id": line, "quantity": 1, "restock": true}]}),
        )
        .await,
        200,
        "receiving",
    )
    .await;
    let refund = ok(
        app.post(&ret_path(&rid, "refund"), Some(&admin), &json!({}))
            .await,
        201,
        "refunding the return",
    )
    .await;
    let refund_id = str_of(&refund["id"]);
    let other = ok(ask("").await, 201, "asking another return").await;
    let other_id = str_of(&other["id"]);
    ok(
        app.post(
            &ret_path(&other_id, "reject"),
            Some(&admin),
            &json!({"reason": "worn"}),
        )
        .await,
        200,
        "rejecting",
    )
    .await;

    // Another order, cancelled while pending.
    let cancelled = place(&app, &token, json!([{"product_id": pid, "quantity": 1}])).await;
    ok(
        app.post(&order_path(&cancelled, "cancel/"), Some(&token), &json!({}))
            .await,
        200,
        "cancelling",
    )
    .await;

    // A third: declined, then paid; a parcel made and cancelled; refunded
    // whole.
    let third = place(&app, &token, json!([{"product_id": pid, "quantity": 1}])).await;
    let declined = pay(&app, &token, &third, DECLINED).await;
    let declined = wait_for(&app, &token, &declined, settled).await;
    assert_eq!(declined["status"], "failed");
    let paid = pay(&app, &token, &third, VISA).await;
    wait_for(&app, &token, &paid, settled).await;
    wait_order(&app, &token, &third, "paid").await;
    let third_line = str_of(&third["items"][0]["id"]);
    let made = ok(
        app.post(
            &order_path(&third, "fulfilments/"),
            Some(&admin),
            &json!({"lines": [{"line_id": third_line, "quantity": 1}]}),
        )
        .await,
        201,
        "making a parcel",
    )
    .await;
    let made_id = str_of(&made["id"]);
    ok(
        app.post(
            &order_path(&third, &format!("fulfilments/{made_id}/cancel/")),
            Some(&admin),
            &json!({}),
        )
        .await,
        200,
        "cancelling the parcel",
    )
    .await;
    ok(
        app.request(
            reqwest::Method::POST,
            &format!("{PAYMENTS}{}/refund/", str_of(&paid["id"])),
            Some(&admin),
        )
        .header("idempotency-key", "events-refund-1")
        .send()
        .await
        .expect("sent"),
        202,
        "refunding the third order",
    )
    .await;
    wait_order(&app, &token, &third, "refunded").await;

    // A partial refund the provider refuses: its ledger says the charge was
    // refunded already, out of band.
    let fourth = place(&app, &token, json!([{"product_id": pid, "quantity": 1}])).await;
    let fourth_pay = pay(&app, &token, &fourth, VISA).await;
    wait_for(&app, &token, &fourth_pay, settled).await;
    wait_order(&app, &token, &fourth, "paid").await;
    let payments_db = app.payments_pool().await;
    sqlx::query(
        "INSERT INTO provider_ledger (idempotency_key, kind, payment_id, amount, currency, outcome) \
         VALUES ($1, 'refund', $2::uuid, 2600, 'EUR', 'succeeded')",
    )
    .bind(Uuid::new_v4())
    .bind(str_of(&fourth_pay["id"]))
    .execute(&payments_db)
    .await
    .expect("ledger row");
    payments_db.close().await;
    let refused = ok(
        app.request(
            reqwest::Method::POST,
            &format!("{PAYMENTS}{}/refunds/", str_of(&fourth_pay["id"])),
            Some(&admin),
        )
        .header("idempotency-key", "events-refund-2")
        .json(&json!({"amount": 100}))
        .send()
        .await
        .expect("sent"),
        201,
        "a partial refund",
    )
    .await;
    let refused_id = str_of(&refused["id"]);

    // Payments settle on the pool: wait for the last outcomes.
    wait_event(&app, Domain::Payments, "refund.failed", &refused_id).await;
    wait_event(&app, Domain::Payments, "refund.succeeded", &refund_id).await;

    let orders = outbox(&app, Domain::Orders).await;
    let created: OrderData = once(&orders, "order.created", &oid);
    assert_eq!(created.status, "pending");
    assert_eq!(created.lines.len(), 1);
    assert_eq!(created.lines[0].line_id.to_string(), line);
    assert_eq!(
        (created.lines[0].quantity, created.lines[0].unit_price),
        (2, 2600)
    );
    assert_eq!(created.total, order["total"].as_i64().expect("total"));
    assert_eq!(
        created.customer_id.map(|c| c.to_string()),
        Some(ann_id.clone())
    );
    assert_eq!(created.shipping_address["city"], "Lyon");
    let paid_order: OrderData = once(&orders, "order.paid", &oid);
    assert_eq!(paid_order.status, "paid");
    assert_eq!(paid_order.created_at, created.created_at);
    let fulfilled: OrderData = once(&orders, "order.fulfilled", &oid);
    assert_eq!(fulfilled.lines, created.lines);
    let delivered: OrderData = once(&orders, "order.delivered", &oid);
    assert_eq!(delivered.status, "delivered");
    let shipped: FulfilmentData = once(&orders, "fulfilment.shipped", &parcel);
    assert_eq!(shipped.order_id.to_string(), oid);
    assert_eq!(shipped.lines[0].quantity, 2);
    once::<FulfilmentData>(&orders, "fulfilment.created", &parcel);
    let arrived: FulfilmentData = once(&orders, "fulfilment.delivered", &parcel);
    assert_eq!(arrived.status, "delivered");
    let asked: ReturnData = once(&orders, "return.requested", &rid);
    assert_eq!(asked.reason.as_deref(), Some("too big"));
    assert_eq!(asked.lines[0].quantity, 1);
    once::<ReturnData>(&orders, "return.approved", &rid);
    let received: ReturnData = once(&orders, "return.received", &rid);
    assert_eq!(received.status, "received");
    let other_asked: ReturnData = once(&orders, "return.requested", &other_id);
    assert_eq!(other_asked.reason, None);
    let rejected: ReturnData = once(&orders, "return.rejected", &other_id);
    assert_eq!(rejected.reject_reason.as_deref(), Some("worn"));
    let cancelled_id = str_of(&cancelled["id"]);
    once::<OrderData>(&orders, "order.created", &cancelled_id);
    let gone: OrderData = once(&orders, "order.cancelled", &cancelled_id);
    assert_eq!(gone.status, "cancelled");
    let third_id = str_of(&third["id"]);
    once::<FulfilmentData>(&orders, "fulfilment.created", &made_id);
    once::<FulfilmentData>(&orders, "fulfilment.cancelled", &made_id);
    let refunded: OrderData = once(&orders, "order.refunded", &third_id);
    assert_eq!(refunded.refunded_amount, refunded.total);
    once::<OrderData>(&orders, "order.paid", &third_id);
    // Things that did not happen were not told.
    for (kind, subject) in [
        ("order.paid", &cancelled_id),
        ("order.fulfilled", &third_id),
        ("order.refunded", &oid),
        ("order.expired", &oid),
        ("fulfilment.shipped", &made_id),
        ("return.approved", &other_id),
    ] {
        assert_eq!(count(&orders, kind, subject), 0, "{kind} about {subject}");
    }
    // Every order event's subject is an order id, and so on.
    for (kind, subject, data) in &orders {
        let prefix = kind.split('.').next().expect("prefix");
        assert_eq!(data[format!("{prefix}_id")], json!(subject), "{kind}");
    }

    let payments = outbox(&app, Domain::Payments).await;
    let charged: PaymentData = once(&payments, "payment.succeeded", &str_of(&payment["id"]));
    assert_eq!(charged.order_id.to_string(), oid);
    assert_eq!(charged.amount, created.total);
    let failed: PaymentData = once(&payments, "payment.failed", &str_of(&declined["id"]));
    assert_eq!(failed.failure_code.as_deref(), Some("card_declined"));
    assert_eq!(failed.status, "failed");
    once::<PaymentData>(&payments, "payment.succeeded", &str_of(&paid["id"]));
    let back: RefundData = once(&payments, "refund.succeeded", &refund_id);
    assert_eq!(back.return_id.map(|r| r.to_string()), Some(rid.clone()));
    assert_eq!(back.amount, 2600);
    let whole: Vec<RefundData> = payments
        .iter()
        .filter(|(t, _, d)| t == "refund.succeeded" && d["payment_id"] == paid["id"])
        .map(|r| serde_json::from_value(r.2.clone()).expect("refund payload"))
        .collect();
    assert_eq!(whole.len(), 1, "one whole refund of the third order");
    assert_eq!(whole[0].amount, refunded.total);
    assert!(whole[0].refund_id.is_some());
    let no: RefundData = once(&payments, "refund.failed", &refused_id);
    assert_eq!(no.amount, 100);
    assert_eq!(count(&payments, "payment.failed", &str_of(&paid["id"])), 0);

    // Stock: reserved, sold, given back, returned; each movement told
    // with the variant's totals after it.
    let catalog = outbox(&app, Domain::Catalog).await;
    let reasons: Vec<String> = catalog
        .iter()
        .filter(|(t, s, _)| t == "variant.stock_changed" && *s == pid)
        .map(|r| {
            let d: VariantStockData = serde_json::from_value(r.2.clone()).expect("stock payload");
            assert!(d.available <= d.stock_quantity, "{d:?}");
            d.reason
        })
        .collect();
    for reason in ["reservation", "sale", "release", "return", "adjustment"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    // Four orders reserved (the refused one did not).
    assert_eq!(reasons.iter().filter(|r| *r == "reservation").count(), 4);
    let last: VariantStockData = serde_json::from_value(
        catalog
            .iter()
            .rev()
            .find(|(t, s, _)| t == "variant.stock_changed" && *s == pid)
            .expect("a stock event")
            .2
            .clone(),
    )
    .expect("stock payload");
    assert_eq!(last.available, app.stock_of(&admin, &p).await);
}

#[tokio::test]
async fn an_unpaid_order_that_expires_is_told_once() {
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
    let oid = str_of(&order["id"]);
    wait_event(&app, Domain::Orders, "order.expired", &oid).await;
    // The release follows the expiry (the saga's order).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let catalog = outbox(&app, Domain::Catalog).await;
        let released = catalog.iter().any(|(t, s, d)| {
            t == "variant.stock_changed" && *s == str_of(&p["id"]) && d["reason"] == "release"
        });
        if released {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired order's stock never released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Later sweeps do not tell it again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let orders = outbox(&app, Domain::Orders).await;
    let expired: OrderData = once(&orders, "order.expired", &oid);
    assert_eq!(expired.status, "expired");
    assert_eq!(expired.lines.len(), 1);
    assert_eq!(expired.lines[0].quantity, 3);
    assert_eq!(count(&orders, "order.cancelled", &oid), 0);
}
