//! Micro-benchmarks of the runtime's fixed costs: JWT signing and
//! verification (paid on every authenticated request), argon2id (paid on
//! every login), and a message round trip through a supervised actor on its
//! own arbiter against calling the same async function directly.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::{Arbiter, Supervisor};
use criterion::{criterion_group, criterion_main, Criterion};
use emporium::actors::catalog::cache::CatalogCache;
use emporium::actors::catalog::CatalogActor;
use emporium::actors::metrics::ActorMetrics;
use emporium::actors::read_view::{CatalogView, Page};
use emporium::actors::runtime::{run_probe, ActorClient, Probe};
use emporium::config::{Domain, Settings};
use emporium::domain::auth::{PasswordHasher, Role, TokenKeys};
use emporium::store::database::lazy_pool;
use emporium::store::redis::pool as redis_pool;

fn tokens(c: &mut Criterion) {
    let keys = TokenKeys::new(
        b"bench-secret-bench-secret-bench-secret",
        "emporium",
        "emporium-api",
        900,
    );
    let user = uuid::Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let token = keys
        .issue_access(user, Role::Customer, 0, now)
        .expect("sign");
    let mut group = c.benchmark_group("jwt");
    group.bench_function("sign_hs256", |b| {
        b.iter(|| {
            keys.issue_access(user, Role::Customer, 0, now)
                .expect("sign")
        })
    });
    group.bench_function("verify_hs256", |b| {
        b.iter(|| keys.verify_access(&token).expect("verify"))
    });
    group.finish();
}

fn passwords(c: &mut Criterion) {
    let hasher = PasswordHasher::new().expect("params");
    let hash = hasher.hash("correct horse battery").expect("hash");
    let mut group = c.benchmark_group("argon2id");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("verify", |b| {
        b.iter(|| hasher.verify("correct horse battery", &hash))
    });
    group.finish();
}

fn actor_round_trip(c: &mut Criterion) {
    let settings =
        Settings::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")).expect("config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The actor lives in its own actix system thread, as in the cluster;
    // the caller is a tokio task on another thread, as an HTTP worker is.
    let (tx, rx) = std::sync::mpsc::channel();
    let (view_tx, view_rx) = std::sync::mpsc::channel();
    let settings_for_actor = settings.clone();
    let system = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            // A lazy pool never connects: Probe does not touch the database.
            let pool = lazy_pool(&settings_for_actor.database, Domain::Catalog).expect("pool");
            let metrics = ActorMetrics::new("catalog", 1024);
            let m = Arc::clone(&metrics);
            let arbiter = Arbiter::new();
            // Neither does the cache (built without connecting).
            let cache = CatalogCache::new(
                redis_pool(&settings_for_actor.redis).expect("redis pool"),
                "bench",
                Duration::from_millis(100),
                60,
            );
            let view = CatalogView::new(
                redis_pool(&settings_for_actor.redis).expect("redis pool"),
                &settings_for_actor.redis.url,
                "bench",
                "catalog",
                64 << 20,
            );
            let media =
                emporium::store::media::MediaStore::from_settings(&settings_for_actor.media)
                    .expect("media store");
            let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                CatalogActor::new(
                    pool,
                    cache,
                    view,
                    media.clone(),
                    900,
                    Duration::from_secs(3600),
                    m,
                )
            });
            // A read view of its own, subscribed, for the edge's hit path.
            let edge_view = CatalogView::new(
                redis_pool(&settings_for_actor.redis).expect("redis pool"),
                &settings_for_actor.redis.url,
                "bench-view",
                "catalog",
                64 << 20,
            );
            edge_view.start();
            view_tx.send(edge_view).expect("send view");
            tx.send(ActorClient::new(addr, metrics, Duration::from_secs(5)))
                .expect("send client");
            // Keep the system alive until the process ends.
            std::future::pending::<()>().await;
        })
    });
    let client = rx.recv().expect("client");
    let view = view_rx.recv().expect("view");
    let probe = Probe {
        sleep_ms: 0,
        panic: false,
    };
    let mut group = c.benchmark_group("actor_round_trip");
    group.bench_function("direct_call", |b| {
        b.to_async(&runtime).iter(|| run_probe("catalog", probe))
    });
    group.bench_function("actor_message", |b| {
        b.to_async(&runtime).iter(|| client.call(probe))
    });
    group.finish();
    // The edge's hit path: a page from the in-process view, no hop (needs
    // Redis for the view's lease; skipped without it).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !view.is_serving() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if view.is_serving() {
        view.put(
            view.ticket(),
            "public-list:page".into(),
            Page {
                count: 10_000,
                body: bytes::Bytes::from(vec![b'x'; 12_000]),
                gzip: None,
            },
        );
        let mut group = c.benchmark_group("catalog_view");
        group.bench_function("hit", |b| b.iter(|| view.get("public-list:page")));
        group.finish();
    } else {
        eprintln!("catalog view not serving (is Redis up?); hit bench skipped");
    }
    drop(system);
}

criterion_group!(benches, tokens, passwords, actor_round_trip);
criterion_main!(benches);
