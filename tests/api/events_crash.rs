//! Nothing lost across a kill -9, on both sinks: the real binary serves a
//! shop scenario over HTTP while it relays events to a webhook subscriber
//! and to RabbitMQ, is killed with SIGKILL right after a burst of changes
//! (their events committed, not yet delivered), and is restarted; the
//! scenario goes on. After de-duplication by id, each sink holds exactly
//! the events the outboxes committed, and a duplicate carries the same
//! body. Events that were sent from memory instead of the outbox would be
//! missing here: the burst before the kill is never delivered by the
//! process that committed it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use emporium::config::Domain;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::amqp::{Listener, BROKER};
use crate::helpers::{str_of, test_settings, PASSWORD};
use crate::orders::order_body;
use crate::payments::pay_body;
use crate::webhook_receiver::Receiver;

/// The domains with a public outbox.
const SOURCES: [Domain; 4] = [
    Domain::Auth,
    Domain::Catalog,
    Domain::Orders,
    Domain::Payments,
];
const VISA: &str = "4242424242424242";

/// A running `emporium serve`, killed (SIGKILL) when dropped, so a failing
/// test leaves no server behind.
struct Server(Child);

impl Server {
    fn kill_9(&mut self) {
        self.0.kill().expect("kill -9");
        self.0.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `emporium serve` on `prefix`'s databases and `port`, relaying to the
/// RabbitMQ `exchange` and to webhooks on loopback.
fn serve(prefix: &str, port: u16, exchange: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_emporium"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("EMPORIUM__DATABASE__PREFIX", prefix)
        .env("EMPORIUM__DATABASE__MAX_CONNECTIONS", "5")
        .env("EMPORIUM__HTTP__PORT", port.to_string())
        .env("EMPORIUM__HTTP__WORKERS", "1")
        .env("EMPORIUM__RATE_LIMIT__REGISTER_PER_CLIENT", "1000")
        .env("EMPORIUM__EVENTS__RELAY_INTERVAL_MS", "50")
        .env(
            "EMPORIUM__EVENTS__AMQP_URL",
            format!("amqp://guest:guest@{BROKER}/%2f"),
        )
        .env("EMPORIUM__EVENTS__EXCHANGE", exchange)
        .env("EMPORIUM__WEBHOOKS__POLL_INTERVAL_MS", "50")
        .env("EMPORIUM__WEBHOOKS__ALLOW_LOOPBACK_HTTP", "true")
        // A delivery in flight when the process is killed is claimed again
        // once its lease runs out: short here, longer than an attempt.
        .env("EMPORIUM__WEBHOOKS__LEASE_SECS", "3")
        .env("EMPORIUM__WEBHOOKS__TIMEOUT_MS", "2000")
        .env("EMPORIUM__PAYMENTS__SIMULATOR__LATENCY_MS", "2")
        .env("EMPORIUM__PAYMENTS__POLL_INTERVAL_MS", "50")
        .env("EMPORIUM__PAYMENTS__RELAY_INTERVAL_MS", "50")
        .env("EMPORIUM__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emporium binary starts");
    Server(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The running binary's API, over plain HTTP.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        let r = request.send().await.expect("request sent");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "the server never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn login(&self, email: &str) -> String {
        let pair = self
            .call(
                Method::POST,
                "/api/v1/auth/login/",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        str_of(&pair["access"])
    }

    /// Polls `path` until `done` holds for it.
    async fn until(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.call(Method::GET, path, Some(token), Value::Null).await;
            if done(&now) {
                return;
            }
            assert!(Instant::now() < deadline, "{path} stayed {now}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One round of shop traffic: a product made and repriced, three
/// customers each placing an order; the first pays, the second cancels.
/// Returns the paid order and its payment, with the payer's token.
async fn shop_round(api: &Api, admin: &str) -> (String, String, String) {
    let sku = Uuid::new_v4().simple().to_string();
    let product = api
        .call(
            Method::POST,
            "/api/v1/products/",
            Some(admin),
            json!({"name": format!("Thing {sku}"), "sku": sku, "price": 1500,
                   "currency": "EUR", "stock": 50}),
        )
        .await;
    let pid = str_of(&product["id"]);
    api.call(
        Method::PATCH,
        &format!("/api/v1/products/{pid}/"),
        Some(admin),
        json!({"price": 1600}),
    )
    .await;
    let mut paid = None;
    for i in 0..3 {
        let email = format!("{}@crash.test", Uuid::new_v4().simple());
        api.call(
            Method::POST,
            "/api/v1/auth/register/",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
        let token = api.login(&email).await;
        let order = api
            .call(
                Method::POST,
                "/api/v1/orders/",
                Some(&token),
                order_body(json!([{"product_id": pid, "quantity": 1}])),
            )
            .await;
        let oid = str_of(&order["id"]);
        match i {
            0 => {
                let payment = api
                    .call(
                        Method::POST,
                        "/api/v1/payments/",
                        Some(&token),
                        pay_body(&order, VISA),
                    )
                    .await;
                paid = Some((oid, str_of(&payment["id"]), token));
            }
            1 => {
                api.call(
                    Method::POST,
                    &format!("/api/v1/orders/{oid}/cancel/"),
                    Some(&token),
                    Value::Null,
                )
                .await;
            }
            _ => {}
        }
    }
    paid.expect("the first customer paid")
}

/// Every outbox event: id → (type, taken by webhooks, taken by AMQP).
async fn outboxes(prefix: &str) -> HashMap<Uuid, (String, bool, bool)> {
    let mut settings = test_settings();
    settings.database.prefix = prefix.to_owned();
    let mut all = HashMap::new();
    for domain in SOURCES {
        let options = emporium::store::database::connect_options(&settings.database, domain)
            .expect("options");
        let pool = sqlx::PgPool::connect_with(options).await.expect("pool");
        let rows: Vec<(Uuid, String, bool, bool)> = sqlx::query_as(
            "SELECT id, type, webhooks_relayed_at IS NOT NULL, amqp_relayed_at IS NOT NULL \
             FROM event_outbox",
        )
        .fetch_all(&pool)
        .await
        .expect("outbox read");
        pool.close().await;
        for (id, kind, hooks, amqp) in rows {
            all.insert(id, (kind, hooks, amqp));
        }
    }
    all
}

#[tokio::test]
async fn every_event_reaches_both_sinks_once_after_dedup_across_a_kill_9() {
    let settings = test_settings();
    let prefix = settings.database.prefix.clone();
    let port = free_port();
    let api = Api {
        client: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut listener = Listener::new().await;
    listener.bind_all().await;
    let mut server = serve(&prefix, port, &listener.exchange);
    api.wait_ready().await;

    let email = "admin@emporium.test";
    let mut admin_settings = test_settings();
    admin_settings.database.prefix = prefix.clone();
    emporium::commands::create_admin(&admin_settings, email, PASSWORD, "Admin")
        .await
        .expect("admin");
    let admin = api.login(email).await;
    // Events made before the subscription (the admin's registration) may
    // or may not reach it: an endpoint gets only what it was subscribed
    // for when the fan-out read the event.
    let before_subscribing: HashSet<Uuid> = outboxes(&prefix).await.into_keys().collect();
    let receiver = Receiver::start().await;
    api.call(
        Method::POST,
        "/api/v1/webhooks/",
        Some(&admin),
        json!({"url": receiver.url("/k"), "events": ["*"]}),
    )
    .await;

    // A burst of changes, and the kill right behind it: their events are
    // committed and still in the outboxes or on their way.
    let (first_order, first_payment, first_token) = shop_round(&api, &admin).await;
    server.kill_9();
    let at_kill = outboxes(&prefix).await;
    let undelivered = at_kill.values().filter(|(_, h, a)| !h || !a).count();
    assert!(undelivered > 0, "the kill came mid-stream");

    let mut again = serve(&prefix, port, &listener.exchange);
    api.wait_ready().await;
    let admin = api.login(email).await;
    let (second_order, second_payment, second_token) = shop_round(&api, &admin).await;
    for (order, payment, token) in [
        (&first_order, &first_payment, &first_token),
        (&second_order, &second_payment, &second_token),
    ] {
        api.until(&format!("/api/v1/payments/{payment}/"), token, |p| {
            p["status"] == "succeeded"
        })
        .await;
        api.until(&format!("/api/v1/orders/{order}/"), token, |o| {
            o["status"] == "paid"
        })
        .await;
    }

    let committed = outboxes(&prefix).await;
    let want: HashSet<Uuid> = committed.keys().copied().collect();
    let want_hooks: HashSet<Uuid> = want.difference(&before_subscribing).copied().collect();
    let hooks = receiver
        .wait_for("/k", Duration::from_secs(30), |r| {
            let got: HashSet<Uuid> = r.iter().filter_map(|x| x.webhook_id.parse().ok()).collect();
            want_hooks.is_subset(&got)
        })
        .await;
    listener.receive_all(&want).await;
    // Whatever else was in flight arrives too, to be counted below.
    listener.drain(Duration::from_millis(500)).await;
    again.kill_9();
    listener.delete_exchange().await;
    emporium::store::database::drop_databases(&admin_settings.database)
        .await
        .expect("dropped");

    let hook_ids: HashSet<Uuid> = hooks
        .iter()
        .map(|x| x.webhook_id.parse().expect("a uuid"))
        .collect();
    assert!(
        hook_ids.is_subset(&want) && want_hooks.is_subset(&hook_ids),
        "webhooks: exactly the committed events since subscribing"
    );
    let amqp_ids: HashSet<Uuid> = listener.received.iter().map(|r| r.id()).collect();
    assert_eq!(amqp_ids, want, "RabbitMQ: exactly the committed events");
    let kinds: BTreeSet<&str> = committed.values().map(|(k, _, _)| k.as_str()).collect();
    for kind in [
        "customer.created",
        "product.created",
        "product.updated",
        "variant.stock_changed",
        "order.created",
        "order.cancelled",
        "order.paid",
        "payment.succeeded",
    ] {
        assert!(kinds.contains(kind), "the scenario made {kind}: {kinds:?}");
    }
    let mut bodies: HashMap<&str, &str> = HashMap::new();
    for r in &hooks {
        let first = bodies.entry(&r.webhook_id).or_insert(&r.body);
        assert_eq!(*first, r.body.as_str(), "a duplicate carries the same body");
    }
    let mut envelopes: HashMap<Uuid, &Value> = HashMap::new();
    for r in &listener.received {
        let first = envelopes.entry(r.id()).or_insert(&r.body);
        assert_eq!(**first, r.body, "a duplicate carries the same envelope");
    }
}
