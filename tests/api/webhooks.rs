//! Webhooks: subscriptions, signed deliveries (verified as a Standard
//! Webhooks subscriber would), retries, a subscriber down then up, one
//! failing for ever (disabled, while others are not slowed), SSRF refusals
//! after DNS, secret rotation, and nothing lost across a crash.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use emporium::config::{Domain, Settings};
use emporium::domain::events::{Event, EventType};
use serde_json::{json, Value};

use crate::helpers::{str_of, JsonBody, TestApp};
use crate::webhook_receiver::Receiver;

/// Fast retries for tests: the schedule's shape, in milliseconds.
fn quick(s: &mut Settings) {
    s.events.relay_interval_ms = 50;
    s.webhooks.poll_interval_ms = 50;
    s.webhooks.timeout_ms = 2_000;
    s.webhooks.retry_schedule_ms = vec![100, 200, 300, 300, 300, 300, 300, 300, 300, 300];
}

/// Appends `n` events of `event_type` to `domain`'s outbox, each in its
/// own committed transaction, as a domain's change would.
async fn emit(app: &TestApp, domain: Domain, event_type: EventType, n: usize) -> Vec<Event> {
    let pool = app.database_pool(domain).await;
    let mut events = Vec::new();
    for i in 0..n {
        let event = Event::new(event_type, uuid::Uuid::new_v4(), &json!({"n": i}));
        let mut tx = pool.begin().await.expect("tx");
        emporium::store::events::append(&mut tx, &event)
            .await
            .expect("appended");
        tx.commit().await.expect("committed");
        events.push(event);
    }
    pool.close().await;
    events
}

