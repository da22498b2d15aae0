//! The model: every signal built from one dataset, and the ranking that
//! blends them. Built off the async threads and never mutated while served
//! (the actor swaps whole models).

use std::collections::{HashMap, HashSet};

use super::data::Dataset;
use super::graph::CoPurchase;
use super::vectors::{CollaborativeVectors, ContentVectors};

/// Each signal, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Popularity,
    BuyAgain,
    ItemCosine,
    CoPurchase,
    GraphWalk,
}

/// Every signal.
pub const METHODS: [Method; 5] = [
    Method::Popularity,
    Method::BuyAgain,
    Method::ItemCosine,
    Method::CoPurchase,
    Method::GraphWalk,
];

impl Method {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Popularity => "popularity",
            Method::BuyAgain => "buy_again",
            Method::ItemCosine => "item_cosine",
            Method::CoPurchase => "co_purchase",
            Method::GraphWalk => "graph_walk",
        }
    }

    /// Why an item is recommended, when this signal weighs most.
    pub fn reason(self) -> &'static str {
        match self {
            Method::Popularity => "popular with other customers",
            Method::BuyAgain => "you bought this before",
            Method::ItemCosine => "similar to what you bought",
            Method::CoPurchase => "often bought with what you bought",
            Method::GraphWalk => "customers who bought what you bought also bought",
        }
    }
}

/// Blend weights, one per signal, in [`METHODS`] order.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Weights(pub [f32; 5]);

impl Weights {
    /// Only `method`.
    pub fn only(method: Method) -> Self {
        let mut w = [0.0; 5];
        w[index(method)] = 1.0;
        Weights(w)
    }
}

fn index(method: Method) -> usize {
    METHODS.iter().position(|m| *m == method).unwrap_or(0)
}

/// Candidates kept per signal before blending.
pub const CANDIDATES: usize = 300;
/// Weight of the k-th most recent order of a user (0-based): `DECAY^k`.
pub const DECAY: f32 = 0.8;

/// One recommended item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub item: usize,
    pub score: f32,
    /// The signal that contributed most.
    pub because: Method,
}

/// Every signal of one dataset.
#[derive(Debug, Clone)]
pub struct Model {
    pub items: usize,
    pub content: Option<ContentVectors>,
    collaborative: CollaborativeVectors,
    pub graph: CoPurchase,
    /// Items by purchase count, most bought first, with counts scaled to 1.
    popular: Vec<(usize, f32)>,
    /// Recency-weighted history of each user.
    pub histories: Vec<Vec<(usize, f32)>>,
    pub weights: Weights,
    /// Whether each item may be recommended.
    pub available: Vec<bool>,
}

