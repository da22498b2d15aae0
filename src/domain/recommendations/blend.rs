//! Choosing the blend's weights on held-out data, and evaluating every
//! signal and the blend the same way: each user's last order held out, the
//! rest trained on, the whole catalogue ranked.

use std::collections::HashSet;
use std::time::Instant;

use super::data::{Dataset, Order};
use super::metrics::{Accumulator, Scores};
#[cfg(doc)]
use super::model::blend;
use super::model::{Method, Model, Weights, METHODS, SIGNALS};

/// Weight levels tried per signal.
const LEVELS: [f32; 4] = [0.0, 0.25, 0.5, 1.0];
/// Passes of the coordinate search over every signal, at most.
const ROUNDS: usize = 3;

/// One method's offline figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MethodReport {
    #[serde(flatten)]
    pub scores: Scores,
    pub seconds: f64,
}

/// Each held-out user's candidates as one table — item and its scaled
/// score in every signal, by item — and the time each signal took in all.
/// The weight search scores dozens of blends over the same users; summing
/// a table row per candidate is what [`blend`] does through a hash map
/// (which the profile showed as most of a build's evaluation).
struct Prepared {
    tables: Vec<Vec<(usize, [f32; SIGNALS])>>,
    relevant: Vec<HashSet<usize>>,
    seconds: [f64; SIGNALS],
}

/// Every signal of each held-out user, computed once: each signal alone
/// and every blend the search tries are scored from these.
fn prepare(model: &Model, test: &[Order]) -> Prepared {
    let mut tables = Vec::with_capacity(test.len());
    let mut relevant = Vec::with_capacity(test.len());
    let mut seconds = [0.0; SIGNALS];
    for o in test {
        let history = model.histories.get(o.user).map_or(&[][..], Vec::as_slice);
        let mut rows: Vec<(usize, usize, f32)> = Vec::new();
        for (m, method) in METHODS.iter().enumerate() {
            let started = Instant::now();
            rows.extend(
                model
                    .signal(*method, history)
                    .into_iter()
                    .map(|(i, s)| (i, m, s)),
            );
            seconds[m] += started.elapsed().as_secs_f64();
        }
        rows.sort_unstable_by_key(|(i, m, _)| (*i, *m));
        let mut table: Vec<(usize, [f32; SIGNALS])> = Vec::new();
        for (item, m, score) in rows {
            match table.last_mut() {
                Some((last, parts)) if *last == item => parts[m] += score,
                _ => {
                    let mut parts = [0.0; SIGNALS];
                    parts[m] = score;
                    table.push((item, parts));
                }
            }
        }
        tables.push(table);
        relevant.push(o.items.iter().copied().collect());
    }
    Prepared {
        tables,
        relevant,
        seconds,
    }
}

/// The best `k` of a user's table under `weights`, as [`blend`] ranks
/// them: an item counts if a weighted signal proposed it (every proposed
/// score is above 0), its score the weighted sum in signal order; best
/// first, ties by item.
fn ranked(table: &[(usize, [f32; SIGNALS])], weights: &Weights, k: usize) -> Vec<usize> {
    let mut scored: Vec<(usize, f32)> = table
        .iter()
        .filter(|(_, parts)| (0..SIGNALS).any(|m| weights.0[m] != 0.0 && parts[m] > 0.0))
        .map(|(item, parts)| {
            let mut total = 0.0f32;
            for (w, part) in weights.0.iter().zip(parts) {
                if *w != 0.0 {
                    total += w * part;
                }
            }
            (*item, total)
        })
        .collect();
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scored.len() > k {
        scored.select_nth_unstable_by(k, order);
        scored.truncate(k);
    }
    scored.sort_by(order);
    scored.into_iter().map(|(i, _)| i).collect()
}

fn score(p: &Prepared, weights: &Weights, k: usize) -> Scores {
    let mut acc = Accumulator::default();
    for (table, relevant) in p.tables.iter().zip(&p.relevant) {
        acc.add(&ranked(table, weights, k), relevant);
    }
    acc.scores()
}

/// At most `max` of `held` (which is sorted by user), spread evenly, so
/// the choice is deterministic; all of them when `max` is `None`.
fn sample(mut held: Vec<Order>, max: Option<usize>) -> Vec<Order> {
    match max {
        Some(max) if max > 0 && held.len() > max => {
            let step = held.len().div_ceil(max);
            held.into_iter().step_by(step).collect()
        }
        _ => {
            held.shrink_to_fit();
            held
        }
    }
}

/// Chooses blend weights on `train` alone: its users' last orders are held
/// out again as a validation set, and the weights with the best recall@k
/// there win (ties: the first in a fixed order, so the choice is
/// deterministic).
pub fn choose_weights(train: &Dataset, k: usize, max_users: Option<usize>) -> Weights {
    let levels = train.hold_out_levels(1);
    let mut models = Model::build_nested(train, &levels, 1, Weights::only(Method::Popularity));
    match models.pop() {
        Some(fit) => search_on(&fit, train.orders_at(&levels, 1), k, max_users),
        None => Weights::only(Method::Popularity),
    }
}

