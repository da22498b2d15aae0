//! `TestApp`: one isolated instance per test (random port, fresh database
//! prefix, its own Redis key namespace), with request helpers. Set
//! `TEST_LOG=1` to see the instance's logs.

use std::path::Path;
use std::thread::JoinHandle;

use actix::Addr;
use actix_web::dev::ServerHandle;
use emporium::actors::edge::{EdgeActor, StopServer};
use emporium::actors::Actors;
use emporium::config::Settings;
use emporium::startup::Application;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

/// The JSON body of a response, or the test fails saying there was none.
pub trait JsonBody {
    /// `response.body_json().await` instead of `.json().await.expect(..)`.
    fn body_json(self) -> impl std::future::Future<Output = Value> + Send;
}

impl JsonBody for Response {
    async fn body_json(self) -> Value {
        let status = self.status();
        self.json()
            .await
            .unwrap_or_else(|e| panic!("a JSON body (status {status}): {e}"))
    }
}

/// Password used for every test account.
pub const PASSWORD: &str = "correct horse battery";

/// A running instance and a client for it.
pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of the separate metrics port, when set.
    pub metrics_address: Option<String>,
    pub actors: Actors,
    pub settings: Settings,
    pub client: reqwest::Client,
    server: Option<ServerHandle>,
    edge: Addr<EdgeActor>,
    thread: Option<JoinHandle<()>>,
    /// Whether dropping this instance drops its databases (a second
    /// instance on the same databases leaves them to the first).
    owns_databases: bool,
}

/// Settings for a fresh instance: port 0, a unique prefix, diagnostics on.
pub fn test_settings() -> Settings {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let mut settings = Settings::load(&path).expect("config.toml loads");
    let unique = uuid::Uuid::new_v4().simple().to_string();
    settings.database.prefix = format!("emt_{}", &unique[..16]);
    settings.media.root = std::env::temp_dir()
        .join(format!("emporium-media-{}", &unique[..16]))
        .to_string_lossy()
        .into_owned();
    settings.database.max_connections = 5;
    settings.http.port = 0;
    settings.http.workers = 2;
    settings.diagnostics.enabled = true;
    // Tests' webhook receivers listen on loopback over plain HTTP.
    settings.webhooks.allow_loopback_http = true;
    // The event relays (webhooks, mail, RabbitMQ) poll every outbox; tests
    // of them ask for a short interval. Elsewhere they would only add load
    // to a busy suite, and messages to the actors' counters.
    settings.events.relay_interval_ms = 600_000;
    settings
}

/// For tests of the rate limits: a Redis call that a loaded machine slows
/// past the usual 250 ms would let the request through (the limiter fails
/// open, by design), and the test would see no limit. The limits, not the
/// outage rule, are under test.
pub fn patient_redis(settings: &mut Settings) {
    settings.redis.timeout_ms = 3_000;
}

