//! The model: every signal built from one dataset, and the ranking that
//! blends them. Built off the async threads and never mutated while served
//! (the actor swaps whole models).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::data::{Dataset, Order};
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
    CategoryPopularity,
}

/// How many signals there are.
pub const SIGNALS: usize = 6;

/// Every signal.
pub const METHODS: [Method; SIGNALS] = [
    Method::Popularity,
    Method::BuyAgain,
    Method::ItemCosine,
    Method::CoPurchase,
    Method::GraphWalk,
    Method::CategoryPopularity,
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
            Method::CategoryPopularity => "category_popularity",
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
            Method::CategoryPopularity => "popular in categories you shop in",
        }
    }
}

/// Blend weights, one per signal, in [`METHODS`] order.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Weights(pub [f32; SIGNALS]);

impl Weights {
    /// Only `method`.
    pub fn only(method: Method) -> Self {
        let mut w = [0.0; SIGNALS];
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
    /// Shared by the models of one build's nested subsets: features do
    /// not depend on which orders are trained on.
    pub content: Option<Arc<ContentVectors>>,
    collaborative: CollaborativeVectors,
    pub graph: CoPurchase,
    /// Items by (recency-weighted) purchase count, most bought first,
    /// scaled to 1.
    popular: Vec<(usize, f32)>,
    /// The same within each category (the deepest of each item), best
    /// [`CANDIDATES`] each.
    popular_in: Vec<Vec<(usize, f32)>>,
    /// Each item's category index in `popular_in`, if it has one.
    category_of: Vec<Option<usize>>,
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

/// A user's weighted history brought up to date between builds: `base`
/// (the model's) aged by one order per recent order, plus `recent` (newest
/// first), the newest weighing 1, as [`weighted`] would have it after a
/// rebuild.
pub fn with_recent(base: &[(usize, f32)], recent: &[Vec<usize>]) -> Vec<(usize, f32)> {
    let mut weights: HashMap<usize, f32> = HashMap::new();
    let age = DECAY.powi(i32::try_from(recent.len()).unwrap_or(i32::MAX));
    for &(item, w) in base {
        *weights.entry(item).or_default() += w * age;
    }
    for (rank, items) in recent.iter().enumerate() {
        let w = DECAY.powi(i32::try_from(rank).unwrap_or(i32::MAX));
        for &item in items {
            *weights.entry(item).or_default() += w;
        }
    }
    let mut out: Vec<(usize, f32)> = weights.into_iter().collect();
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
    scaled(v)
}

/// Ranked scores scaled so the first (the best) is 1.
fn scaled(mut v: Vec<(usize, f32)>) -> Vec<(usize, f32)> {
    if let Some(&(_, best)) = v.first() {
        for entry in &mut v {
            entry.1 /= best;
        }
    }
    v
}

/// Purchase counts per item. When the dataset's `seq` is a clock with a
/// popularity half-life, an order's lines count `0.5^(age / half_life)`,
/// age measured from the newest order, so popularity is recent; otherwise
/// (e.g. per-user order numbers) every line counts 1.
pub fn popularity_counts(data: &Dataset) -> Vec<f32> {
    popularity_of(data, data.orders.iter())
}

/// [`popularity_counts`] over some of `data`'s orders.
fn popularity_of<'a>(data: &Dataset, orders: impl Iterator<Item = &'a Order> + Clone) -> Vec<f32> {
    let mut counts = vec![0f32; data.item_ids.len()];
    let newest = orders
        .clone()
        .map(|o| o.seq)
        .fold(f64::NEG_INFINITY, f64::max);
    for o in orders {
        let w = match data.popularity_half_life {
            Some(half) if half > 0.0 => 0.5f64.powf((newest - o.seq).max(0.0) / half) as f32,
            _ => 1.0,
        };
        for &i in &o.items {
            counts[i] += w;
        }
    }
    counts
}

/// Each item's deepest category token (the heaviest `cat:` feature), as a
/// dense index, and how many categories there are.
fn deepest_categories(data: &Dataset) -> (Vec<Option<usize>>, usize) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let of = data
        .features
        .iter()
        .map(|f| {
            let (token, _) = f
                .iter()
                .filter(|(t, _)| t.starts_with("cat:"))
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            let next = index.len();
            Some(*index.entry(token.as_str()).or_insert(next))
        })
        .collect();
    (of, index.len())
}

