//! Serving cost of the recommender: one personal ranking and one "similar"
//! query at 10k and 100k products, and the model build, on synthetic data
//! shaped like the demo shop (a category tree, tags, price bands, customers
//! with a taste). The build is timed once per size outside criterion's loop.

use std::collections::HashSet;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use emporium::domain::recommend::data::{Dataset, Order};
use emporium::domain::recommend::features::product_features;
use emporium::domain::recommend::model::{Method, Model, Weights};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn dataset(products: usize, users: usize, orders_per_user: usize) -> Dataset {
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
            let items = (0..3)
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

fn serving(c: &mut Criterion) {
    let weights = Weights([0.5, 0.5, 1.0, 0.5, 0.5]);
    let mut group = c.benchmark_group("recommend");
    group.sample_size(30);
    for products in [10_000usize, 100_000] {
        let data = dataset(products, 20_000, 5);
        let started = Instant::now();
        let model = Model::build(&data, weights);
        eprintln!(
            "build: {products} products, 20000 users, {} lines, {} edges in {:.1} s",
            data.orders.len() * 3,
            model.graph.edge_count(),
            started.elapsed().as_secs_f64()
        );
        let history = model.histories[7].clone();
        let none = HashSet::new();
        group.bench_with_input(BenchmarkId::new("personal", products), &products, |b, _| {
            b.iter(|| model.recommend(&history, 10, &none))
        });
        group.bench_with_input(BenchmarkId::new("similar", products), &products, |b, _| {
            b.iter(|| model.signal(Method::ItemCosine, &[(123, 1.0)]))
        });
    }
    group.finish();
}

criterion_group!(benches, serving);
criterion_main!(benches);