impl TestApp {
    /// An instance with default test settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// An instance with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings();
        adjust(&mut settings);
        // Copies of migrated templates: a fraction of migrating five
        // databases for every test.
        emporium::store::database::create_from_templates(&settings.database)
            .await
            .expect("test databases");
        Self::start(settings, true).await
    }

    /// An instance on databases the test made itself (e.g. at an older
    /// schema): start-up migrates them the rest of the way. It drops them
    /// when dropped.
    pub async fn spawn_on_prepared(settings: Settings) -> Self {
        Self::start(settings, true).await
    }

    /// Another instance on the same databases and Redis namespace as
    /// `settings` (a second replica, or the same one after a crash). It
    /// leaves the databases to their owner when dropped.
    pub async fn spawn_beside(settings: &Settings) -> Self {
        Self::start(settings.clone(), false).await
    }

    /// Stops the instance at once, as a killed process would stop serving,
    /// keeping its databases; returns its settings to start it again.
    pub fn crash(mut self) -> Settings {
        self.owns_databases = false;
        self.settings.clone()
    }

    async fn start(settings: Settings, owns_databases: bool) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            emporium::telemetry::init(&settings.log);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let app_settings = settings.clone();
        // Each instance runs in its own actix system on its own thread, as
        // the binary does, so tests never share a runtime with it.
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                match Application::build(app_settings, false).await {
                    Ok(app) => {
                        let ports = (app.port(), app.metrics_port());
                        let _ = tx.send(Ok((ports, app.server_handle(), app.edge(), app.actors())));
                        if let Err(e) = app.run_until_stopped().await {
                            eprintln!("test instance failed: {e:?}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let ((port, metrics_port), server, edge, actors) = rx
            .await
            .expect("instance thread answered")
            .expect("instance started");
        // Until its read views have settled, an instance serves reads from
        // the actor and its writes wait a whole lease; tests start after.
        // (With Redis unreachable it never settles; go on after a while.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while !(actors.catalog_view.is_settled() && actors.auth_view.is_settled())
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self {
            address: format!("http://127.0.0.1:{port}"),
            metrics_address: metrics_port.map(|p| format!("http://127.0.0.1:{p}")),
            actors,
            settings,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            server: Some(server),
            edge,
            thread: Some(thread),
            owns_databases,
        }
    }

    /// URL of `path` on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request with an optional bearer token.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(Method::PATCH, path, token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers a customer and returns its JSON.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register/",
                None,
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {email}"
        );
        response.body_json().await
    }

    /// Logs in and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/login/",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "logging in {email}");
        response.body_json().await
    }

    /// Registers and logs in a customer; returns (user id, access, refresh).
    pub async fn customer(&self, email: &str) -> (String, String, String) {
        let user = self.register(email).await;
        let pair = self.login(email, PASSWORD).await;
        (
            str_of(&user["id"]),
            str_of(&pair["access"]),
            str_of(&pair["refresh"]),
        )
    }

    /// Creates an admin the way `emporium create-admin` does and logs in.
    pub async fn admin(&self) -> (String, String) {
        let email = "admin@emporium.test";
        let id = emporium::commands::create_admin(&self.settings, email, PASSWORD, "Admin")
            .await
            .expect("admin created");
        let pair = self.login(email, PASSWORD).await;
        (id.to_string(), str_of(&pair["access"]))
    }

    /// A connection pool to one of this instance's databases, for bulk
    /// fixtures, injected faults and checks of stored state.
    pub async fn database_pool(&self, domain: emporium::config::Domain) -> sqlx::PgPool {
        let options = emporium::store::database::connect_options(&self.settings.database, domain)
            .expect("options");
        sqlx::PgPool::connect_with(options)
            .await
            .expect("database pool")
    }

    /// The catalog database's pool.
    pub async fn catalog_pool(&self) -> sqlx::PgPool {
        self.database_pool(emporium::config::Domain::Catalog).await
    }

    /// The payments database's pool.
    pub async fn payments_pool(&self) -> sqlx::PgPool {
        self.database_pool(emporium::config::Domain::Payments).await
    }

    /// The orders database's pool.
    pub async fn orders_pool(&self) -> sqlx::PgPool {
        self.database_pool(emporium::config::Domain::Orders).await
    }

    /// A product's stock as an admin sees it.
    pub async fn stock_of(&self, admin: &str, product: &Value) -> i64 {
        let p: Value = self
            .get(
                &format!("/api/v1/products/{}/", str_of(&product["id"])),
                Some(admin),
            )
            .await
            .body_json()
            .await;
        p["stock"].as_i64().expect("stock")
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(Method::PUT, path, token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::DELETE, path, token)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a category as `admin` and returns its JSON.
    pub async fn category(&self, admin: &str, body: Value) -> Value {
        let r = self.post("/api/v1/categories/", Some(admin), &body).await;
        assert_eq!(r.status(), 201, "creating category {body}");
        r.body_json().await
    }

    /// Creates a product as `admin` from defaults overridden by `fields`.
    pub async fn product(&self, admin: &str, fields: Value) -> Value {
        let sku = uuid::Uuid::new_v4().simple().to_string();
        let mut body = json!({"name": format!("Thing {sku}"), "sku": sku,
            "price": 1000, "currency": "EUR", "stock": 10});
        for (k, v) in fields.as_object().expect("object") {
            body[k] = v.clone();
        }
        let r = self.post("/api/v1/products/", Some(admin), &body).await;
        assert_eq!(r.status(), 201, "creating product {body}");
        r.body_json().await
    }

    /// Stops the server as SIGTERM does: drains (`http.drain_delay_ms`),
    /// closes the listener and lets in-flight requests finish.
    pub async fn stop_gracefully(&mut self) {
        self.begin_stop().await.expect("the edge actor stopped");
        self.server.take();
    }

    /// Starts a graceful stop, as SIGTERM does, without waiting for it: the
    /// task ends when the server has stopped.
    pub fn begin_stop(&self) -> tokio::task::JoinHandle<()> {
        let edge = self.edge.clone();
        tokio::spawn(async move {
            edge.send(StopServer { graceful: true })
                .await
                .expect("the edge actor stops the server");
        })
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let server = self.server.take();
        let thread = self.thread.take();
        let settings = self.settings.database.clone();
        let media_root = self.settings.media.root.clone();
        let owns_databases = self.owns_databases;
        // Drop runs inside the test's runtime, which must not block on
        // async work; a helper thread stops the instance and drops its
        // databases.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Some(server) = server {
                    server.stop(false).await;
                }
            });
            if let Some(thread) = thread {
                let _ = thread.join();
            }
            if owns_databases {
                if let Err(e) = rt.block_on(emporium::store::database::drop_databases(&settings)) {
                    eprintln!("could not drop test databases: {e:?}");
                }
                let _ = std::fs::remove_dir_all(&media_root);
            }
        });
        let _ = cleanup.join();
    }
}

