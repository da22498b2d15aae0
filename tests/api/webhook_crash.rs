//! Nothing lost across a kill -9: the real binary is killed while events
//! stream out to a subscriber, events keep being committed while it is
//! dead, and after a restart every event arrives (duplicates only with the
//! same id and body).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use emporium::config::Domain;
use emporium::domain::events::{Event, EventType};
use serde_json::{json, Value};

use crate::helpers::{str_of, test_settings, PASSWORD};
use crate::webhook_receiver::Receiver;

/// The `emporium serve` binary on `prefix`'s databases and `port`.
fn serve(prefix: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_emporium"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("EMPORIUM__DATABASE__PREFIX", prefix)
        .env("EMPORIUM__DATABASE__MAX_CONNECTIONS", "5")
        .env("EMPORIUM__HTTP__PORT", port.to_string())
        .env("EMPORIUM__HTTP__WORKERS", "1")
        .env("EMPORIUM__EVENTS__RELAY_INTERVAL_MS", "50")
        .env("EMPORIUM__WEBHOOKS__POLL_INTERVAL_MS", "50")
        .env("EMPORIUM__WEBHOOKS__ALLOW_LOOPBACK_HTTP", "true")
        // A delivery in flight when the process is killed is claimed again
        // once its lease runs out: short here, longer than an attempt.
        .env("EMPORIUM__WEBHOOKS__LEASE_SECS", "3")
        .env("EMPORIUM__WEBHOOKS__TIMEOUT_MS", "2000")
        .env("EMPORIUM__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emporium binary starts")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn every_event_arrives_once_after_dedup_across_a_kill_9() {
    let mut settings = test_settings();
    let prefix = settings.database.prefix.clone();
    let port = free_port();
    settings.http.port = port;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = serve(&prefix, port);
    wait_healthy(&client, &base).await;

    let email = "admin@emporium.test";
    emporium::commands::create_admin(&settings, email, PASSWORD, "Admin")
        .await
        .expect("admin");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login/"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let admin = str_of(&login["access"]);
    let receiver = Receiver::start().await;
    let r = client
        .post(format!("{base}/api/v1/webhooks/"))
        .bearer_auth(&admin)
        .json(&json!({"url": receiver.url("/k"), "events": ["*"]}))
        .send()
        .await
        .expect("subscribed");
    assert_eq!(r.status(), 201);

    let pool = {
        let options =
            emporium::store::database::connect_options(&settings.database, Domain::Orders)
                .expect("options");
        sqlx::PgPool::connect_with(options).await.expect("pool")
    };
    let mut sent: Vec<Event> = Vec::new();
    let emit = |n: usize| {
        let pool = pool.clone();
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                let event = Event::new(EventType::OrderPaid, uuid::Uuid::new_v4(), &json!({}));
                let mut tx = pool.begin().await.expect("tx");
                emporium::store::events::append(&mut tx, &event)
                    .await
                    .expect("append");
                tx.commit().await.expect("commit");
                out.push(event);
            }
            out
        }
    };
    // Mid-stream: events are being fanned out and delivered when it dies.
    sent.extend(emit(30).await);
    tokio::time::sleep(Duration::from_millis(120)).await;
    server.kill().expect("kill -9");
    server.wait().expect("reaped");
    let before_restart = receiver.requests().len();
    // Committed while nothing runs: they wait in the outbox.
    sent.extend(emit(20).await);

    let mut again = serve(&prefix, port);
    wait_healthy(&client, &base).await;
    sent.extend(emit(10).await);
    let want: HashSet<String> = sent.iter().map(|e| e.id.to_string()).collect();
    let got = receiver
        .wait_for("/k", Duration::from_secs(30), |r| {
            want.is_subset(&r.iter().map(|x| x.webhook_id.clone()).collect())
        })
        .await;
    again.kill().expect("kill");
    again.wait().expect("reaped");
    pool.close().await;
    emporium::store::database::drop_databases(&settings.database)
        .await
        .expect("dropped");

    let got_ids: HashSet<String> = got.iter().map(|x| x.webhook_id.clone()).collect();
    assert_eq!(
        got_ids, want,
        "exactly the committed events, after de-duplication"
    );
    assert!(before_restart < want.len(), "the kill came mid-stream");
    let mut bodies: HashMap<&str, &str> = HashMap::new();
    for r in &got {
        let first = bodies.entry(&r.webhook_id).or_insert(&r.body);
        assert_eq!(*first, r.body.as_str(), "a duplicate carries the same body");
    }
}
