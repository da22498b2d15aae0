//! The in-process catalog view across instances: a write that has answered
//! on one instance is never followed by a stale read on another, including
//! when the other's channel is cut or silently stalled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::JsonBody as _;
use crate::helpers::{str_of, TestApp};

/// GETs `path`; returns the body and whether the view answered.
async fn read(app: &TestApp, path: &str) -> (Value, bool) {
    let r = app.get(path, None).await;
    assert_eq!(r.status(), 200, "{path}");
    let from_view = r
        .headers()
        .get("x-cache-layer")
        .is_some_and(|v| v == "view");
    (r.body_json().await, from_view)
}

/// Reads `path` until the view answers it (it fills on a miss).
async fn warm(app: &TestApp, path: &str) {
    for _ in 0..50 {
        if read(app, path).await.1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never came from the view");
}

async fn shop(a: &TestApp) -> (String, String, String) {
    let (_, admin) = a.admin().await;
    let p = a
        .product(&admin, json!({"name": "Lamp", "price": 100, "stock": 50}))
        .await;
    (admin, str_of(&p["id"]), str_of(&p["slug"]))
}

#[tokio::test]
async fn a_write_on_one_instance_is_never_followed_by_a_stale_read_on_another() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (admin, id, slug) = shop(&a).await;
    let detail = format!("/api/v1/products/{slug}/");
    let list = "/api/v1/products/?ordering=price";
    let categories = "/api/v1/categories/";
    for round in 1..=10 {
        warm(&b, &detail).await;
        warm(&b, list).await;
        warm(&b, categories).await;
        let price = 100 + round;
        let r = a
            .patch(
                &format!("/api/v1/products/{id}/"),
                Some(&admin),
                &json!({"price": price}),
            )
            .await;
        assert_eq!(r.status(), 200);
        // The very next read on the other instance.
        assert_eq!(read(&b, &detail).await.0["price"], price, "round {round}");
        assert_eq!(read(&b, list).await.0["results"][0]["price"], price);
        let r = a
            .post(
                "/api/v1/categories/",
                Some(&admin),
                &json!({"name": format!("Room {round}")}),
            )
            .await;
        assert_eq!(r.status(), 201);
        assert_eq!(read(&b, categories).await.0["count"], round);
    }
}

#[tokio::test]
async fn stock_taken_by_an_order_on_one_instance_shows_on_the_other_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, id, slug) = shop(&a).await;
    let detail = format!("/api/v1/products/{slug}/");
    let (_, token, _) = a.customer("buyer@emporium.test").await;
    for n in 1..=3 {
        warm(&b, &detail).await;
        crate::orders::place(&a, &token, json!([{"product_id": id, "quantity": 2}])).await;
        assert_eq!(read(&b, &detail).await.0["stock"], 50 - 2 * n);
    }
}

/// A TCP proxy to Redis that can stall: bytes stop flowing both ways while
/// connections stay open, as with a hung network path.
pub struct StallingProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    cut: tokio::sync::broadcast::Sender<()>,
}