/// A JSON string value as an owned String.
pub fn str_of(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// Asserts a problem+json response with `status` and `code`; returns the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body is json");
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status);
    body
}

/// The fields named by a validation problem.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| str_of(&e["field"])).collect())
        .unwrap_or_default()
}

/// One actor's entry in `GET /api/v1/admin/actors/`.
/// `GET /admin/actors/` as `admin`: the actors, cache and payment pool report.
pub async fn admin_report(app: &TestApp, admin: &str) -> Value {
    app.get("/api/v1/admin/actors/", Some(admin))
        .await
        .body_json()
        .await
}

pub async fn actor_metrics(app: &TestApp, admin: &str, name: &str) -> Value {
    let report = admin_report(app, admin).await;
    report["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no actor {name} in {report}"))
}

/// Checks that every order's reservation is in the state its status
/// implies: pending → held, paid and later → committed (its units held
/// until parcels ship them), cancelled, refunded or
/// expired → released (once the release is confirmed). Returns how many
/// orders were checked.
pub async fn assert_reservations_match_orders(app: &TestApp) -> usize {
    let orders = app.orders_pool().await;
    let catalog = app.catalog_pool().await;
    let rows: Vec<(uuid::Uuid, String, bool)> =
        sqlx::query_as("SELECT id, status, stock_released_at IS NOT NULL FROM orders ORDER BY id")
            .fetch_all(&orders)
            .await
            .expect("orders");
    for (id, status, released) in &rows {
        let reservation: Option<String> =
            sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1")
                .bind(id)
                .fetch_optional(&catalog)
                .await
                .expect("reservation");
        let expected = match status.as_str() {
            "pending" => "held",
            "cancelled" | "expired" | "refunded" => {
                assert!(
                    released,
                    "order {id} is {status} but its release is not confirmed"
                );
                "released"
            }
            _ => "committed",
        };
        assert_eq!(
            reservation.as_deref(),
            Some(expected),
            "order {id} is {status}"
        );
    }
    orders.close().await;
    catalog.close().await;
    rows.len()
}

