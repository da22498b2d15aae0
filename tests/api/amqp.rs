//! The RabbitMQ relay against the real broker on 127.0.0.1:5672, reached
//! through a TCP proxy the test cuts: every event arrives (routing key =
//! CloudEvents `type`, persistent, `message_id` = event id, a valid
//! envelope), events made while the broker is away wait in the outboxes and
//! arrive once it is back, and an unroutable event is held, not dropped.
//! Each test publishes to an exchange of its own and deletes it after.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use emporium::config::{Domain, Settings};
use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db_proxy::DbProxy;
use crate::helpers::TestApp;

pub(crate) const BROKER: &str = "127.0.0.1:5672";
/// The domains with a public outbox, as the relay names them in `source`.
const SOURCES: [Domain; 4] = [
    Domain::Auth,
    Domain::Catalog,
    Domain::Orders,
    Domain::Payments,
];
/// How long a test waits for events to arrive.
const PATIENCE: Duration = Duration::from_secs(20);

/// One message as the test's queue received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    routing_key: String,
    properties: BasicProperties,
    pub(crate) body: Value,
}

impl Received {
    pub(crate) fn id(&self) -> Uuid {
        self.body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("envelope without an id: {}", self.body))
    }
}

/// A test's own exchange (declared as the relay declares it) with an
/// exclusive queue bound to it, consumed on a direct connection.
pub(crate) struct Listener {
    _connection: Connection,
    channel: Channel,
    pub(crate) exchange: String,
    consumer: Consumer,
    pub(crate) received: Vec<Received>,
}

impl Listener {
    async fn connect() -> Connection {
        Connection::connect(
            &format!("amqp://guest:guest@{BROKER}/%2f"),
            ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (guest/guest)")
    }

    /// A fresh exchange, nothing bound to it yet.
    pub(crate) async fn new() -> Self {
        let connection = Self::connect().await;
        let channel = connection.create_channel().await.expect("channel");
        let exchange = format!("emporium.test.{}", Uuid::new_v4().simple());
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("exchange declared");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue declared");
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consuming");
        Self {
            _connection: connection,
            channel,
            exchange,
            consumer,
            received: Vec::new(),
        }
    }

    /// Binds the queue to every routing key.
    pub(crate) async fn bind_all(&self) {
        let queue = self.consumer.queue();
        self.channel
            .queue_bind(
                queue,
                self.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("queue bound");
    }

    /// Receives until every id of `ids` has arrived (or fails after
    /// [`PATIENCE`]).
    pub(crate) async fn receive_all(&mut self, ids: &HashSet<Uuid>) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen: HashSet<Uuid> = self.received.iter().map(Received::id).collect();
            let missing: Vec<_> = ids.difference(&seen).collect();
            if missing.is_empty() {
                return;
            }
            let next = tokio::time::timeout_at(deadline, self.consumer.next())
                .await
                .unwrap_or_else(|_| panic!("events never arrived: {missing:?}"))
                .expect("consumer open")
                .expect("delivery");
            self.received.push(Received {
                routing_key: next.routing_key.to_string(),
                properties: next.properties,
                body: serde_json::from_slice(&next.data).expect("a JSON body"),
            });
        }
    }

