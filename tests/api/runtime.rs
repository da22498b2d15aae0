use std::time::Duration;

use serde_json::{json, Value};

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
    let body: Value = r.json().await.expect("json");
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
    let ready: Value = app.get("/readyz", None).await.json().await.expect("json");
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
        .json()
        .await
        .expect("json");
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
            "carts"
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