/// Checks the stock ledger against the levels it explains, and returns how
/// many levels were checked: every (variant, location) has on_hand = Σ
/// on_hand_delta and held = Σ held_delta of its movements, held equals the
/// units its open (held or paid) reservations were allocated there and have
/// not shipped, and every variant's
/// `stock` is Σ (on_hand − held) over active locations.
pub async fn assert_stock_ledger_adds_up(app: &TestApp) -> usize {
    let catalog = app.catalog_pool().await;
    let levels: Vec<(uuid::Uuid, uuid::Uuid, i32, i32, i64, i64, i64)> = sqlx::query_as(
        "SELECT s.variant_id, s.location_id, s.on_hand, s.held, \
           coalesce((SELECT sum(m.on_hand_delta) FROM stock_movements m \
                     WHERE m.variant_id = s.variant_id AND m.location_id = s.location_id), 0)::bigint, \
           coalesce((SELECT sum(m.held_delta) FROM stock_movements m \
                     WHERE m.variant_id = s.variant_id AND m.location_id = s.location_id), 0)::bigint, \
           coalesce((SELECT sum(a.quantity - a.shipped) FROM reservation_allocations a \
                     JOIN reservations r ON r.id = a.reservation_id AND r.status IN ('held', 'committed') \
                     WHERE a.variant_id = s.variant_id AND a.location_id = s.location_id), 0)::bigint \
         FROM stock_levels s ORDER BY 1, 2",
    )
    .fetch_all(&catalog)
    .await
    .expect("levels");
    for (variant, location, on_hand, held, moved, moved_held, allocated) in &levels {
        assert_eq!(
            (i64::from(*on_hand), i64::from(*held)),
            (*moved, *moved_held),
            "variant {variant} at {location}: the level is what its movements add up to"
        );
        assert_eq!(
            i64::from(*held),
            *allocated,
            "variant {variant} at {location}: held is what held reservations took there"
        );
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT DISTINCT m.variant_id, m.location_id FROM stock_movements m \
           JOIN product_variants v ON v.id = m.variant_id \
           WHERE NOT EXISTS (SELECT 1 FROM stock_levels s \
                             WHERE s.variant_id = m.variant_id AND s.location_id = m.location_id)) x",
    )
    .fetch_one(&catalog)
    .await
    .expect("orphans");
    assert_eq!(orphans, 0, "every movement of a live variant has its level");
    let wrong: Vec<(uuid::Uuid, i32, i64)> = sqlx::query_as(
        "SELECT v.id, v.stock, coalesce((SELECT sum(s.on_hand - s.held) FROM stock_levels s \
           JOIN stock_locations l ON l.id = s.location_id \
           WHERE s.variant_id = v.id AND l.is_active), 0)::bigint AS free \
         FROM product_variants v",
    )
    .fetch_all(&catalog)
    .await
    .expect("variants")
    .into_iter()
    .filter(|(_, stock, free)| i64::from(*stock) != *free)
    .collect();
    assert!(
        wrong.is_empty(),
        "each variant's stock is what its active locations have free: {wrong:?}"
    );
    catalog.close().await;
    levels.len()
}

