//! The payment pool under load: payments completed per second with a 0 ms
//! and a 50 ms simulated provider for several pool sizes, and the
//! enqueue-to-start latency at a steady rate, each beside PostgreSQL's own
//! ceiling on this machine (pgbench's built-in TPC-B-like script) measured
//! in the same run. `cargo bench --bench payment_pool`; prints a Markdown
//! table for docs/BENCHMARKS.md.
//!
//! Jobs are written straight into the payments database, in one
//! transaction with a NOTIFY, as another instance's API would; what is
//! measured is the pool: claim under lease, provider call (with its ledger
//! write), the fenced outcome transaction, and the outbox relay to orders.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use emporium::config::{Domain, Settings};
use emporium::startup::Application;
use emporium::store::database::{connect_options, drop_databases};
use sqlx::PgPool;

fn settings(workers: usize, batch: usize, latency_ms: u64) -> Settings {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let mut s = Settings::load(&path).expect("config.toml loads");
    let unique = uuid::Uuid::new_v4().simple().to_string();
    s.database.prefix = format!("emb_{}", &unique[..16]);
    s.http.port = 0;
    s.payments.workers = workers;
    s.payments.claim_batch = batch;
    s.payments.simulator.latency_ms = latency_ms;
    s.payments.simulator.latency_jitter_ms = 0;
    s.payments.poll_interval_ms = 100;
    s.payments.relay_interval_ms = 100;
    s
}

/// Starts an instance on its own thread and actix system; returns when it
/// serves. The thread ends with the process.
fn start(settings: Settings) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let app = Application::build(settings, false)
                .await
                .expect("instance starts");
            tx.send(()).expect("started");
            let _ = app.run_until_stopped().await;
        });
    });
    rx.recv().expect("instance thread");
}

async fn payments_pool(settings: &Settings) -> PgPool {
    let options = connect_options(&settings.database, Domain::Payments).expect("options");
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .expect("pool")
}

/// Writes `n` charge jobs at once and wakes `wake` workers.
async fn enqueue_batch(pool: &PgPool, n: i64, wake: usize) {
    let mut tx = pool.begin().await.expect("tx");
    sqlx::query(
        "WITH p AS (INSERT INTO payments (id, order_id, user_id, status, amount, currency, card_token, card_brand, card_last4) \
           SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'processing', 1000, 'EUR', \
                  'tok_sim_ok_' || g, 'visa', '4242' FROM generate_series(1, $1) g RETURNING id) \
         INSERT INTO payment_jobs (payment_id, kind) SELECT id, 'charge' FROM p",
    )
    .bind(n)
    .execute(&mut *tx)
    .await
    .expect("seed");
    // Distinct payloads: identical notifications in one transaction fold.
    sqlx::query("SELECT pg_notify('payment_jobs', g::text) FROM generate_series(1, $1) g")
        .bind(i64::try_from(wake).unwrap_or(1))
        .execute(&mut *tx)
        .await
        .expect("notify");
    tx.commit().await.expect("commit");
}

async fn wait_drained(pool: &PgPool) {
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_jobs")
            .fetch_one(pool)
            .await
            .expect("count");
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Payments completed per second by a pool of `workers`, each claiming
/// `batch` jobs at a time, against a provider answering in `latency_ms`.
async fn throughput(workers: usize, batch: usize, latency_ms: u64, jobs: i64) -> f64 {
    let s = settings(workers, batch, latency_ms);
    start(s.clone());
    let pool = payments_pool(&s).await;
    // Warm up: connections open, workers idle.
    enqueue_batch(&pool, i64::try_from(workers).unwrap_or(1), workers).await;
    wait_drained(&pool).await;
    let started = Instant::now();
    enqueue_batch(&pool, jobs, workers).await;
    wait_drained(&pool).await;
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE status <> 'succeeded'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(failed, 0, "every payment succeeded");
    pool.close().await;
    drop_databases(&s.database).await.expect("drop");
    rate
}

/// Enqueue-to-start latency (p50, p99 in ms) with payments arriving one per
/// transaction at `rate` per second for `secs` seconds.
async fn latency_under_load(workers: usize, batch: usize, rate: u64, secs: u64) -> (f64, f64, f64) {
    let s = settings(workers, batch, 0);
    start(s.clone());
    let pool = payments_pool(&s).await;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut next = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        enqueue_batch(&pool, 1, 1).await;
        sent += 1;
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let achieved = sent as f64 / started.elapsed().as_secs_f64();
    wait_drained(&pool).await;
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (detail->>'queued_ms')::float8), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY (detail->>'queued_ms')::float8) \
         FROM payment_events WHERE kind = 'attempt_started' AND detail->>'attempt' = '1'",
    )
    .fetch_one(&pool)
    .await
    .expect("percentiles");
    pool.close().await;
    drop_databases(&s.database).await.expect("drop");
    (achieved, p50, p99)
}

