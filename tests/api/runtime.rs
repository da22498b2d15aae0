use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{actor_metrics as actor, assert_problem, TestApp};

#[tokio::test]
async fn a_full_mailbox_answers_503_at_once_instead_of_waiting() {
    let app = TestApp::spawn_with(|s| s.actors.mailbox_capacity = 3).await;
    let (_, admin) = app.admin().await;
    let probe = "/api/v1/admin/actors/catalog/probe/";
    // Three slow messages fill the catalog actor's mailbox. They are sent
    // straight to the actor: over HTTP each would also take a slot of the
    // (equally small) auth mailbox for its principal check.
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let catalog = app.actors.catalog.clone();
            tokio::spawn(async move {
                catalog
                    .call(emporium::actors::runtime::Probe {
                        sleep_ms: 3000,
                        panic: false,
                    })
                    .await
            })
        })
        .collect();
    let mut queued = 0;
    // Generous: on a loaded machine the three requests take a while to
    // get through authentication to the catalog's mailbox.
    for _ in 0..300 {
        queued = actor(&app, &admin, "catalog").await["queued"]
            .as_u64()
            .expect("queued");
        if queued == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(queued, 3, "the three slow messages fill the mailbox");
    let r = app.post(probe, Some(&admin), &json!({"sleep_ms": 0})).await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_problem(r, 503, "service_overloaded").await;
    // The 503 came while the slow messages were still being handled.
    assert!(slow.iter().all(|h| !h.is_finished()));
    // Other actors are unaffected.
    assert_eq!(
        app.get("/api/v1/auth/me/", Some(&admin)).await.status(),
        200
    );
    for handle in slow {
        let reply = handle
            .await
            .expect("joined")
            .expect("the slow message completes");
        assert_eq!(reply.slept_ms, 3000);
    }
    let catalog = actor(&app, &admin, "catalog").await;
    assert_eq!(catalog["rejected_full"], 1);
    assert_eq!(catalog["queued"], 0);
    assert_eq!(catalog["capacity"], 3);
}

#[tokio::test]
async fn a_panicking_handler_restarts_its_actor_and_later_requests_succeed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let probe = "/api/v1/admin/actors/payments/probe/";
    let before = actor(&app, &admin, "payments").await;
    assert_eq!(before["restarts"], 0);
    let r = app.post(probe, Some(&admin), &json!({"panic": true})).await;
    let problem = assert_problem(r, 500, "internal_error").await;
    assert!(
        !problem.to_string().contains("panic"),
        "no internals leak: {problem}"
    );
    let r = app.post(probe, Some(&admin), &json!({"sleep_ms": 1})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.body_json().await;
    assert_eq!(body["actor"], "payments");
    let after = actor(&app, &admin, "payments").await;
    assert_eq!(after["restarts"], 1);
    assert_eq!(after["panics"], 1);
    // Two probes, and the report's own question to the payments actor
    // (its pool figures) made while reading `after`.
    assert_eq!(
        after["handled"].as_u64(),
        Some(before["handled"].as_u64().expect("n") + 3)
    );
    assert_eq!(
        after["errors"].as_u64(),
        Some(before["errors"].as_u64().expect("n") + 1)
    );
    // The restarted actor still owns a working pool.
    let ready: Value = app.get("/readyz", None).await.body_json().await;
    assert_eq!(ready["checks"]["payments"]["ok"], true);
}

#[tokio::test]
async fn actor_metrics_count_handled_messages_and_latency() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let before = actor(&app, &admin, "auth").await;
    app.register("ann@example.com").await;
    app.get("/api/v1/auth/me/", Some(&admin)).await;
    let after = actor(&app, &admin, "auth").await;
    // register + me (the principal checks are answered by the auth view
    // once it holds the admin).
    let handled = after["handled"].as_u64().expect("n") - before["handled"].as_u64().expect("n");
    assert!(handled >= 2, "handled {handled}");
    assert!(after["latency_us"]["p99"].as_u64().expect("p99") > 0);
    assert!(after["latency_us"]["max"].as_u64() >= after["latency_us"]["p50"].as_u64());
    let report: Value = app
        .get("/api/v1/admin/actors/", Some(&admin))
        .await
        .body_json()
        .await;
    let names: Vec<&str> = report["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "auth",
            "catalog",
            "orders",
            "payments",
            "recommender",
            "carts",
            "webhooks",
            "notifications"
        ]
    );
}