/// The post-purchase conservation check, for every order: per line,
/// ordered ≥ fulfilled (in parcels not cancelled, as counted on the line)
/// ≥ shipped; the order's status is the one its shipped units imply; and
/// every parcel whose sale the catalog confirmed sold exactly its units,
/// at its location, in the stock ledger (the ledger itself is checked by
/// [`assert_stock_ledger_adds_up`]). Returns how many lines were checked.
pub async fn assert_orders_conserved(app: &TestApp) -> usize {
    let orders = app.orders_pool().await;
    let catalog = app.catalog_pool().await;
    let lines: Vec<(uuid::Uuid, uuid::Uuid, i32, i32, i64, i64)> = sqlx::query_as(
        "SELECT i.order_id, i.id, i.quantity, i.fulfilled_quantity, \
           coalesce((SELECT sum(l.quantity) FROM fulfilment_lines l JOIN fulfilments f ON f.id = l.fulfilment_id \
                     WHERE l.line_id = i.id AND f.status <> 'cancelled'), 0)::bigint, \
           coalesce((SELECT sum(l.quantity) FROM fulfilment_lines l JOIN fulfilments f ON f.id = l.fulfilment_id \
                     WHERE l.line_id = i.id AND f.status IN ('shipped', 'delivered')), 0)::bigint \
         FROM order_items i ORDER BY 1, 2",
    )
    .fetch_all(&orders)
    .await
    .expect("lines");
    for (order, line, ordered, counted, in_parcels, shipped) in &lines {
        assert_eq!(
            i64::from(*counted),
            *in_parcels,
            "order {order} line {line}: the line counts the units its parcels hold"
        );
        assert!(
            i64::from(*ordered) >= *in_parcels && *in_parcels >= *shipped && *shipped >= 0,
            "order {order} line {line}: ordered {ordered} ≥ fulfilled {in_parcels} ≥ shipped {shipped}"
        );
    }
    let statuses: Vec<(uuid::Uuid, String, i64, i64, bool)> = sqlx::query_as(
        "SELECT o.id, o.status, \
           (SELECT coalesce(sum(quantity), 0) FROM order_items WHERE order_id = o.id)::bigint, \
           (SELECT coalesce(sum(l.quantity), 0) FROM fulfilments f JOIN fulfilment_lines l ON l.fulfilment_id = f.id \
            WHERE f.order_id = o.id AND f.status IN ('shipped', 'delivered'))::bigint, \
           NOT EXISTS (SELECT 1 FROM fulfilments WHERE order_id = o.id AND status = 'shipped') \
         FROM orders o",
    )
    .fetch_all(&orders)
    .await
    .expect("orders");
    for (order, status, ordered, shipped, all_delivered) in &statuses {
        let expected = if *shipped == 0 {
            None
        } else if shipped < ordered {
            Some("partially_fulfilled")
        } else if *all_delivered {
            Some("delivered")
        } else {
            Some("fulfilled")
        };
        match expected {
            Some(want) => assert_eq!(
                status, want,
                "order {order}: {shipped} of {ordered} shipped"
            ),
            None => assert!(
                !["partially_fulfilled", "fulfilled", "delivered"].contains(&status.as_str()),
                "order {order} is {status} with nothing shipped"
            ),
        }
    }
    let sold: Vec<(uuid::Uuid, uuid::Uuid, Option<uuid::Uuid>, uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT f.id, f.order_id, f.location_id, i.variant_id, l.quantity::bigint FROM fulfilments f \
         JOIN fulfilment_lines l ON l.fulfilment_id = f.id JOIN order_items i ON i.id = l.line_id \
         WHERE f.stock_shipped_at IS NOT NULL AND f.created_by NOT IN ('migration', 'admin:demo')",
    )
    .fetch_all(&orders)
    .await
    .expect("parcels");
    for (parcel, order, location, variant, units) in &sold {
        let moved: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
            "SELECT location_id, -sum(on_hand_delta)::bigint FROM stock_movements \
             WHERE shipment_id = $1 AND variant_id = $2 AND kind = 'sale' AND reservation_id = $3 \
             GROUP BY location_id",
        )
        .bind(parcel)
        .bind(variant)
        .bind(order)
        .fetch_all(&catalog)
        .await
        .expect("sales");
        let location = location.expect("a parcel sold by the catalog has a location");
        assert_eq!(
            moved,
            vec![(location, *units)],
            "parcel {parcel}: its units of {variant} were sold once, where it left from"
        );
    }
    // Returns: per line, returned ≤ shipped, restocked ≤ received; and
    // the ledger's `return` movements of each order are what its received
    // returns restocked (once the catalog confirmed them).
    let returned: Vec<(uuid::Uuid, i32, i64, i64, i64)> = sqlx::query_as(
        "SELECT i.id, i.returned_quantity, \
           coalesce((SELECT sum(l.quantity) FROM fulfilment_lines l JOIN fulfilments f ON f.id = l.fulfilment_id \
                     WHERE l.line_id = i.id AND f.status IN ('shipped', 'delivered')), 0)::bigint, \
           coalesce((SELECT sum(r.received) FROM return_lines r WHERE r.line_id = i.id), 0)::bigint, \
           coalesce((SELECT sum(r.restocked) FROM return_lines r WHERE r.line_id = i.id), 0)::bigint \
         FROM order_items i",
    )
    .fetch_all(&orders)
    .await
    .expect("returned lines");
    for (line, returned, shipped, received, restocked) in &returned {
        assert!(
            i64::from(*returned) <= *shipped && *restocked <= *received && *received <= *shipped,
            "line {line}: returned {returned} ≤ shipped {shipped}, restocked {restocked} ≤ received {received}"
        );
    }
    let restocked: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT r.order_id, sum(l.restocked)::bigint FROM returns r JOIN return_lines l ON l.return_id = r.id \
         WHERE r.stock_returned_at IS NOT NULL GROUP BY r.order_id",
    )
    .fetch_all(&orders)
    .await
    .expect("restocked");
    for (order, units) in &restocked {
        let moved: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(on_hand_delta), 0)::bigint FROM stock_movements \
             WHERE reservation_id = $1 AND kind = 'return'",
        )
        .bind(order)
        .fetch_one(&catalog)
        .await
        .expect("returns moved");
        assert_eq!(
            moved, *units,
            "order {order}: the ledger restocked what returns received"
        );
    }
    orders.close().await;
    catalog.close().await;
    lines.len()
}

/// A payment's id, order, status, captured amount, refunded amount, the
/// sums of its counting and succeeded refunds, how many refunds it has,
/// and what the provider's ledger refunded.
type PaymentMoney = (uuid::Uuid, uuid::Uuid, String, i64, i64, i64, i64, i64, i64);

