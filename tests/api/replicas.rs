//! Several replicas on the same databases and Redis, with no proxy between
//! them, driven alternately: what one does, the other honours. (Writes never
//! read stale across replicas: `catalog_view.rs` and `revocation.rs`; each
//! payment job once across two pools: `payments.rs`.)

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, patient_redis, str_of, TestApp, PASSWORD};
use crate::orders::{order_body, ORDERS};

#[tokio::test]
async fn login_rate_limits_are_shared_between_replicas() {
    let a = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.rate_limit.login_per_email_client = 4;
    })
    .await;
    let b = TestApp::spawn_beside(&a.settings).await;
    a.register("ann@example.com").await;
    let wrong = json!({"email": "ann@example.com", "password": "not the password"});
    // Four failures, two on each replica: each replica alone is under the
    // limit, together they reach it.
    for app in [&a, &b, &a, &b] {
        assert_problem(
            app.post("/api/v1/auth/login/", None, &wrong).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    for app in [&a, &b] {
        assert_problem(
            app.post("/api/v1/auth/login/", None, &wrong).await,
            429,
            "rate_limited",
        )
        .await;
    }
    // The right password is limited too (the limit is per account and
    // client, whatever the outcome), on both replicas.
    let right = json!({"email": "ann@example.com", "password": PASSWORD});
    assert_eq!(
        b.post("/api/v1/auth/login/", None, &right).await.status(),
        429
    );
}

#[tokio::test]
async fn an_idempotency_key_used_on_one_replica_replays_on_the_other() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let (_, token, _) = a.customer("ann@example.com").await;
    let p = a.product(&admin, json!({"stock": 10})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 2}]));
    let send = |app: &TestApp, body: &Value| {
        app.request(reqwest::Method::POST, ORDERS, Some(&token))
            .header("idempotency-key", "checkout-7")
            .json(body)
            .send()
    };

    let first = send(&a, &body).await.expect("sent");
    assert_eq!(first.status(), 201);
    let first: Value = first.body_json().await;
    let replayed = send(&b, &body).await.expect("sent");
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<Value>().await.expect("json"), first);
    // The same key with another body is refused on either replica.
    let other = order_body(json!([{"product_id": p["id"], "quantity": 3}]));
    let refused = send(&b, &other).await.expect("sent");
    assert_eq!(refused.status(), 422);
    assert_eq!(
        a.stock_of(&admin, &p).await,
        8,
        "one order, one reservation"
    );
}

/// Who answered an order request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnsweredBy {
    /// The replica being drained.
    Draining,
    /// The other one, after the draining replica refused the connection.
    OtherAfterRefusal,
    /// The other one, after the draining replica dropped a connection
    /// (one the kernel had queued but the server never took, as its
    /// listener closed: the other replica's answer is then not a replay).
    OtherAfterDrop,
    /// The other one, replaying an order the draining replica placed but
    /// never answered: a request lost after it was accepted.
    OtherReplayingLost,
}

/// One order per key: from `first` unless it cannot be reached or drops
/// the request unanswered, then from `second` with the same key, as a load
/// balancer retries. Returns the status, who answered, and the body.
async fn place_with_failover(
    client: &reqwest::Client,
    first: &str,
    second: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (u16, AnsweredBy, Value) {
    let send = |base: &str| {
        client
            .post(format!("{base}{ORDERS}"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    match send(first).await {
        Ok(response) => {
            let status = response.status().as_u16();
            // An answer whose body is cut off was lost, too.
            let body = response.json::<Value>().await;
            (status, AnsweredBy::Draining, body.expect("a whole answer"))
        }
        Err(e) => {
            assert!(e.is_request(), "an unexpected failure: {e:?}");
            let by = if e.is_connect() {
                AnsweredBy::OtherAfterRefusal
            } else {
                AnsweredBy::OtherAfterDrop
            };
            let response = send(second).await.expect("the other replica answers");
            let status = response.status().as_u16();
            let by = if response.headers().contains_key("idempotent-replayed") {
                AnsweredBy::OtherReplayingLost
            } else {
                by
            };
            (status, by, response.body_json().await)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_loses_no_request_it_accepted() {
    // Eighty orders in 400 ms on a loaded machine: pools patient enough
    // that a 503 for a busy pool cannot stand in for a lost request.
    let mut a = TestApp::spawn_with(|s| s.database.acquire_timeout_ms = 4_000).await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let (_, token, _) = a.customer("ann@example.com").await;
    let p = a.product(&admin, json!({"stock": 1000})).await;
    let body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    // A fresh connection per request, as from many clients: a request is
    // either accepted by the draining replica or refused at connect.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let (first, second) = (a.address.clone(), b.address.clone());

    let orders = 80;
    // The drain starts once the first order has been answered by the
    // replica that drains (and not before 150 ms): on a loaded machine a
    // fixed delay could close its listener before it accepted anything.
    let first_answer = tokio::sync::Notify::new();
    let load = join_all((0..orders).map(|n| {
        let (client, first, second, token, body) = (&client, &first, &second, &token, &body);
        let first_answer = &first_answer;
        async move {
            // Spread over ~400 ms so the drain starts in the middle.
            tokio::time::sleep(Duration::from_millis(n * 5)).await;
            let key = format!("drain-{n}");
            let result = place_with_failover(client, first, second, token, &key, body).await;
            if result.1 == AnsweredBy::Draining {
                first_answer.notify_one();
            }
            result
        }
    }));
    let drain = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = tokio::time::timeout(Duration::from_secs(20), first_answer.notified()).await;
        a.stop_gracefully().await;
    };
    let (mut results, ()) = tokio::join!(load, drain);
    // On a loaded machine the whole burst may reach the draining replica
    // before its listener closes; a few more after it has closed always
    // take the other path, refused at connect and placed on the other.
    let late = 5;
    for n in orders..orders + late {
        let key = format!("drain-{n}");
        results.push(place_with_failover(&client, &first, &second, &token, &key, &body).await);
    }
    let orders = orders + late;

    let mut ids = std::collections::BTreeSet::new();
    let count = |who| results.iter().filter(|(_, by, _)| *by == who).count();
    for (status, answered_by, order) in &results {
        // Without a graceful drain, requests in flight are cut and their
        // retries on the other replica find the key still in progress (409).
        assert_eq!(*status, 201, "{answered_by:?}: {order}");
        ids.insert(str_of(&order["id"]));
    }
    assert_eq!(ids.len(), orders as usize, "one order per key, none twice");
    assert!(
        count(AnsweredBy::Draining) > 0,
        "the draining replica answered some"
    );
    assert!(
        count(AnsweredBy::OtherAfterRefusal) > 0,
        "the other took the rest"
    );
    // Cutting the drain instead (`stop(false)`) loses about a quarter of
    // these requests here: their retries find the key still in progress
    // (409) or replay an order nobody was told about.
    assert_eq!(count(AnsweredBy::OtherReplayingLost), 0);
    let orders_db = b.orders_pool().await;
    let placed: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&orders_db)
        .await
        .expect("count");
    orders_db.close().await;
    assert_eq!(
        placed, orders as i64,
        "no request placed an order unanswered"
    );
    assert_eq!(
        b.stock_of(&admin, &p).await,
        1000 - orders as i64,
        "each order holds its stock once"
    );
}