/// Recency weights of a raw history: every line of the k-th most recent
/// order weighs `DECAY^k`, summed per item.
pub fn weighted(raw: &[(usize, f64)]) -> Vec<(usize, f32)> {
    let mut seqs: Vec<f64> = raw.iter().map(|(_, s)| *s).collect();
    seqs.sort_by(|a, b| b.total_cmp(a));
    seqs.dedup();
    let mut by_item: HashMap<usize, f32> = HashMap::new();
    for &(item, seq) in raw {
        let rank = seqs.iter().position(|s| *s == seq).unwrap_or(0);
        *by_item.entry(item).or_default() += DECAY.powi(i32::try_from(rank).unwrap_or(i32::MAX));
    }
    let mut out: Vec<(usize, f32)> = by_item.into_iter().collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

/// The `n` best of `scores`, best first, ties by item index, scaled so the
/// best is 1.
fn top(scores: impl IntoIterator<Item = (usize, f32)>, n: usize) -> Vec<(usize, f32)> {
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut v: Vec<(usize, f32)> = scores.into_iter().filter(|(_, s)| *s > 0.0).collect();
    // Select the best n first: sorting 100k scores to keep 300 is waste.
    if v.len() > n {
        v.select_nth_unstable_by(n, order);
        v.truncate(n);
    }
    v.sort_by(order);
    if let Some(&(_, best)) = v.first() {
        for entry in &mut v {
            entry.1 /= best;
        }
    }
    v
}

impl Model {
    /// Builds every signal from `data`'s orders and features.
    pub fn build(data: &Dataset, weights: Weights) -> Self {
        let items = data.item_ids.len();
        let histories: Vec<Vec<(usize, f32)>> =
            data.histories().iter().map(|h| weighted(h)).collect();
        let mut counts = vec![0f32; items];
        for o in &data.orders {
            for &i in &o.items {
                counts[i] += 1.0;
            }
        }
        Self {
            items,
            content: data
                .has_features()
                .then(|| ContentVectors::build(&data.features)),
            collaborative: CollaborativeVectors::build(items, &histories),
            graph: CoPurchase::build(&data.orders),
            popular: top(counts.into_iter().enumerate(), items),
            histories,
            weights,
            available: data.available.clone(),
        }
    }

    /// One signal's best candidates for a weighted history, scaled to 1.
    pub fn signal(&self, method: Method, history: &[(usize, f32)]) -> Vec<(usize, f32)> {
        match method {
            Method::Popularity => self.popular.iter().take(CANDIDATES).copied().collect(),
            Method::BuyAgain => top(history.iter().copied(), CANDIDATES),
            Method::ItemCosine => match &self.content {
                Some(content) => {
                    let scores = content.scores(&content.profile(history));
                    top(scores.iter().copied().enumerate(), CANDIDATES)
                }
                None => top(self.collaborative.scores(history), CANDIDATES),
            },
            Method::CoPurchase => top(self.graph.scores(history), CANDIDATES),
            Method::GraphWalk => top(self.graph.walk(history), CANDIDATES),
        }
    }

    /// Every signal's candidates, for blending under many weights.
    pub fn signals(&self, history: &[(usize, f32)]) -> Vec<Vec<(usize, f32)>> {
        METHODS.iter().map(|m| self.signal(*m, history)).collect()
    }

    /// The best `k` items for `history`, blended by `self.weights`, leaving
    /// out unavailable items and those `exclude` names. Without a history
    /// (cold start), or when the blend has fewer than `k`, popularity fills
    /// the list.
    pub fn recommend(
        &self,
        history: &[(usize, f32)],
        k: usize,
        exclude: &HashSet<usize>,
    ) -> Vec<Scored> {
        let skip =
            |i: usize| !self.available.get(i).copied().unwrap_or(false) || exclude.contains(&i);
        let weights = if history.is_empty() {
            Weights::only(Method::Popularity)
        } else {
            self.weights
        };
        // Only the signals the blend weighs are computed.
        let signals: Vec<Vec<(usize, f32)>> = METHODS
            .iter()
            .zip(weights.0)
            .map(|(m, w)| {
                if w > 0.0 {
                    self.signal(*m, history)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut out = blend(&signals, &weights, k, skip);
        if out.len() < k {
            let have: HashSet<usize> = out.iter().map(|s| s.item).collect();
            let floor = out.last().map_or(1.0, |s| s.score);
            let fill: Vec<Scored> = self
                .popular
                .iter()
                .filter(|(i, _)| !have.contains(i) && !skip(*i))
                .take(k - out.len())
                .map(|&(item, p)| Scored {
                    item,
                    // Below every blended item, in popularity order.
                    score: floor * 0.5 * p,
                    because: Method::Popularity,
                })
                .collect();
            out.extend(fill);
        }
        out
    }
}

/// Blends precomputed signals with `weights`; the best `k`, ties by index.
pub fn blend(
    signals: &[Vec<(usize, f32)>],
    weights: &Weights,
    k: usize,
    skip: impl Fn(usize) -> bool,
) -> Vec<Scored> {
    let mut total: HashMap<usize, (f32, [f32; 5])> = HashMap::new();
    for (m, candidates) in signals.iter().enumerate() {
        let w = weights.0[m];
        if w == 0.0 {
            continue;
        }
        for &(item, s) in candidates {
            let entry = total.entry(item).or_insert((0.0, [0.0; 5]));
            entry.0 += w * s;
            entry.1[m] += w * s;
        }
    }
    let mut ranked: Vec<Scored> = total
        .into_iter()
        .filter(|(item, _)| !skip(*item))
        .map(|(item, (score, parts))| {
            let best = (0..5)
                .max_by(|a, b| parts[*a].total_cmp(&parts[*b]).then(b.cmp(a)))
                .unwrap_or(0);
            Scored {
                item,
                score,
                because: METHODS[best],
            }
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::super::data::Order;
    use super::*;

    fn shop() -> Dataset {
        let mut d = Dataset::new();
        for u in ["a", "b", "c"] {
            d.user(u);
        }
        for i in ["tent", "bag", "stove", "mug"] {
            d.item(i);
        }
        d.orders = vec![
            Order {
                user: 0,
                seq: 1.0,
                items: vec![0, 1],
            },
            Order {
                user: 1,
                seq: 1.0,
                items: vec![0, 1],
            },
            Order {
                user: 1,
                seq: 2.0,
                items: vec![2],
            },
            Order {
                user: 2,
                seq: 1.0,
                items: vec![3],
            },
        ];
        d
    }

    #[test]
    fn recent_orders_weigh_more() {
        let w = weighted(&[(0, 1.0), (1, 2.0), (1, 1.0)]);
        assert_eq!(w, vec![(0, 0.8), (1, 1.8)]);
    }

    #[test]
    fn the_blend_ranks_deterministically_and_skips_exclusions() {
        let mut data = shop();
        data.available[3] = false;
        let model = Model::build(&data, Weights([0.2, 0.0, 0.5, 1.0, 0.5]));
        let history = model.histories[2].clone(); // bought the mug
        let first = model.recommend(&model.histories[0], 3, &HashSet::new());
        let again = model.recommend(&model.histories[0], 3, &HashSet::new());
        assert_eq!(first, again);
        assert!(
            first.iter().all(|s| s.item != 3),
            "unavailable items never appear"
        );
        let excluded: HashSet<usize> = [0].into_iter().collect();
        assert!(model
            .recommend(&model.histories[0], 3, &excluded)
            .iter()
            .all(|s| s.item != 0));
        // Cold start: only popularity has anything to say.
        let cold = model.recommend(&[], 2, &HashSet::new());
        assert_eq!(cold.iter().map(|s| s.item).collect::<Vec<_>>(), vec![0, 1]);
        assert!(cold.iter().all(|s| s.because == Method::Popularity));
        let _ = history;
    }

    #[test]
    fn co_purchase_recommends_the_companion() {
        let model = Model::build(&shop(), Weights::only(Method::CoPurchase));
        // Someone who bought only the tent gets the bag first.
        let recs = model.recommend(&[(0, 1.0)], 2, &HashSet::new());
        assert_eq!(recs[0].item, 1);
        assert_eq!(recs[0].because, Method::CoPurchase);
    }
}