impl Model {
    /// Builds every signal from `data`'s orders and features.
    pub fn build(data: &Dataset, weights: Weights) -> Self {
        let content = data
            .has_features()
            .then(|| Arc::new(ContentVectors::build(&data.features)));
        let graph = CoPurchase::build(&data.orders);
        Self::of_level(data, &[], 0, graph, content, weights)
    }

    /// The models of `count` nested subsets of `data`'s orders — the k-th
    /// trained on the orders whose level (in `levels`) is at most k, as
    /// [`Dataset::hold_out_levels`] marks them — built together: they share
    /// the content matrix and the graph's topology, so an evaluation's
    /// training models and the served one cost little more than one.
    pub fn build_nested(
        data: &Dataset,
        levels: &[u8],
        count: usize,
        weights: Weights,
    ) -> Vec<Self> {
        let content = data
            .has_features()
            .then(|| Arc::new(ContentVectors::build(&data.features)));
        CoPurchase::build_nested(&data.orders, levels, count)
            .into_iter()
            .enumerate()
            .map(|(level, graph)| {
                Self::of_level(data, levels, level, graph, content.clone(), weights)
            })
            .collect()
    }

    /// Every signal but the graph's from the orders of level at most
    /// `level`.
    fn of_level(
        data: &Dataset,
        levels: &[u8],
        level: usize,
        graph: CoPurchase,
        content: Option<Arc<ContentVectors>>,
        weights: Weights,
    ) -> Self {
        let items = data.item_ids.len();
        let orders = data
            .orders
            .iter()
            .enumerate()
            .filter(move |(i, _)| usize::from(levels.get(*i).copied().unwrap_or(0)) <= level)
            .map(|(_, o)| o);
        let mut raw: Vec<Vec<(usize, f64)>> = vec![Vec::new(); data.user_ids.len()];
        for o in orders.clone() {
            for &i in &o.items {
                raw[o.user].push((i, o.seq));
            }
        }
        let histories: Vec<Vec<(usize, f32)>> = raw.iter().map(|h| weighted(h)).collect();
        drop(raw);
        let counts = popularity_of(data, orders);
        let (category_of, categories) = deepest_categories(data);
        let mut by_category: Vec<Vec<(usize, f32)>> = vec![Vec::new(); categories];
        for (item, count) in counts.iter().enumerate() {
            if let Some(c) = category_of[item] {
                by_category[c].push((item, *count));
            }
        }
        Self {
            popular_in: by_category
                .into_iter()
                .map(|c| top(c, CANDIDATES))
                .collect(),
            category_of,
            items,
            content,
            collaborative: CollaborativeVectors::build(items, &histories),
            graph,
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
                Some(content) => scaled(content.best(&content.profile(history), CANDIDATES)),
                None => top(self.collaborative.scores(history), CANDIDATES),
            },
            Method::CoPurchase => top(self.graph.scores(history), CANDIDATES),
            Method::GraphWalk => top(self.graph.walk(history), CANDIDATES),
            Method::CategoryPopularity => {
                let mut share: HashMap<usize, f32> = HashMap::new();
                for &(item, w) in history {
                    if let Some(Some(c)) = self.category_of.get(item) {
                        *share.entry(*c).or_default() += w;
                    }
                }
                let mut scores: HashMap<usize, f32> = HashMap::new();
                for (c, w) in share {
                    for &(item, p) in &self.popular_in[c] {
                        *scores.entry(item).or_default() += w * p;
                    }
                }
                top(scores, CANDIDATES)
            }
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
    let mut total: HashMap<usize, (f32, [f32; SIGNALS])> = HashMap::new();
    for (m, candidates) in signals.iter().enumerate() {
        let w = weights.0[m];
        if w == 0.0 {
            continue;
        }
        for &(item, s) in candidates {
            let entry = total.entry(item).or_insert((0.0, [0.0; SIGNALS]));
            entry.0 += w * s;
            entry.1[m] += w * s;
        }
    }
    let mut ranked: Vec<Scored> = total
        .into_iter()
        .filter(|(item, _)| !skip(*item))
        .map(|(item, (score, parts))| {
            let best = (0..SIGNALS)
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
    use proptest::prelude::*;

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
        let model = Model::build(&data, Weights([0.2, 0.0, 0.5, 1.0, 0.5, 0.0]));
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
    fn recent_orders_age_the_built_history_as_a_rebuild_would() {
        // Built from orders at seq 1 (item 0) and 2 (item 1); then item 2.
        let built = weighted(&[(0, 1.0), (1, 2.0)]);
        let rebuilt = weighted(&[(0, 1.0), (1, 2.0), (2, 3.0)]);
        let fresh = with_recent(&built, &[vec![2]]);
        for ((a, x), (b, y)) in fresh.iter().zip(&rebuilt) {
            assert_eq!(a, b);
            assert!((x - y).abs() < 1e-6, "{fresh:?} vs {rebuilt:?}");
        }
        assert_eq!(with_recent(&[], &[]), vec![]);
    }

    #[test]
    fn popularity_is_recent_when_seq_is_a_clock() {
        let mut data = shop();
        // Item 2 sold once, last; items 0 and 1 twice, long before.
        data.orders[2].seq = 100.0;
        assert_eq!(popularity_counts(&data)[..3], [2.0, 2.0, 1.0]);
        data.popularity_half_life = Some(10.0);
        let counts = popularity_counts(&data);
        assert!(counts[2] > counts[0], "{counts:?}");
        assert!((counts[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn category_popularity_follows_the_categories_bought_from() {
        let mut data = shop();
        // tent and bag are camping; stove and mug kitchen.
        for (item, cat) in [(0, "camp"), (1, "camp"), (2, "kitchen"), (3, "kitchen")] {
            data.features[item] = vec![("cat:home".into(), 1.0), (format!("cat:home/{cat}"), 2.0)];
        }
        let model = Model::build(&data, Weights::only(Method::CategoryPopularity));
        // Bought the mug: the stove (kitchen, sold once) ranks first,
        // though the tent sold more.
        let recs = model.recommend(&[(3, 1.0)], 1, &[3].into_iter().collect());
        assert_eq!(recs[0].item, 2);
        assert_eq!(recs[0].because, Method::CategoryPopularity);
        // Without features there is no category to follow.
        let plain = Model::build(&shop(), Weights::only(Method::CategoryPopularity));
        assert!(plain
            .signal(Method::CategoryPopularity, &[(3, 1.0)])
            .is_empty());
    }

    proptest! {
        /// The pruned content search ranks exactly as scoring every item
        /// and taking the top: same items, order and scores, to the bit.
        #[test]
        fn item_cosine_ranks_as_the_full_scan(
            tokens in proptest::collection::vec(
                proptest::collection::vec((0usize..12, 1u8..4), 0..6),
                1..700,
            ),
            history in proptest::collection::vec((0usize..700, 1u8..5), 0..12),
        ) {
            let mut data = Dataset::new();
            for (i, item) in tokens.iter().enumerate() {
                let id = data.item(&format!("p{i}"));
                // Few tokens and weights: many equal scores, so ties by
                // index are exercised across blocks.
                data.features[id] = item
                    .iter()
                    .map(|(t, w)| (format!("t{t}"), f32::from(*w)))
                    .collect();
            }
            let model = Model::build(&data, Weights::only(Method::ItemCosine));
            let history: Vec<(usize, f32)> = history
                .iter()
                .map(|(i, w)| (i % tokens.len(), 0.8f32.powi(i32::from(*w))))
                .collect();
            let Some(content) = &model.content else {
                return Ok(());
            };
            let full = content.scores(&content.profile(&history));
            for n in [1, 7, CANDIDATES] {
                let brute = top(full.iter().copied().enumerate(), n);
                let pruned = scaled(content.best(&content.profile(&history), n));
                prop_assert_eq!(&pruned, &brute);
            }
            prop_assert_eq!(
                model.signal(Method::ItemCosine, &history),
                top(full.iter().copied().enumerate(), CANDIDATES)
            );
        }
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
