use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::JsonBody as _;
use crate::helpers::{str_of, TestApp};

async fn get(app: &TestApp, path: &str) -> (String, Value) {
    let r = app.get(path, None).await;
    assert_eq!(r.status(), 200, "{path}");
    let cache = r
        .headers()
        .get("x-cache")
        .expect("x-cache")
        .to_str()
        .expect("ascii")
        .to_owned();
    (cache, r.body_json().await)
}

/// One part of the admin runtime report.
async fn report_part(app: &TestApp, admin: &str, part: &str) -> Value {
    let report: Value = app
        .get("/api/v1/admin/actors/", Some(admin))
        .await
        .body_json()
        .await;
    report[part].clone()
}

async fn cache_stats(app: &TestApp, admin: &str) -> Value {
    report_part(app, admin, "catalog_cache").await
}

async fn view_stats(app: &TestApp, admin: &str) -> Value {
    report_part(app, admin, "catalog_view").await
}

#[tokio::test]
async fn reads_are_cached_under_a_normalised_key() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    app.product(
        &admin,
        json!({"name": "Trail Shoe", "tags": ["trail", "light"], "price": 500}),
    )
    .await;
    let (first, body) = get(
        &app,
        "/api/v1/products/?tags=trail,light&min_price=100&q=Trail",
    )
    .await;
    assert_eq!(first, "MISS");
    let (second, again) = get(
        &app,
        "/api/v1/products/?q=trail&min_price=100&tags=LIGHT,trail",
    )
    .await;
    assert_eq!(second, "HIT", "same filters in another order and case");
    assert_eq!(body, again);
    let (other, _) = get(&app, "/api/v1/products/?q=trail&min_price=101").await;
    assert_eq!(other, "MISS");
    let (detail_miss, _) = get(&app, "/api/v1/products/trail-shoe/").await;
    let (detail_hit, _) = get(&app, "/api/v1/products/trail-shoe/").await;
    assert_eq!((detail_miss.as_str(), detail_hit.as_str()), ("MISS", "HIT"));
    // The view keeps whole responses by their raw query, so the reordered
    // query was Redis's hit (normalised key); the detail's second read
    // was the view's.
    let stats = cache_stats(&app, &admin).await;
    let view = view_stats(&app, &admin).await;
    assert!(
        view["hits"].as_u64() >= Some(1)
            && stats["hits"].as_u64() >= Some(1)
            && stats["misses"].as_u64() >= Some(2),
        "{stats} {view}"
    );
}

#[tokio::test]
async fn every_kind_of_write_is_visible_on_the_very_next_read() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let shoes = app.category(&admin, json!({"name": "Shoes"})).await;
    let p = app
        .product(
            &admin,
            json!({"name": "Boot", "price": 100, "category_id": shoes["id"]}),
        )
        .await;
    let id = str_of(&p["id"]);
    let detail = format!("/api/v1/products/{id}/");
    let list = "/api/v1/products/?category=shoes";
    // Warm both.
    get(&app, &detail).await;
    get(&app, list).await;
    assert_eq!(get(&app, list).await.0, "HIT");

    app.patch(&detail, Some(&admin), &json!({"price": 200}))
        .await;
    let (_, fresh) = get(&app, &detail).await;
    assert_eq!(fresh["price"], 200, "after a product update");
    assert_eq!(get(&app, list).await.1["results"][0]["price"], 200);

    app.product(
        &admin,
        json!({"name": "Sandal", "category_id": shoes["id"]}),
    )
    .await;
    assert_eq!(
        get(&app, list).await.1["count"],
        2,
        "after a product create"
    );

    let category_path = format!("/api/v1/categories/{}/", str_of(&shoes["id"]));
    app.patch(&category_path, Some(&admin), &json!({"slug": "footwear"}))
        .await;
    let r = app.get(list, None).await;
    assert_eq!(
        r.status(),
        400,
        "after a category change the old slug is unknown"
    );
    assert_eq!(
        get(&app, "/api/v1/products/?category=footwear").await.1["count"],
        2
    );

    let reservation = uuid::Uuid::new_v4();
    app.actors
        .catalog
        .call(emporium::actors::catalog::messages::ReserveStock {
            reservation_id: reservation,
            lines: vec![emporium::domain::catalog::stock::StockLine {
                variant_id: id.parse().expect("uuid"),
                quantity: 4,
            }],
        })
        .await
        .expect("reserved");
    assert_eq!(
        get(&app, &detail).await.1["stock"],
        6,
        "after a reservation"
    );

    app.patch(&detail, Some(&admin), &json!({"is_active": false}))
        .await;
    assert_eq!(
        app.get(&detail, None).await.status(),
        404,
        "after deactivation"
    );
    assert_eq!(
        get(&app, "/api/v1/products/?category=footwear").await.1["count"],
        1
    );
}