#[tokio::test]
async fn probes_do_not_exist_unless_diagnostics_are_enabled() {
    let app = TestApp::spawn_with(|s| s.diagnostics.enabled = false).await;
    let (_, admin) = app.admin().await;
    let r = app
        .post(
            "/api/v1/admin/actors/catalog/probe/",
            Some(&admin),
            &json!({"panic": true}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let enabled = TestApp::spawn().await;
    let (_, admin) = enabled.admin().await;
    let r = enabled
        .post(
            "/api/v1/admin/actors/nobody/probe/",
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = enabled
        .post(
            "/api/v1/admin/actors/catalog/probe/",
            Some(&admin),
            &json!({"sleep_ms": "x"}),
        )
        .await;
    assert_problem(r, 422, "validation_error").await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let mut app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let request = app
        .request(
            reqwest::Method::POST,
            "/api/v1/admin/actors/orders/probe/",
            Some(&admin),
        )
        .json(&json!({"sleep_ms": 700}));
    let in_flight = tokio::spawn(request.send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.stop_gracefully().await;
    let r = in_flight
        .await
        .expect("joined")
        .expect("in-flight request answered");
    assert_eq!(r.status(), 200);
    // New connections are refused once stopped.
    assert!(app.client.get(app.url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn a_draining_instance_closes_keep_alive_connections_and_leaves_readiness() {
    let app = TestApp::spawn_with(|s| {
        s.http.drain_delay_ms = 1500;
        s.http.shutdown_timeout_secs = 30;
    })
    .await;
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    assert_ne!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "before the drain, connections are kept alive"
    );
    let started = std::time::Instant::now();
    let stopping = app.begin_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Still serving during the drain delay, but every answer closes its
    // connection, and readiness takes the instance out of rotation.
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "draining");
    stopping.await.expect("stopped");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "the listener stayed open for the drain delay ({took:?})"
    );
    assert!(
        took < Duration::from_secs(10),
        "closed connections let the stop finish long before the shutdown timeout ({took:?})"
    );
    assert!(app.client.get(app.url("/healthz")).send().await.is_err());
}

/// Busy keep-alive clients behind a balancer of two replicas, one of which
/// stops: a client whose answer says `Connection: close`, or whose
/// connection is refused, goes to the other replica (the balancer has taken
/// the draining one out). No request is cut, and the stop does not wait for
/// the shutdown timeout on connections that never go idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_keep_alive_clients_lose_no_request_when_a_replica_stops() {
    let mut a = TestApp::spawn_with(|s| {
        s.http.drain_delay_ms = 1000;
        s.http.shutdown_timeout_secs = 30;
    })
    .await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let replicas = [a.url("/api/v1/products/"), b.url("/api/v1/products/")];
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let replicas = replicas.clone();
            tokio::spawn(async move {
                // One connection per replica, reused request after request,
                // so a's connection is never idle when the stop comes.
                let client = reqwest::Client::new();
                let until = std::time::Instant::now() + Duration::from_secs(6);
                let (mut on, mut served_by_a) = (0, 0u32);
                while std::time::Instant::now() < until {
                    match client.get(&replicas[on]).send().await {
                        Ok(r) => {
                            assert_eq!(r.status(), 200);
                            let closing = r.headers().get("connection")
                                == Some(&reqwest::header::HeaderValue::from_static("close"));
                            r.bytes().await.expect("a whole body");
                            if on == 0 {
                                served_by_a += 1;
                            }
                            if closing {
                                on = 1;
                            }
                        }
                        // Refused on a new connection: never sent.
                        Err(e) if e.is_connect() && on == 0 => on = 1,
                        Err(e) => return Err(format!("a request was cut: {e:?}")),
                    }
                    tokio::task::yield_now().await;
                }
                Ok(served_by_a)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    a.stop_gracefully().await;
    let took = started.elapsed();
    for client in clients {
        let served_by_a = client.await.expect("joined").expect("no request was cut");
        assert!(
            served_by_a > 0,
            "each client was served by a before the stop"
        );
    }
    assert!(
        took < Duration::from_secs(5),
        "the stop did not wait for the shutdown timeout ({took:?})"
    );
}