    /// Takes whatever arrives within `wait`.
    pub(crate) async fn drain(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(next)) = tokio::time::timeout_at(deadline, self.consumer.next()).await {
            let next = next.expect("delivery");
            self.received.push(Received {
                routing_key: next.routing_key.to_string(),
                properties: next.properties,
                body: serde_json::from_slice(&next.data).expect("a JSON body"),
            });
        }
    }

    /// How many times each event arrived.
    fn counts(&self) -> HashMap<Uuid, usize> {
        let mut counts = HashMap::new();
        for r in &self.received {
            *counts.entry(r.id()).or_insert(0) += 1;
        }
        counts
    }

    pub(crate) async fn delete_exchange(&self) {
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

/// An instance relaying to `exchange` through `proxy`, polling its outboxes
/// every 50 ms.
async fn relaying_app(proxy: &DbProxy, exchange: &str) -> TestApp {
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let exchange = exchange.to_owned();
    TestApp::spawn_with(move |s: &mut Settings| {
        s.events.amqp_url = url;
        s.events.exchange = exchange;
        s.events.relay_interval_ms = 50;
        s.rate_limit.register_per_client = 1_000;
    })
    .await
}

/// Every outbox event of the instance: id → (domain, taken by the AMQP
/// sink).
async fn outbox(app: &TestApp) -> HashMap<Uuid, (&'static str, bool)> {
    let mut all = HashMap::new();
    for domain in SOURCES {
        let pool = app.database_pool(domain).await;
        let rows: Vec<(Uuid, bool)> =
            sqlx::query_as("SELECT id, amqp_relayed_at IS NOT NULL FROM event_outbox")
                .fetch_all(&pool)
                .await
                .expect("outbox read");
        pool.close().await;
        for (id, relayed) in rows {
            all.insert(id, (domain.name(), relayed));
        }
    }
    all
}

/// Waits until every event in the outboxes is marked taken by the relay.
async fn all_taken(app: &TestApp) -> HashMap<Uuid, (&'static str, bool)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = outbox(app).await;
        if events.values().all(|(_, taken)| *taken) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "outbox never drained: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ids of the outbox events not in `before`.
fn new_ids(now: &HashMap<Uuid, (&'static str, bool)>, before: &HashSet<Uuid>) -> HashSet<Uuid> {
    now.keys()
        .filter(|id| !before.contains(id))
        .copied()
        .collect()
}

/// Makes events through the API: registrations (`customer.created`) and a
/// product (`product.created`, where the catalog appends it).
async fn make_events(app: &TestApp, admin: &str, n: usize) {
    for _ in 0..n {
        app.register(&format!("{}@amqp.test", Uuid::new_v4().simple()))
            .await;
    }
    app.product(admin, json!({})).await;
}

/// The relay's figure `name{sink="amqp"…}` from `/metrics`.
async fn relay_metric(app: &TestApp, series: &str) -> f64 {
    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("exposition");
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn until_metric(app: &TestApp, series: &str, at_least: f64, at_most: f64) -> f64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = relay_metric(app, series).await;
        if (at_least..=at_most).contains(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{series} stayed {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each message is the CloudEvent of an outbox event, named by its type.
fn assert_well_formed(r: &Received, outbox: &HashMap<Uuid, (&'static str, bool)>) {
    let body = &r.body;
    let id = r.id();
    let (domain, _) = outbox
        .get(&id)
        .unwrap_or_else(|| panic!("an event not in any outbox: {body}"));
    assert_eq!(body["specversion"], "1.0", "{body}");
    assert_eq!(body["source"], format!("/emporium/{domain}"), "{body}");
    let event_type = body["type"].as_str().expect("type");
    assert!(
        emporium::domain::events::EventType::parse(event_type).is_some(),
        "{event_type}"
    );
    assert!(body["subject"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(body["datacontenttype"], "application/json");
    assert!(body["data"].is_object(), "{body}");
    chrono::DateTime::parse_from_rfc3339(body["time"].as_str().expect("time")).expect("RFC 3339");

    assert_eq!(r.routing_key, event_type, "routing key = type");
    let p = &r.properties;
    assert_eq!(p.delivery_mode(), &Some(2), "persistent");
    assert_eq!(
        p.content_type().as_ref().map(|s| s.as_str()),
        Some("application/cloudevents+json")
    );
    assert_eq!(
        p.message_id().as_ref().map(|s| s.to_string()),
        Some(id.to_string())
    );
    assert_eq!(p.kind().as_ref().map(|s| s.as_str()), Some(event_type));
    assert!(p.timestamp().is_some_and(|t| t > 0));
}

#[actix_rt::test]
async fn every_event_reaches_the_exchange_across_a_broker_outage() {
    let mut listener = Listener::new().await;
    listener.bind_all().await;
    let proxy = DbProxy::start(BROKER).await;
    let app = relaying_app(&proxy, &listener.exchange).await;
    let (_, admin) = app.admin().await;
    let connected = "emporium_events_relay_connected{sink=\"amqp\"}";
    until_metric(&app, connected, 1.0, 1.0).await;

    // Before the outage: everything arrives and is marked taken.
    make_events(&app, &admin, 2).await;
    let before = all_taken(&app).await;
    let first: HashSet<Uuid> = before.keys().copied().collect();
    assert!(first.len() >= 2, "the actions made events: {before:?}");
    listener.receive_all(&first).await;

    // The broker goes away: new events wait in their outboxes.
    proxy.cut();
    until_metric(&app, connected, 0.0, 0.0).await;
    make_events(&app, &admin, 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = outbox(&app).await;
    let second = new_ids(&during, &first);
    assert!(second.len() >= 2, "events were made during the outage");
    for id in &second {
        assert!(
            !during[id].1,
            "an event was taken while the broker was away"
        );
    }
    listener.drain(Duration::from_millis(200)).await;
    let seen = listener.counts();
    assert!(
        second.iter().all(|id| !seen.contains_key(id)),
        "nothing was published"
    );

    // Back: the held events arrive, then the newer ones.
    proxy.restore();
    make_events(&app, &admin, 2).await;
    let after = all_taken(&app).await;
    let everything: HashSet<Uuid> = after.keys().copied().collect();
    let third = new_ids(&after, &first.union(&second).copied().collect());
    assert!(third.len() >= 2);
    listener.receive_all(&everything).await;
    listener.drain(Duration::from_millis(300)).await;
    until_metric(&app, connected, 1.0, 1.0).await;

    // Each event arrived; a repeat (possible only for what was in flight
    // at the cut) carries the same id and the same envelope.
    let counts = listener.counts();
    for id in first.iter().chain(&third) {
        assert_eq!(counts[id], 1, "{id} arrived once");
    }
    let mut bodies: HashMap<Uuid, &Value> = HashMap::new();
    for r in &listener.received {
        assert_well_formed(r, &after);
        if let Some(earlier) = bodies.insert(r.id(), &r.body) {
            assert_eq!(earlier, &r.body, "a repeat is the same event");
        }
    }
    let relayed = relay_metric(&app, "emporium_events_relayed_total{sink=\"amqp\"}").await;
    assert!(relayed >= everything.len() as f64, "relayed {relayed}");
    let lost = relay_metric(
        &app,
        "emporium_events_relay_failures_total{sink=\"amqp\",reason=\"connection_lost\"}",
    )
    .await;
    assert!(lost >= 1.0, "the outage was counted");
    listener.delete_exchange().await;
}

#[actix_rt::test]
async fn an_unroutable_event_is_held_until_a_queue_is_bound() {
    let mut listener = Listener::new().await;
    let proxy = DbProxy::start(BROKER).await;
    let app = relaying_app(&proxy, &listener.exchange).await;
    app.register(&format!("{}@amqp.test", Uuid::new_v4().simple()))
        .await;
    let returned = "emporium_events_relay_failures_total{sink=\"amqp\",reason=\"returned\"}";
    until_metric(&app, returned, 1.0, f64::MAX).await;
    let held = outbox(&app).await;
    assert!(!held.is_empty());
    assert!(
        held.values().all(|(_, taken)| !taken),
        "an event nobody could receive was marked taken"
    );

    listener.bind_all().await;
    let ids: HashSet<Uuid> = all_taken(&app).await.keys().copied().collect();
    listener.receive_all(&ids).await;
    listener.delete_exchange().await;
}

#[actix_rt::test]
async fn without_an_amqp_url_there_is_no_relay() {
    let app = TestApp::spawn().await;
    app.register(&format!("{}@amqp.test", Uuid::new_v4().simple()))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("exposition");
    assert!(!text.contains("sink=\"amqp\""), "{text}");
    assert!(outbox(&app).await.values().all(|(_, taken)| !taken));
}