#[tokio::test]
async fn a_cold_key_hit_by_many_at_once_costs_one_database_load() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    for n in 0..30 {
        app.product(
            &admin,
            json!({"name": format!("Item {n}"), "price": 100 + n}),
        )
        .await;
    }
    let before = cache_stats(&app, &admin).await["db_loads"]
        .as_u64()
        .expect("n");
    let path = "/api/v1/products/?ordering=-price&page_size=25";
    let requests = (0..40).map(|_| app.get(path, None));
    let responses = futures_util::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    let stats = cache_stats(&app, &admin).await;
    assert_eq!(
        stats["db_loads"].as_u64().expect("n") - before,
        1,
        "{stats}"
    );
}

#[tokio::test]
async fn with_redis_unreachable_reads_come_from_postgresql_and_stay_correct() {
    let app = TestApp::spawn_with(|s| s.redis.url = "redis://127.0.0.1:1".into()).await;
    let (_, admin) = app.admin().await;
    let p = app
        .product(&admin, json!({"name": "Lamp", "price": 100}))
        .await;
    let detail = format!("/api/v1/products/{}/", str_of(&p["id"]));
    assert_eq!(get(&app, &detail).await.0, "MISS");
    app.patch(&detail, Some(&admin), &json!({"price": 150}))
        .await;
    let (cache, body) = get(&app, &detail).await;
    assert_eq!(
        (cache.as_str(), body["price"].as_i64()),
        ("MISS", Some(150))
    );
    let (_, list) = get(&app, "/api/v1/products/").await;
    assert_eq!(list["count"], 1);
    let stats = cache_stats(&app, &admin).await;
    assert!(stats["errors"].as_u64() >= Some(1), "{stats}");
    assert!(stats["bypassed"].as_u64() >= Some(1), "{stats}");
}

/// A TCP proxy to the real Redis that can be cut and restored, to stop
/// "Redis" under a running instance without touching the shared server.
struct RedisProxy {
    port: u16,
    task: Option<JoinHandle<()>>,
}

impl RedisProxy {
    async fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut connections = Vec::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                connections.push(tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                }));
                connections.retain(|c| !c.is_finished());
            }
        });
        Self {
            port,
            task: Some(task),
        }
    }

    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

#[tokio::test]
async fn redis_stopping_and_returning_under_a_running_instance_is_survived() {
    let mut proxy = RedisProxy::start(0).await;
    let port = proxy.port;
    let app = TestApp::spawn_with(|s| s.redis.url = format!("redis://127.0.0.1:{port}")).await;
    let (_, admin) = app.admin().await;
    let p = app
        .product(&admin, json!({"name": "Clock", "price": 100}))
        .await;
    let detail = format!("/api/v1/products/{}/", str_of(&p["id"]));
    get(&app, &detail).await;
    assert_eq!(get(&app, &detail).await.0, "HIT");

    // Redis goes away: pooled connections die with the proxy's tasks.
    proxy.cut();
    drop(proxy);
    app.patch(&detail, Some(&admin), &json!({"price": 300}))
        .await;
    let (cache, body) = get(&app, &detail).await;
    assert_eq!(body["price"], 300, "served from PostgreSQL, correct");
    assert_eq!(cache, "MISS");

    // Redis comes back on the same port; the instance uses it again, and the
    // value cached before the outage is not served (the write was missed).
    let _proxy = RedisProxy::start(port).await;
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (cache, body) = get(&app, &detail).await;
        assert_eq!(body["price"], 300, "never the stale cached price");
        if cache == "HIT" {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the cache is used again once Redis is back");
}

#[tokio::test]
async fn with_redis_down_stock_writes_pay_the_lease_once_per_outage() {
    let app = TestApp::spawn_with(|s| s.redis.url = "redis://127.0.0.1:1".into()).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 100})).await;
    let body = crate::orders::order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let r = app.post(crate::orders::ORDERS, Some(&token), &body).await;
        assert_eq!(r.status(), 201);
        took.push(started.elapsed());
    }
    assert!(took[0] < Duration::from_secs(3), "{took:?}");
    assert!(
        took[1..].iter().all(|t| *t < Duration::from_secs(1)),
        "later writes in the same outage do not wait a lease: {took:?}"
    );
    // Still never stale: the reads come from PostgreSQL.
    assert_eq!(app.stock_of(&admin, &p).await, 95);
}