/// The money conservation check, for every payment: its refunds that count
/// never pass what it captured; what it says went back is what its
/// succeeded refunds add up to, and what the provider's ledger says it
/// refunded, each refund made there once under its own id; and each order
/// has had at most that applied, once per refund. Returns how many
/// payments were checked.
pub async fn assert_money_conserved(app: &TestApp) -> usize {
    let payments = app.payments_pool().await;
    let orders = app.orders_pool().await;
    let rows: Vec<PaymentMoney> = sqlx::query_as(
        "SELECT p.id, p.order_id, p.status, p.amount, p.refunded_amount, \
           coalesce((SELECT sum(amount) FROM refunds r WHERE r.payment_id = p.id AND r.status <> 'failed'), 0)::bigint, \
           coalesce((SELECT sum(amount) FROM refunds r WHERE r.payment_id = p.id AND r.status = 'succeeded'), 0)::bigint, \
           (SELECT count(*) FROM refunds r WHERE r.payment_id = p.id), \
           coalesce((SELECT sum(amount) FROM provider_ledger l WHERE l.payment_id = p.id \
                     AND l.kind = 'refund' AND l.outcome = 'succeeded'), 0)::bigint \
         FROM payments p",
    )
    .fetch_all(&payments)
    .await
    .expect("payments");
    for (id, order, status, amount, refunded, counting, succeeded, refunds, ledger) in &rows {
        assert!(
            counting <= amount,
            "payment {id}: refunds {counting} ≤ captured {amount}"
        );
        assert!(
            refunded <= amount,
            "payment {id}: refunded {refunded} ≤ captured {amount}"
        );
        if *refunds > 0 {
            assert_eq!(
                refunded, succeeded,
                "payment {id}: refunded is its succeeded refunds"
            );
        }
        if status != "refund_pending" {
            assert_eq!(
                refunded, ledger,
                "payment {id}: the provider refunded what the shop says"
            );
        }
        let applied: (i64, i64, String) =
            sqlx::query_as("SELECT refunded_amount, total, status FROM orders WHERE id = $1")
                .bind(order)
                .fetch_one(&orders)
                .await
                .expect("order");
        if *refunds > 0 {
            assert!(
                applied.0 <= *refunded,
                "order {order}: applied {} ≤ refunded {refunded}",
                applied.0
            );
        }
        assert!(applied.0 <= applied.1, "order {order}: refunded ≤ total");
    }
    let unmatched: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "SELECT r.id, r.status, (SELECT count(*) FROM provider_ledger l \
           WHERE l.idempotency_key = r.id AND l.outcome = 'succeeded' AND l.amount = r.amount) \
         FROM refunds r",
    )
    .fetch_all(&payments)
    .await
    .expect("refunds");
    for (refund, status, made) in &unmatched {
        match status.as_str() {
            "succeeded" => assert_eq!(*made, 1, "refund {refund} was made once, of its amount"),
            "failed" => assert_eq!(*made, 0, "refund {refund} failed and made nothing"),
            _ => assert!(*made <= 1, "refund {refund} was made at most once"),
        }
    }
    let per_refund: Vec<(uuid::Uuid, i64, i64)> = sqlx::query_as(
        "SELECT o.id, o.refunded_amount, coalesce((SELECT sum(amount) FROM order_refunds r \
           WHERE r.order_id = o.id), 0)::bigint FROM orders o WHERE o.status <> 'refunded'",
    )
    .fetch_all(&orders)
    .await
    .expect("orders");
    for (order, refunded, applied) in &per_refund {
        assert_eq!(
            refunded, applied,
            "order {order}: its refunded amount is its applied refunds"
        );
    }
    payments.close().await;
    orders.close().await;
    rows.len()
}

/// Every post-purchase invariant at once: per line, ordered ≥ fulfilled ≥
/// shipped ≥ returned, received ≥ restocked ([`assert_orders_conserved`]);
/// captured ≥ refunded, the provider's ledger agreeing
/// ([`assert_money_conserved`]); and the stock ledger summing to the
/// stock ([`assert_stock_ledger_adds_up`]).
pub async fn assert_conserved(app: &TestApp) {
    assert_orders_conserved(app).await;
    assert_money_conserved(app).await;
    assert_stock_ledger_adds_up(app).await;
}