async fn subscribe(app: &TestApp, admin: &str, url: &str, events: Value) -> Value {
    let r = app
        .post(
            "/api/v1/webhooks/",
            Some(admin),
            &json!({"url": url, "events": events, "description": "test"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.body_json().await
}

async fn deliveries(app: &TestApp, admin: &str, endpoint: &str) -> Vec<Value> {
    let page: Value = app
        .get(
            &format!("/api/v1/webhooks/{endpoint}/deliveries/?page_size=100"),
            Some(admin),
        )
        .await
        .body_json()
        .await;
    page["results"].as_array().expect("results").clone()
}

/// The endpoint's delivery log once it has `n` entries and none is still
/// pending (or after 10 s, as it is then). The receiver sees a request
/// before the worker has recorded its answer, so the log trails it.
async fn settled_deliveries(app: &TestApp, admin: &str, endpoint: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(app, admin, endpoint).await;
        let settled = log.len() >= n && log.iter().all(|d| d["status"] != "pending");
        if settled || std::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(received: &[crate::webhook_receiver::Received]) -> HashSet<String> {
    received.iter().map(|r| r.webhook_id.clone()).collect()
}

#[tokio::test]
async fn subscriptions_are_managed_by_admins_and_bad_input_is_refused() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("c@example.com").await;
    let hook = "http://127.0.0.1:9/hook";

    let created = subscribe(&app, &admin, hook, json!(["order.paid", "order.paid", "*"])).await;
    let id = str_of(&created["id"]);
    assert!(str_of(&created["secret"]).starts_with("whsec_"));
    assert_eq!(created["events"], json!(["order.paid", "*"]));
    assert_eq!(created["is_active"], true);

    let got: Value = app
        .get(&format!("/api/v1/webhooks/{id}/"), Some(&admin))
        .await
        .body_json()
        .await;
    assert!(got.get("secret").is_none(), "the secret is shown once");
    let list: Value = app
        .get("/api/v1/webhooks/", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(list["count"], 1);

    let patched: Value = app
        .patch(
            &format!("/api/v1/webhooks/{id}/"),
            Some(&admin),
            &json!({"events": ["refund.succeeded"], "description": "refunds"}),
        )
        .await
        .body_json()
        .await;
    assert_eq!(patched["events"], json!(["refund.succeeded"]));
    assert_eq!(patched["description"], "refunds");

    let rotated: Value = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret/"),
            Some(&admin),
            &json!({}),
        )
        .await
        .body_json()
        .await;
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["previous_secret_expires_at"].is_string());

    // Unhappy paths.
    let cases = [
        (json!({"events": ["*"]}), 422),
        (json!({"url": hook}), 422),
        (json!({"url": hook, "events": "order.paid"}), 422),
        (json!({"url": 7, "events": ["*"]}), 422),
        (json!({"url": hook, "events": ["*"], "extra": 1}), 422),
        (json!({"url": hook, "events": ["order.shipped"]}), 422),
        (json!({"url": hook, "events": []}), 422),
        (
            json!({"url": "http://hooks.example.com/x", "events": ["*"]}),
            422,
        ),
        (json!({"url": "https://10.0.0.7/x", "events": ["*"]}), 422),
        (
            json!({"url": "https://169.254.169.254/latest/meta-data", "events": ["*"]}),
            422,
        ),
        (
            json!({"url": "https://user:pw@hooks.example.com/", "events": ["*"]}),
            422,
        ),
        (json!({"url": "not a url", "events": ["*"]}), 422),
        (
            json!({"url": format!("https://h.example.com/{}", "x".repeat(3000)), "events": ["*"]}),
            422,
        ),
    ];
    for (body, want) in cases {
        let r = app.post("/api/v1/webhooks/", Some(&admin), &body).await;
        assert_eq!(r.status(), want, "{body}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
    }
    let huge = json!({"url": hook, "events": ["*"], "description": "x".repeat(100_000)});
    assert_eq!(
        app.post("/api/v1/webhooks/", Some(&admin), &huge)
            .await
            .status(),
        413
    );
    assert_eq!(
        app.post(
            "/api/v1/webhooks/",
            Some(&customer),
            &json!({"url": hook, "events": ["*"]})
        )
        .await
        .status(),
        403
    );
    assert_eq!(app.get("/api/v1/webhooks/", None).await.status(), 401);
    assert_eq!(
        app.get("/api/v1/webhooks/", Some("not.a.jwt"))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}/"), Some(&customer))
            .await
            .status(),
        403
    );
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{missing}/"), Some(&admin))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("/api/v1/webhooks/nope/", Some(&admin))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/webhooks/{id}/deliveries/?status=lost"),
            Some(&admin)
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/webhooks/{id}/deliveries/{missing}/redeliver/"),
            Some(&admin),
            &json!({})
        )
        .await
        .status(),
        404
    );

    // A key with webhooks:manage manages them; one without cannot.
    let key = |scopes: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let r: Value = app
                .post(
                    "/api/v1/api-keys/",
                    Some(&admin),
                    &json!({"name": "erp", "scopes": scopes}),
                )
                .await
                .body_json()
                .await;
            str_of(&r["key"])
        }
    };
    let manager = key(json!(["webhooks:manage"])).await;
    let reader = key(json!(["orders:read"])).await;
    assert_eq!(
        app.get("/api/v1/webhooks/", Some(&manager)).await.status(),
        200
    );
    assert_eq!(
        app.get("/api/v1/webhooks/", Some(&reader)).await.status(),
        403
    );

    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}/"), Some(&admin))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}/"), Some(&admin))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn events_arrive_signed_as_cloudevents_only_where_subscribed() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let receiver = Receiver::start().await;
    let paid_only = subscribe(&app, &admin, &receiver.url("/paid"), json!(["order.paid"])).await;
    let all = subscribe(&app, &admin, &receiver.url("/all"), json!(["*"])).await;

    let paid = emit(&app, Domain::Orders, EventType::OrderPaid, 3).await;
    let products = emit(&app, Domain::Catalog, EventType::ProductCreated, 2).await;

    let want_paid: HashSet<String> = paid.iter().map(|e| e.id.to_string()).collect();
    let want_all: HashSet<String> = paid
        .iter()
        .chain(&products)
        .map(|e| e.id.to_string())
        .collect();
    let got_all = receiver
        .wait_for("/all", Duration::from_secs(10), |r| {
            want_all.is_subset(&ids(r))
        })
        .await;
    let got_paid = receiver
        .wait_for("/paid", Duration::from_secs(10), |r| ids(r).len() >= 3)
        .await;
    assert_eq!(ids(&got_paid), want_paid);
    // The admin's own registration may still have been in the outbox when
    // "*" subscribed; nothing else may arrive.
    let extra: Vec<_> = got_all
        .iter()
        .filter(|r| !want_all.contains(&r.webhook_id))
        .map(|r| r.json()["type"].clone())
        .collect();
    assert!(
        extra.iter().all(|t| t == "customer.created"),
        "unexpected deliveries: {extra:?}"
    );
    let got_all: Vec<_> = got_all
        .into_iter()
        .filter(|r| want_all.contains(&r.webhook_id))
        .collect();

    let now = chrono::Utc::now().timestamp();
    for r in &got_all {
        assert!(
            r.verifies_with(&str_of(&all["secret"])),
            "signature of {r:?}"
        );
        assert!(!r.verifies_with(&str_of(&paid_only["secret"])));
        assert_eq!(r.content_type, "application/json");
        let ts: i64 = r.timestamp.parse().expect("timestamp");
        assert!((now - ts).abs() < 300);
        let ce = r.json();
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(
            ce["id"],
            r.webhook_id.as_str(),
            "webhook-id is the event id"
        );
        assert!(ce["type"] == "order.paid" || ce["type"] == "product.created");
        let source = if ce["type"] == "order.paid" {
            "/emporium/orders"
        } else {
            "/emporium/catalog"
        };
        assert_eq!(ce["source"], source);
        for key in ["time", "subject", "datacontenttype", "data"] {
            assert!(ce.get(key).is_some(), "{key} in {ce}");
        }
    }
    for r in &got_paid {
        assert!(r.verifies_with(&str_of(&paid_only["secret"])));
    }

    // The log says each was delivered, once, with the answer.
    // (The admin's registration, if it was still in the outbox, is the
    // only other entry allowed, as above.)
    let log = settled_deliveries(&app, &admin, &str_of(&all["id"]), 5).await;
    let (log, extra): (Vec<_>, Vec<_>) = log
        .into_iter()
        .partition(|d| want_all.contains(&str_of(&d["event_id"])));
    assert!(
        extra.iter().all(|d| d["event_type"] == "customer.created"),
        "unexpected deliveries: {extra:?}"
    );
    assert_eq!(log.len(), 5);
    for d in &log {
        assert_eq!(d["status"], "succeeded", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status_code"], 200);
        assert_eq!(d["last_response"], "answered 200");
        assert!(d["next_attempt_at"].is_null());
    }
}