impl StallingProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let (cut, _) = tokio::sync::broadcast::channel(4);
        let flag = Arc::clone(&stalled);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect("127.0.0.1:6379").await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, Arc::clone(&flag), cuts.subscribe()));
                tokio::spawn(pump(sr, cw, Arc::clone(&flag), cuts.subscribe()));
            }
        });
        Self { port, stalled, cut }
    }

    /// Closes every open connection (new ones are accepted).
    fn cut_all(&self) {
        let _ = self.cut.send(());
    }

    /// Bytes stop (or start again) flowing both ways.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
    mut cut: tokio::sync::broadcast::Receiver<()>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = cut.recv() => return,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn an_instance_whose_channel_stalls_stops_serving_its_view_before_a_write_answers() {
    let a = TestApp::spawn().await;
    let proxy = StallingProxy::start().await;
    let mut beside = a.settings.clone();
    beside.redis.url = proxy.url();
    let b = TestApp::spawn_beside(&beside).await;
    assert!(b.actors.catalog_view.is_settled(), "b's view settled");
    let (admin, id, slug) = shop(&a).await;
    let detail = format!("/api/v1/products/{slug}/");
    warm(&b, &detail).await;

    // b's channel hangs without closing: no acknowledgement will come.
    proxy.stall(true);
    let r = a
        .patch(
            &format!("/api/v1/products/{id}/"),
            Some(&admin),
            &json!({"price": 777}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // a waited out b's lease, so b no longer trusts its view: the read
    // goes to the database (Redis is unreachable for b) and is fresh.
    let (body, from_view) = read(&b, &detail).await;
    assert_eq!(body["price"], 777);
    assert!(!from_view);

    // The channel recovers; b serves from its view again, still fresh.
    proxy.stall(false);
    warm(&b, &detail).await;
    assert_eq!(read(&b, &detail).await.0["price"], 777);
}

#[tokio::test]
async fn a_dropped_subscription_bypasses_the_view_until_it_is_back() {
    let a = TestApp::spawn().await;
    let proxy = StallingProxy::start().await;
    let mut beside = a.settings.clone();
    beside.redis.url = proxy.url();
    let b = TestApp::spawn_beside(&beside).await;
    let (admin, id, slug) = shop(&a).await;
    let detail = format!("/api/v1/products/{slug}/");
    warm(&b, &detail).await;
    // Every Redis connection of b closes, its subscription with them.
    proxy.cut_all();
    let r = a
        .patch(
            &format!("/api/v1/products/{id}/"),
            Some(&admin),
            &json!({"price": 555}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(read(&b, &detail).await.0["price"], 555);
    // Resubscribed, b fills and serves its view again.
    warm(&b, &detail).await;
    assert_eq!(read(&b, &detail).await.0["price"], 555);
}

/// GETs `path` accepting gzip; returns the decoded body, whether it came
/// gzipped, and whether the view answered.
async fn read_gzip(app: &TestApp, path: &str) -> (Value, bool, bool) {
    use std::io::Read as _;
    let r = app
        .request(reqwest::Method::GET, path, None)
        .header("accept-encoding", "br;q=0.9, gzip;q=0.8")
        .send()
        .await
        .expect("request sent");
    assert_eq!(r.status(), 200, "{path}");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let gzipped = header("content-encoding").as_deref() == Some("gzip");
    let from_view = header("x-cache-layer").as_deref() == Some("view");
    let vary = header("vary").unwrap_or_default();
    assert!(
        vary.split(", ").any(|v| v == "Accept-Encoding"),
        "{path}: {vary}"
    );
    let bytes = r.bytes().await.expect("body");
    let body = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .expect("a gzip body");
        out
    } else {
        bytes.to_vec()
    };
    (
        serde_json::from_slice(&body).expect("JSON"),
        gzipped,
        from_view,
    )
}

/// Clients that accept gzip get the view's compressed copy of a listing or
/// a product, on a miss and on a hit, decoding to the very bytes others
/// get; small bodies and clients that refuse gzip get them as they are.
#[tokio::test]
async fn large_pages_go_gzipped_to_clients_that_accept_it() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let mut id = String::new();
    for n in 0..12 {
        let body = json!({"name": format!("Long description {n}"), "sku": format!("GZ-{n}"),
            "price": 1000 + n, "currency": "EUR", "stock": 3,
            "description": "soft cotton ".repeat(90)});
        let r = app.post("/api/v1/products/", Some(&admin), &body).await;
        assert_eq!(r.status(), 201);
        let product: Value = r.body_json().await;
        id = str_of(&product["id"]);
    }
    for path in [
        "/api/v1/products/?ordering=price".to_owned(),
        format!("/api/v1/products/{id}/"),
    ] {
        let (first, gzipped, from_view) = read_gzip(&app, &path).await;
        assert!(gzipped && !from_view, "{path}: a miss, compressed");
        let (second, gzipped, from_view) = read_gzip(&app, &path).await;
        assert!(gzipped && from_view, "{path}: a hit, compressed");
        assert_eq!(first, second);
        let (plain, from_view) = read(&app, &path).await;
        assert!(from_view);
        assert_eq!(plain, first, "{path}");
        let r = app
            .request(reqwest::Method::GET, &path, None)
            .header("accept-encoding", "gzip;q=0, identity")
            .send()
            .await
            .expect("request sent");
        assert!(r.headers().get("content-encoding").is_none(), "{path}");
    }
    // A small page is sent as it is.
    let (_, gzipped, _) = read_gzip(&app, "/api/v1/products/?q=nothing-matches").await;
    assert!(!gzipped);
}

/// Whether `path` answers from the view or, failing that, where the
/// catalog found it (`x-cache`); and the body.
async fn read_layer(app: &TestApp, path: &str) -> (Value, String) {
    let r = app.get(path, None).await;
    assert_eq!(r.status(), 200, "{path}");
    let layer = match r.headers().get("x-cache-layer") {
        Some(v) if v == "view" => "view".to_owned(),
        _ => r
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_lowercase(),
    };
    (r.body_json().await, layer)
}

fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| str_of(&p["name"]))
        .collect()
}