/// The weight search on a model trained without the `validation` orders.
fn search_on(fit: &Model, validation: Vec<Order>, k: usize, max_users: Option<usize>) -> Weights {
    let validation = sample(validation, max_users);
    if validation.is_empty() {
        return Weights::only(Method::Popularity);
    }
    let prepared = prepare(fit, &validation);
    search(|w| score(&prepared, w, k).recall)
}

/// Coordinate ascent on recall: start from the best single signal, then,
/// signal by signal, try each of [`LEVELS`] with the others held, keeping
/// strict improvements, until a pass improves nothing. A full grid over
/// six signals is 4,095 blends per build (728 at three levels); this is a
/// few dozen, so the gate stays cheap at scale. It can stop at a local
/// optimum of the validation split (docs/BENCHMARKS.md shows what that
/// costs on the demo data). Deterministic: fixed order, ties keep the
/// earlier.
fn search(recall: impl Fn(&Weights) -> f64) -> Weights {
    let mut best = (Weights::only(Method::Popularity), f64::MIN);
    for method in METHODS {
        let w = Weights::only(method);
        let r = recall(&w);
        if r > best.1 + 1e-12 {
            best = (w, r);
        }
    }
    for _ in 0..ROUNDS {
        let mut improved = false;
        for slot in 0..METHODS.len() {
            for level in LEVELS {
                let mut w = best.0;
                if w.0[slot] == level {
                    continue;
                }
                w.0[slot] = level;
                if w.0.iter().all(|x| *x == 0.0) {
                    continue;
                }
                let r = recall(&w);
                if r > best.1 + 1e-12 {
                    best = (w, r);
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    best.0
}

/// The offline evaluation: every signal alone and the blend (with weights
/// chosen on the training part only), on each user's held-out last order —
/// or on at most `max_users` of them, spread evenly over the users, so a
/// build at scale is not dominated by its own evaluation.
pub fn evaluate(
    data: &Dataset,
    k: usize,
    max_users: Option<usize>,
) -> (Vec<(&'static str, MethodReport)>, Weights) {
    let run = run(data, k, max_users, None, false);
    (run.reports, run.weights)
}

/// What a build of the served pipeline produced: the gate's figures, the
/// weights (searched or reused), and the model on all the data.
pub struct Pipeline {
    pub reports: Vec<(&'static str, MethodReport)>,
    pub weights: Weights,
    /// Whether the weights were searched in this build (else reused).
    pub searched: bool,
    pub model: Model,
}

/// The served pipeline: the evaluation of [`evaluate`] and then the model
/// on all of `data`, built together. With `reuse`, those weights are
/// evaluated instead of searching afresh (the search costs a third model
/// and a pass over the validation users). The models of the validation
/// split, the training split and all the data share their content matrix
/// and graph topology, and each is dropped as soon as it has served.
pub fn build_served(
    data: &Dataset,
    k: usize,
    max_users: Option<usize>,
    reuse: Option<Weights>,
) -> Pipeline {
    let run = run(data, k, max_users, reuse, true);
    Pipeline {
        reports: run.reports,
        weights: run.weights,
        searched: reuse.is_none(),
        model: run.model.unwrap_or_else(|| Model::build(data, run.weights)),
    }
}

struct Run {
    reports: Vec<(&'static str, MethodReport)>,
    weights: Weights,
    model: Option<Model>,
}

fn run(
    data: &Dataset,
    k: usize,
    max_users: Option<usize>,
    reuse: Option<Weights>,
    serve: bool,
) -> Run {
    // Levels: with a search, 0 = fit, 1 = validation, 2 = test; without,
    // 0 = train, 1 = test. The served model trains on every level.
    let rounds: u8 = if reuse.is_some() { 1 } else { 2 };
    let levels = data.hold_out_levels(rounds);
    let test = sample(data.orders_at(&levels, rounds), max_users);
    let count = usize::from(rounds) + usize::from(serve);
    let placeholder = reuse.unwrap_or(Weights::only(Method::Popularity));
    let mut models = Model::build_nested(data, &levels, count, placeholder).into_iter();
    let started = Instant::now();
    let weights = match reuse {
        Some(w) => w,
        None => match models.next() {
            Some(fit) => search_on(&fit, data.orders_at(&levels, 1), k, max_users),
            None => Weights::only(Method::Popularity),
        },
    };
    let choose_secs = started.elapsed().as_secs_f64();
    let Some(mut train) = models.next() else {
        return Run {
            reports: Vec::new(),
            weights,
            model: None,
        };
    };
    train.weights = weights;
    let prepared = prepare(&train, &test);
    drop(train);
    let mut reports = Vec::new();
    for (m, method) in METHODS.iter().enumerate() {
        let started = Instant::now();
        // This signal in its own slot, the others silent.
        let scores = score(&prepared, &Weights::only(*method), k);
        reports.push((
            method.as_str(),
            MethodReport {
                scores,
                seconds: prepared.seconds[m] + started.elapsed().as_secs_f64(),
            },
        ));
    }
    let started = Instant::now();
    // The same ranking as each signal's: availability is a serving
    // filter, not a quality of the model.
    let scores = score(&prepared, &weights, k);
    reports.push((
        "blend",
        MethodReport {
            scores,
            seconds: prepared.seconds.iter().sum::<f64>()
                + started.elapsed().as_secs_f64()
                + choose_secs,
        },
    ));
    let model = models.next().map(|mut m| {
        m.weights = weights;
        m
    });
    Run {
        reports,
        weights,
        model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tastes: users of taste A buy items 0..5 with companion pairs,
    /// users of taste B items 5..10; item 10 is bought by everyone once.
    fn planted() -> Dataset {
        let mut d = Dataset::new();
        for i in 0..11 {
            d.item(&format!("i{i}"));
        }
        for u in 0..40 {
            let user = d.user(&format!("u{u}"));
            let base = if u % 2 == 0 { 0 } else { 5 };
            d.orders.push(Order {
                user,
                seq: 1.0,
                items: vec![10],
            });
            for n in 0..3 {
                let a = base + (u + n) % 5;
                let b = base + (u + n + 1) % 5;
                d.orders.push(Order {
                    user,
                    seq: 2.0 + n as f64,
                    items: vec![a, b],
                });
            }
        }
        d
    }

    #[test]
    fn the_blend_beats_popularity_on_planted_tastes() {
        let (reports, _) = evaluate(&planted(), 3, None);
        let get = |name: &str| {
            reports
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| r.scores.recall)
                .unwrap_or(0.0)
        };
        assert!(get("blend") > 2.0 * get("popularity"), "{reports:?}");
        assert!(reports.iter().all(|(_, r)| r.scores.users == 40));
    }

    #[test]
    fn a_capped_evaluation_spreads_its_users_evenly() {
        let (reports, _) = evaluate(&planted(), 3, Some(10));
        assert!(
            reports.iter().all(|(_, r)| r.scores.users == 10),
            "{reports:?}"
        );
        let held: Vec<Order> = (0..7)
            .map(|u| Order {
                user: u,
                seq: 1.0,
                items: vec![],
            })
            .collect();
        let users = |max| {
            sample(held.clone(), max)
                .iter()
                .map(|o| o.user)
                .collect::<Vec<_>>()
        };
        assert_eq!(users(Some(3)), vec![0, 3, 6]);
        assert_eq!(users(None).len(), 7);
    }

    proptest::proptest! {
        /// Scoring from the table ranks exactly as the served blend does.
        #[test]
        fn the_table_ranks_as_the_blend(
            signals in proptest::collection::vec(
                proptest::collection::vec((0usize..30, 0.01f32..1.0), 0..12),
                SIGNALS,
            ),
            weights in proptest::array::uniform6(proptest::sample::select(vec![0.0f32, 0.25, 0.5, 1.0])),
            k in 1usize..12,
        ) {
            // A signal proposes each item once.
            let signals: Vec<Vec<(usize, f32)>> = signals
                .into_iter()
                .map(|mut s| {
                    s.sort_by_key(|(i, _)| *i);
                    s.dedup_by_key(|(i, _)| *i);
                    s
                })
                .collect();
            let mut table: Vec<(usize, [f32; SIGNALS])> = Vec::new();
            for item in 0..30 {
                let mut parts = [0.0; SIGNALS];
                for (m, s) in signals.iter().enumerate() {
                    if let Some((_, v)) = s.iter().find(|(i, _)| *i == item) {
                        parts[m] = *v;
                    }
                }
                if parts.iter().any(|p| *p > 0.0) {
                    table.push((item, parts));
                }
            }
            let w = Weights(weights);
            let expected: Vec<usize> = super::super::model::blend(&signals, &w, k, |_| false)
                .iter()
                .map(|s| s.item)
                .collect();
            proptest::prop_assert_eq!(ranked(&table, &w, k), expected);
        }
    }

    #[test]
    fn the_weight_search_climbs_to_the_best_blend() {
        // Recall peaks at popularity 0.25 with item cosine 1.
        let target = [0.25, 0.0, 1.0, 0.0, 0.0, 0.0];
        let recall = |w: &Weights| {
            -w.0.iter()
                .zip(target)
                .map(|(a, b)| (a - b).abs() as f64)
                .sum::<f64>()
        };
        assert_eq!(search(recall).0, target);
    }
}