#[tokio::test]
async fn failures_are_retried_and_a_subscriber_down_for_a_while_gets_everything() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        // Enough retries to outlast the outage on a loaded machine.
        s.webhooks.retry_schedule_ms = [100, 200, 300].into_iter().chain([500; 22]).collect();
    })
    .await;
    let (_, admin) = app.admin().await;
    let receiver = Receiver::start().await;
    let hook = subscribe(&app, &admin, &receiver.url("/h"), json!(["*"])).await;

    // Answering 500: attempts pile up on the schedule.
    receiver.answer(500);
    let first = emit(&app, Domain::Payments, EventType::PaymentSucceeded, 2).await;
    receiver
        .wait_for("/h", Duration::from_secs(10), |r| r.len() >= 4)
        .await;
    let log = deliveries(&app, &admin, &str_of(&hook["id"])).await;
    assert!(
        log.iter()
            .any(|d| d["last_status_code"] == 500 && d["last_response"] == "answered 500"),
        "{log:?}"
    );
    // Down (connections dropped unanswered) while more happens.
    receiver.set_down(true);
    let second = emit(&app, Domain::Orders, EventType::OrderCreated, 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(&app, &admin, &str_of(&hook["id"])).await;
        assert!(log.iter().all(|d| d["status"] == "pending"), "{log:?}");
        // A dropped connection is recorded as an error, without a status.
        if log.len() == 5
            && log
                .iter()
                .filter(|d| d["event_type"] == "order.created")
                .all(|d| d["last_error"].is_string() && d["last_status_code"].is_null())
        {
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Up again: everything arrives.
    receiver.set_down(false);
    receiver.answer(204);
    let want: HashSet<String> = first
        .iter()
        .chain(&second)
        .map(|e| e.id.to_string())
        .collect();
    receiver
        .wait_for("/h", Duration::from_secs(15), |r| {
            let ok: HashSet<String> = r
                .iter()
                .filter(|x| x.at > Instant::now() - Duration::from_secs(60))
                .map(|x| x.webhook_id.clone())
                .collect();
            want.is_subset(&ok)
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(&app, &admin, &str_of(&hook["id"])).await;
        if log.len() == 5 && log.iter().all(|d| d["status"] == "succeeded") {
            assert!(log.iter().all(|d| d["last_status_code"] == 204));
            assert!(log.iter().any(|d| d["attempts"].as_i64() > Some(1)));
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_subscriber_failing_for_ever_is_disabled_and_slows_nobody_else() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        // About a second and a half of failures disables it.
        s.webhooks.disable_after_hours = 1.5 / 3600.0;
        s.webhooks.retry_schedule_ms = vec![50; 30];
    })
    .await;
    let (_, admin) = app.admin().await;
    let bad = Receiver::start().await;
    bad.answer(500);
    let good = Receiver::start().await;
    let failing = subscribe(&app, &admin, &bad.url("/bad"), json!(["*"])).await;
    subscribe(&app, &admin, &good.url("/good"), json!(["*"])).await;
    let failing_id = str_of(&failing["id"]);

    // A steady trickle of events; the healthy subscriber keeps up with it.
    let mut worst = Duration::ZERO;
    for _ in 0..8 {
        let sent = Instant::now();
        let event = emit(&app, Domain::Orders, EventType::OrderPaid, 1).await;
        let id = event[0].id.to_string();
        let got = good
            .wait_for("/good", Duration::from_secs(5), |r| {
                r.iter().any(|x| x.webhook_id == id)
            })
            .await;
        let at = got
            .iter()
            .find(|x| x.webhook_id == id)
            .map(|x| x.at)
            .expect("arrived");
        worst = worst.max(at.duration_since(sent));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        worst < Duration::from_secs(5),
        "the healthy subscriber waited {worst:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let endpoint = loop {
        let e: Value = app
            .get(&format!("/api/v1/webhooks/{failing_id}/"), Some(&admin))
            .await
            .body_json()
            .await;
        if e["is_active"] == false {
            break e;
        }
        assert!(Instant::now() < deadline, "never disabled: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = str_of(&endpoint["disabled_reason"]);
    assert!(reason.contains("HTTP 500"), "{reason}");
    assert!(endpoint["disabled_at"].is_string());
    let log = deliveries(&app, &admin, &failing_id).await;
    assert!(log.iter().all(|d| d["status"] == "failed"), "{log:?}");

    // Nothing more is sent to it; redelivery waits for it to be re-enabled.
    let attempts_then = bad.requests().len();
    let delivery = str_of(&log[0]["id"]);
    let redeliver = format!("/api/v1/webhooks/{failing_id}/deliveries/{delivery}/redeliver/");
    let r = app.post(&redeliver, Some(&admin), &json!({})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.body_json().await["code"], "endpoint_disabled");
    emit(&app, Domain::Orders, EventType::OrderPaid, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bad.requests().len(), attempts_then);

    // Fixed and re-enabled, a redelivery arrives with the same event id.
    bad.answer(200);
    let e: Value = app
        .patch(
            &format!("/api/v1/webhooks/{failing_id}/"),
            Some(&admin),
            &json!({"is_active": true}),
        )
        .await
        .body_json()
        .await;
    assert_eq!(e["is_active"], true);
    assert!(e["disabled_reason"].is_null() && e["failing_since"].is_null());
    let r = app.post(&redeliver, Some(&admin), &json!({})).await;
    assert_eq!(r.status(), 202);
    let event_id = str_of(&log[0]["event_id"]);
    bad.wait_for("/bad", Duration::from_secs(5), |r| r.len() > attempts_then)
        .await;
    let last = bad.requests().last().cloned().expect("a request");
    assert_eq!(last.webhook_id, event_id);
}

#[tokio::test]
async fn targets_resolving_to_private_addresses_are_refused_at_delivery() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.webhooks.allow_loopback_http = false;
        s.webhooks.retry_schedule_ms = vec![100];
    })
    .await;
    let (_, admin) = app.admin().await;
    let receiver = Receiver::start().await;
    // Plain http to loopback is refused as written...
    let r = app
        .post(
            "/api/v1/webhooks/",
            Some(&admin),
            &json!({"url": receiver.url("/x"), "events": ["*"]}),
        )
        .await;
    assert_eq!(r.status(), 422);
    // ...and a name is judged by what it resolves to, at delivery time.
    let hook = subscribe(
        &app,
        &admin,
        &format!("https://localhost:{}/x", receiver.port),
        json!(["*"]),
    )
    .await;
    emit(&app, Domain::Auth, EventType::CustomerCreated, 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(&app, &admin, &str_of(&hook["id"])).await;
        if let Some(d) = log.first().filter(|d| d["status"] == "failed") {
            let error = str_of(&d["last_error"]);
            assert!(error.contains("no public address"), "{error}");
            assert!(d["last_status_code"].is_null());
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify_for_a_day() {
    let app = TestApp::spawn_with(quick).await;
    let (_, admin) = app.admin().await;
    let receiver = Receiver::start().await;
    let hook = subscribe(&app, &admin, &receiver.url("/r"), json!(["*"])).await;
    let old = str_of(&hook["secret"]);
    let rotated: Value = app
        .post(
            &format!("/api/v1/webhooks/{}/rotate-secret/", str_of(&hook["id"])),
            Some(&admin),
            &json!({}),
        )
        .await
        .body_json()
        .await;
    let new = str_of(&rotated["secret"]);
    let expires: chrono::DateTime<chrono::Utc> = str_of(&rotated["previous_secret_expires_at"])
        .parse()
        .expect("time");
    let in_a_day = chrono::Utc::now() + chrono::Duration::hours(24);
    assert!((expires - in_a_day).num_seconds().abs() < 60);
    emit(&app, Domain::Orders, EventType::OrderCreated, 1).await;
    let got = receiver
        .wait_for("/r", Duration::from_secs(10), |r| !r.is_empty())
        .await;
    assert!(got[0].verifies_with(&new));
    assert!(got[0].verifies_with(&old));
    assert_eq!(got[0].signature.split(' ').count(), 2);
}