/// PostgreSQL's TPC-B-like transactions per second with `clients`
/// connections, on a scratch database.
fn pgbench(clients: usize) -> f64 {
    let db = format!(
        "emb_pgbench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let run = |args: &[&str]| {
        Command::new("pgbench")
            .args(["-h", "127.0.0.1", "-U", "postgres"])
            .args(args)
            .output()
            .expect("pgbench runs (Debian: postgresql-contrib)")
    };
    Command::new("createdb")
        .args(["-h", "127.0.0.1", "-U", "postgres", &db])
        .status()
        .expect("createdb");
    run(&["-i", "-q", "-s", "4", &db]);
    let out = run(&["-n", "-c", &clients.to_string(), "-j", "2", "-T", "8", &db]);
    let text = String::from_utf8_lossy(&out.stdout);
    Command::new("dropdb")
        .args(["-h", "127.0.0.1", "-U", "postgres", &db])
        .status()
        .expect("dropdb");
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The configurations: provider latency (ms), workers, claim batch, jobs.
const CONFIGS: [(u64, usize, usize, i64); 9] = [
    (0, 1, 1, 1_500),
    (0, 4, 1, 3_000),
    (0, 4, 4, 3_000),
    (0, 4, 8, 3_000), // the default batch
    (0, 4, 16, 3_000),
    (50, 4, 1, 300),
    (50, 4, 4, 1_000),
    (50, 16, 4, 3_000),
    (50, 64, 1, 3_000),
];

/// Runs one configuration (`PAYMENT_BENCH_ONLY=latency:workers:batch`,
/// or `latency:batch` for the enqueue-to-start run) and prints its line.
fn run_one(only: &str, baseline: f64) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if let Some(batch) = only.strip_prefix("latency:") {
        let batch: usize = batch.parse().expect("a claim batch");
        let (achieved, p50, p99) = rt.block_on(latency_under_load(4, batch, 150, 8));
        println!(
            "enqueue-to-start, 4 workers × claim batch {batch}, 0 ms provider, {achieved:.0} payments/s arriving one per transaction: p50 {p50:.1} ms, p99 {p99:.1} ms"
        );
        return;
    }
    for (latency, workers, batch, jobs) in CONFIGS {
        if only != format!("{latency}:{workers}:{batch}") {
            continue;
        }
        let rate = rt.block_on(throughput(workers, batch, latency, jobs));
        let in_flight = (workers * batch) as f64;
        let ideal = if latency == 0 {
            "—".to_owned()
        } else {
            format!("{:.2} ×", rate / (in_flight * 1000.0 / latency as f64))
        };
        println!(
            "| {latency} ms | {workers} × {batch} | {rate:.0} | {:.2} × | {ideal} |",
            rate / baseline
        );
    }
}

/// Each configuration runs in a process of its own, so no earlier
/// configuration's instance (its workers, relays and pollers) is still
/// running beside it.
fn main() {
    let baseline_env = std::env::var("PAYMENT_BENCH_BASELINE").ok();
    if let Ok(only) = std::env::var("PAYMENT_BENCH_ONLY") {
        let baseline = baseline_env
            .and_then(|b| b.parse().ok())
            .unwrap_or(f64::NAN);
        run_one(&only, baseline);
        return;
    }
    let baseline = pgbench(8);
    println!("pgbench tpcb-like, 8 clients: {baseline:.0} tps\n");
    println!(
        "| provider | workers × claim batch | payments/s | vs pgbench tps | vs in flight ÷ latency (ideal) |"
    );
    println!("|---|---|---|---|---|");
    let me = std::env::current_exe().expect("the bench's own path");
    let child = |only: String| {
        let out = Command::new(&me)
            .args(std::env::args().skip(1))
            .env("PAYMENT_BENCH_ONLY", only)
            .env("PAYMENT_BENCH_BASELINE", baseline.to_string())
            .output()
            .expect("the bench runs a configuration");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    };
    for (latency, workers, batch, _) in CONFIGS {
        child(format!("{latency}:{workers}:{batch}"));
    }
    for batch in [1, 8] {
        println!();
        child(format!("latency:{batch}"));
    }
}