#[tokio::test]
async fn stock_and_price_moves_evict_only_what_shows_or_hangs_on_them_on_every_instance() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let mut rooms = Vec::new();
    for name in ["Kitchen", "Footwear"] {
        let r = a
            .post("/api/v1/categories/", Some(&admin), &json!({"name": name}))
            .await;
        assert_eq!(r.status(), 201);
        rooms.push(str_of(&r.body_json().await["id"]));
    }
    let product = |name: &str, room: &str, stock: i32, price: i64| json!({"name": name, "category_id": room, "stock": stock, "price": price});
    let kettle = a
        .product(&admin, product("Kettle", &rooms[0], 50, 3000))
        .await;
    let last_pan = a
        .product(&admin, product("Last pan", &rooms[0], 1, 2000))
        .await;
    a.product(&admin, product("Boot", &rooms[1], 20, 9000))
        .await;
    a.product(&admin, product("Sandal", &rooms[1], 20, 4000))
        .await;
    let kettle_id = str_of(&kettle["id"]);
    let (_, token, _) = a.customer("buyer@emporium.test").await;

    let kitchen = format!("/api/v1/products/?category={}", rooms[0]);
    let kitchen_in_stock = format!("/api/v1/products/?category={}&in_stock=true", rooms[0]);
    let footwear = format!("/api/v1/products/?category={}", rooms[1]);
    let footwear_by_price = format!("/api/v1/products/?category={}&ordering=price", rooms[1]);
    let kettle_page = format!("/api/v1/products/{kettle_id}/");
    let pages = [
        &kitchen,
        &kitchen_in_stock,
        &footwear,
        &footwear_by_price,
        &kettle_page,
    ];
    for page in pages {
        warm(&b, page).await;
    }

    // A kettle sold on one instance: the other reads the new stock at once,
    // and keeps every page the kettle is not on.
    crate::orders::place(
        &a,
        &token,
        json!([{"product_id": kettle_id, "quantity": 1}]),
    )
    .await;
    let (detail, layer) = read_layer(&b, &kettle_page).await;
    assert_eq!(detail["stock"], 49);
    assert_ne!(layer, "view");
    let (page, layer) = read_layer(&b, &kitchen).await;
    assert_ne!(layer, "view");
    assert!(page["results"]
        .as_array()
        .expect("results")
        .iter()
        .any(|p| p["stock"] == 49));
    for kept in [&footwear, &footwear_by_price] {
        assert_eq!(read_layer(&b, kept).await.1, "view", "{kept} survives");
    }
    // No product crossed zero: the in-stock filter's pages without the
    // kettle stay; the kitchen one shows the kettle and goes.
    assert_ne!(read_layer(&b, &kitchen_in_stock).await.1, "view");
    // A fresh instance (an empty view) finds the untouched pages in Redis.
    let c = TestApp::spawn_beside(&a.settings).await;
    assert_eq!(read_layer(&c, &footwear).await.1, "hit");
    for page in pages {
        warm(&b, page).await;
    }

    // The last pan sold: in-stock listings change, wherever they are.
    crate::orders::place(
        &a,
        &token,
        json!([{"product_id": last_pan["id"], "quantity": 1}]),
    )
    .await;
    let (page, layer) = read_layer(&b, &kitchen_in_stock).await;
    assert_ne!(layer, "view");
    assert_eq!(names(&page), vec!["Kettle"]);
    assert_eq!(read_layer(&b, &footwear).await.1, "view");
    for page in pages {
        warm(&b, page).await;
    }

    // The kettle repriced below every boot: price-ordered pages go, even
    // where the kettle is not shown; the others stay.
    let r = a
        .patch(
            &format!("/api/v1/products/{kettle_id}/variants/{kettle_id}/"),
            Some(&admin),
            &json!({"price": 1000}),
        )
        .await;
    assert_eq!(r.status(), 200, "repricing the kettle's variant");
    let (page, layer) = read_layer(&b, &kettle_page).await;
    assert_ne!(layer, "view");
    assert_eq!(page["price"], 1000);
    assert_ne!(read_layer(&b, &footwear_by_price).await.1, "view");
    assert_eq!(read_layer(&b, &footwear).await.1, "view");
    assert_eq!(
        names(&read_layer(&b, &footwear_by_price).await.0),
        vec!["Sandal", "Boot"]
    );
}

#[tokio::test]
async fn with_scoped_invalidation_off_every_order_empties_the_view_as_before() {
    let a = TestApp::spawn_with(|s| s.catalog.scoped_invalidation = false).await;
    let (admin, id, _) = shop(&a).await;
    let other = a
        .product(&admin, json!({"name": "Rug", "price": 500, "stock": 5}))
        .await;
    let other_page = format!("/api/v1/products/{}/", str_of(&other["id"]));
    warm(&a, &other_page).await;
    let (_, token, _) = a.customer("buyer@emporium.test").await;
    crate::orders::place(&a, &token, json!([{"product_id": id, "quantity": 1}])).await;
    let (_, layer) = read_layer(&a, &other_page).await;
    assert_eq!(
        layer, "miss",
        "a whole invalidation: the rug's page reloads"
    );
}
