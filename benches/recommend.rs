//! Serving cost of the recommender: one personal ranking and one "similar"
//! query at 10k and 100k products, and the model build, on synthetic data
//! shaped like the demo shop (a category tree, tags, price bands, customers
//! with a taste). The build is timed once per size outside criterion's loop.

use std::collections::HashSet;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use emporium::domain::recommendations::blend::build_served;
use emporium::domain::recommendations::data::{Dataset, Order};
use emporium::domain::recommendations::features::product_features;
use emporium::domain::recommendations::model::{with_recent, Method, Model, Weights};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn dataset(
    products: usize,
    users: usize,
    orders_per_user: usize,
    lines_per_order: usize,
) -> Dataset {
    let mut rng = StdRng::seed_from_u64(42);
    let mut d = Dataset::new();
    for p in 0..products {
        let item = d.item(&format!("p{p}"));
        let path = vec![format!("d{}", p % 6), format!("l{}", p % 18)];
        let tags: Vec<String> = (0..3)
            .map(|_| format!("t{}", rng.gen_range(0..60)))
            .collect();
        d.features[item] = product_features(&path, &tags, Some(rng.gen_range(500..50_000)));
    }
    for u in 0..users {
        let user = d.user(&format!("u{u}"));
        let taste = rng.gen_range(0..18);
        for o in 0..orders_per_user {
            let items = (0..lines_per_order)
                .map(|_| {
                    let leaf = if rng.gen_bool(0.8) {
                        taste
                    } else {
                        rng.gen_range(0..18)
                    };
                    (rng.gen_range(0..products / 18) * 18 + leaf).min(products - 1)
                })
                .collect();
            d.orders.push(Order {
                user,
                seq: o as f64,
                items,
            });
        }
    }
    d
}

/// The process's peak resident memory, in MiB (Linux).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Starts a new peak: the kernel resets VmHWM to the current resident set
/// (Linux ≥ 4.0), so each phase's peak is its own plus what is still held.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Times `calls` personal rankings, one call each, over different users'
/// histories, and prints p50 / p99 / max: criterion's means hide the tail.
fn per_call(label: &str, model: &Model, calls: usize) {
    let none = HashSet::new();
    let users = model.histories.len().max(1);
    let step = (users / calls).max(1);
    let histories: Vec<&[(usize, f32)]> = (0..calls)
        .map(|n| model.histories[(n * step) % users].as_slice())
        .collect();
    // Warm caches and the allocator first.
    for h in histories.iter().take(100) {
        std::hint::black_box(model.recommend(h, 10, &none));
    }
    let mut ms: Vec<f64> = histories
        .iter()
        .map(|h| {
            let started = Instant::now();
            std::hint::black_box(model.recommend(h, 10, &none));
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    eprintln!(
        "personal ranking per call ({label}; {} calls, one user each): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, mean {:.2} ms",
        ms.len(),
        at(0.50),
        at(0.99),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.iter().sum::<f64>() / ms.len().max(1) as f64
    );
}

/// The weights criterion measures with: all six signals (the most
/// expensive blend).
const ALL: Weights = Weights([0.5, 0.5, 1.0, 0.5, 0.5, 0.5]);

/// The scale: 100k products, 20k users, 1M order lines (20k × 5
/// orders × 10 lines). The model alone, then the served pipeline with a
/// weight search and with the last search's weights reused, each with its
/// own peak of resident memory (the dataset, ~0.3 GiB, is in every peak).
fn build_at_scale() {
    let data = dataset(100_000, 20_000, 5, 10);
    let lines = data.orders.iter().map(|o| o.items.len()).sum::<usize>();
    reset_peak();
    let started = Instant::now();
    let model = Model::build(&data, ALL);
    eprintln!(
        "build at scale: 100000 products, 20000 users, {lines} lines, {} edges in {:.1} s; peak memory {:.0} MiB",
        model.graph.edge_count(),
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    drop(model);
    // The served pipeline: the gate's evaluation (weights chosen on a
    // validation split, every signal and the blend scored on the test
    // split, 2,000 users each as `config.toml` has it), then the model.
    let mut weights = ALL;
    for reuse in [false, true] {
        reset_peak();
        let started = Instant::now();
        let pipeline = build_served(&data, 10, Some(2_000), reuse.then_some(weights));
        let blend = pipeline
            .reports
            .iter()
            .find(|(n, _)| *n == "blend")
            .map_or(0.0, |(_, r)| r.scores.recall);
        eprintln!(
            "pipeline at scale ({}): {:.1} s (blend recall@10 {blend:.4}, weights {:?}); peak memory {:.0} MiB ({} items)",
            if reuse { "weights reused" } else { "weights searched" },
            started.elapsed().as_secs_f64(),
            pipeline.weights.0,
            peak_mib(),
            pipeline.model.items
        );
        weights = pipeline.weights;
        if reuse {
            let mut model = pipeline.model;
            per_call("1M lines, the searched weights", &model, 2_000);
            model.weights = ALL;
            per_call("1M lines, all six signals", &model, 2_000);
        }
    }
}

fn serving(c: &mut Criterion) {
    if std::env::var_os("RECOMMEND_SKIP_SCALE").is_none() {
        build_at_scale();
    }
    let weights = ALL;
    let mut group = c.benchmark_group("recommend");
    group.sample_size(30);
    for products in [10_000usize, 100_000] {
        let data = dataset(products, 20_000, 5, 3);
        let started = Instant::now();
        let model = Model::build(&data, weights);
        eprintln!(
            "build: {products} products, 20000 users, {} lines, {} edges in {:.1} s",
            data.orders.len() * 3,
            model.graph.edge_count(),
            started.elapsed().as_secs_f64()
        );
        per_call(&format!("{products} products, 300k lines"), &model, 2_000);
        let history = model.histories[7].clone();
        let none = HashSet::new();
        group.bench_with_input(BenchmarkId::new("personal", products), &products, |b, _| {
            b.iter(|| model.recommend(&history, 10, &none))
        });
        group.bench_with_input(BenchmarkId::new("similar", products), &products, |b, _| {
            b.iter(|| model.signal(Method::ItemCosine, &[(123, 1.0)]))
        });
        // A paid order followed between builds: the user's history brought
        // up to date, then ranked afresh, as the next request sees it.
        let paid = vec![vec![11usize, 12, 13]];
        group.bench_with_input(
            BenchmarkId::new("incremental_update", products),
            &products,
            |b, _| b.iter(|| model.recommend(&with_recent(&history, &paid), 10, &none)),
        );
    }
    group.finish();
}

criterion_group!(benches, serving);
criterion_main!(benches);
