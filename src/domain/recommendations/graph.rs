//! The co-purchase graph: items bought in the same order are joined with
//! weight 1, items in consecutive orders of one user with weight 0.5.
//! "Bought together" reads a node's strongest edges; personal
//! recommendations walk the graph (personalised PageRank) from the items a
//! user bought.
//!
//! The topology is a `petgraph` compressed-sparse-row graph (`Csr`), built
//! in one pass from sorted edges: at the scale (12 million edges) a
//! `GraphMap` cost a hash-map entry per edge while building and was then
//! flattened anyway, so it held every edge twice. The gate's evaluation
//! trains on nested subsets of the same orders (fit ⊂ train ⊂ all), so one
//! topology — the union — is built once and shared; each subset has only
//! its own weight column, zero where an edge is not in that subset.

use std::sync::Arc;

use petgraph::csr::Csr;
use petgraph::Directed;

use super::data::Order;

/// Weight of two items in one order.
pub const SAME_ORDER: f32 = 1.0;
/// Weight of two items in consecutive orders of one user.
pub const SAME_USER: f32 = 0.5;
/// Weights are summed in half units (exact in integers), then scaled.
const SAME_ORDER_HALVES: u32 = 2;
const SAME_USER_HALVES: u32 = 1;
/// Items of a basket considered for pairs (bounds the quadratic cost).
const MAX_BASKET: usize = 40;
/// Restart probability of the walk.
const RESTART: f32 = 0.15;
/// Walk iterations.
const WALK_STEPS: usize = 3;
/// Nodes kept with mass after each step (bounds a walk's cost).
const WALK_FRONTIER: usize = 300;
/// Nested subsets one build can share a topology between.
pub const MAX_LEVELS: usize = 4;

/// Both directions of every edge, sorted by (source, target); shared by the
/// graphs of nested subsets.
#[derive(Debug, Default)]
struct Topology {
    graph: Csr<(), (), Directed, u32>,
    /// Where each node's edges start in the weight columns (nodes + 1).
    offsets: Vec<usize>,
}

/// The co-purchase graph of one set of orders: a shared topology and this
/// set's weights, with each node's strength (the sum of its weights).
#[derive(Debug, Clone, Default)]
pub struct CoPurchase {
    topology: Arc<Topology>,
    /// Lock step with the topology's edges; 0 where the edge is not in
    /// this set.
    weights: Vec<f32>,
    /// Per node; 0 for a node without edges in this set.
    strength: Vec<f32>,
    edges: usize,
}

/// Calls `f(a, b, level, halves)` once per pair an order or two consecutive
/// orders of a user make (either direction once, `a != b`). A pair's level
/// is the highest of its orders'.
fn for_each_pair(orders: &[Order], levels: &[u8], mut f: impl FnMut(u32, u32, u8, u32)) {
    let level = |i: usize| levels.get(i).copied().unwrap_or(0);
    let mut by_user: Vec<Vec<usize>> = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        let basket = &o.items[..o.items.len().min(MAX_BASKET)];
        for (x, &a) in basket.iter().enumerate() {
            for &b in &basket[x + 1..] {
                if a != b {
                    f(a as u32, b as u32, level(i), SAME_ORDER_HALVES);
                }
            }
        }
        if by_user.len() <= o.user {
            by_user.resize_with(o.user + 1, Vec::new);
        }
        by_user[o.user].push(i);
    }
    for mut mine in by_user {
        // By time; among orders of the same time, held-out ones last, so
        // that every subset is a prefix of each user's orders.
        mine.sort_by(|&x, &y| {
            orders[x]
                .seq
                .total_cmp(&orders[y].seq)
                .then(level(x).cmp(&level(y)))
        });
        for pair in mine.windows(2) {
            let (p, q) = (&orders[pair[0]], &orders[pair[1]]);
            let l = level(pair[0]).max(level(pair[1]));
            for &a in p.items.iter().take(MAX_BASKET) {
                for &b in q.items.iter().take(MAX_BASKET) {
                    if a != b {
                        f(a as u32, b as u32, l, SAME_USER_HALVES);
                    }
                }
            }
        }
    }
}

impl CoPurchase {
    /// Builds the graph from orders (any order; consecutive means by `seq`
    /// within a user).
    pub fn build(orders: &[Order]) -> Self {
        Self::build_nested(orders, &[], 1).pop().unwrap_or_default()
    }

    /// The graphs of `count` nested subsets of `orders`, sharing one
    /// topology: the k-th holds the orders whose level (in `levels`,
    /// missing = 0) is at most k. Each user's orders of a higher level must
    /// be their latest (as held-out orders are), so a subset's consecutive
    /// orders are consecutive in the whole. `count` is capped at
    /// [`MAX_LEVELS`].
    pub fn build_nested(orders: &[Order], levels: &[u8], count: usize) -> Vec<Self> {
        let count = count.clamp(1, MAX_LEVELS);
        // Pairs from a level at or above `count` belong to no subset.
        let counted = |l: u8| usize::from(l) < count;
        // Counting sort by source: first each node's number of raw pairs,
        // then the pairs themselves in one flat array (no per-edge map).
        let mut offsets: Vec<usize> = Vec::new();
        for_each_pair(orders, levels, |a, b, l, _| {
            if counted(l) {
                let top = a.max(b) as usize + 2;
                if offsets.len() < top {
                    offsets.resize(top, 0);
                }
                offsets[a as usize + 1] += 1;
                offsets[b as usize + 1] += 1;
            }
        });
        for n in 1..offsets.len() {
            offsets[n] += offsets[n - 1];
        }
        let nodes = offsets.len().saturating_sub(1);
        let mut cursor = offsets.clone();
        // (target, level << 8 | halves), sorted per source below.
        let mut raw: Vec<(u32, u32)> = vec![(0, 0); offsets.last().copied().unwrap_or(0)];
        for_each_pair(orders, levels, |a, b, l, halves| {
            if counted(l) {
                let packed = u32::from(l) << 8 | halves;
                raw[cursor[a as usize]] = (b, packed);
                cursor[a as usize] += 1;
                raw[cursor[b as usize]] = (a, packed);
                cursor[b as usize] += 1;
            }
        });
        drop(cursor);
        // Merge each node's duplicates in place: the array becomes the
        // sorted (source, target) list the CSR is built from, and each
        // level gets its cumulative weight.
        let mut weights: Vec<Vec<f32>> = vec![Vec::new(); count];
        let mut starts = Vec::with_capacity(nodes + 1);
        let mut write = 0;
        for node in 0..nodes {
            starts.push(write);
            let (from, to) = (offsets[node], offsets[node + 1]);
            raw[from..to].sort_unstable();
            let mut read = from;
            while read < to {
                let target = raw[read].0;
                let mut halves = [0u32; MAX_LEVELS];
                while read < to && raw[read].0 == target {
                    let packed = raw[read].1;
                    halves[(packed >> 8) as usize] += packed & 0xff;
                    read += 1;
                }
                let mut sum = 0;
                for (level, column) in weights.iter_mut().enumerate() {
                    sum += halves[level];
                    column.push(sum as f32 * 0.5);
                }
                // `write` never passes the pairs still to be read.
                raw[write] = (node as u32, target);
                write += 1;
            }
        }
        starts.push(write);
        raw.truncate(write);
        let graph = Csr::from_sorted_edges(&raw).unwrap_or_default();
        drop(raw);
        let topology = Arc::new(Topology {
            graph,
            offsets: starts,
        });
        weights
            .into_iter()
            .map(|mut weights| {
                weights.shrink_to_fit();
                let strength: Vec<f32> = (0..nodes)
                    .map(|n| {
                        weights[topology.offsets[n]..topology.offsets[n + 1]]
                            .iter()
                            .sum()
                    })
                    .collect();
                let edges = weights.iter().filter(|w| **w > 0.0).count() / 2;
                Self {
                    topology: Arc::clone(&topology),
                    weights,
                    strength,
                    edges,
                }
            })
            .collect()
    }

    /// `node`'s neighbours and their weights in this set (zero where the
    /// edge belongs to a larger set only).
    fn edges_of(&self, node: u32) -> impl Iterator<Item = (u32, f32)> + '_ {
        let n = node as usize;
        let t = &self.topology;
        let (targets, weights): (&[u32], &[f32]) = if n + 1 < t.offsets.len() {
            (
                t.graph.neighbors_slice(node),
                &self.weights[t.offsets[n]..t.offsets[n + 1]],
            )
        } else {
            (&[], &[])
        };
        targets
            .iter()
            .zip(weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(t, w)| (*t, *w))
    }

    fn strength_of(&self, node: u32) -> f32 {
        self.strength.get(node as usize).copied().unwrap_or(0.0)
    }

    /// Edges in the graph.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    /// The weight of the edge between `a` and `b`, if any.
    pub fn weight(&self, a: usize, b: usize) -> Option<f32> {
        self.edges_of(a as u32)
            .find(|(other, _)| *other as usize == b)
            .map(|(_, w)| w)
    }

    /// The neighbours of `item`, strongest first (ties by index).
    pub fn neighbours(&self, item: usize) -> Vec<(usize, f32)> {
        let mut n: Vec<(usize, f32)> = self
            .edges_of(item as u32)
            .map(|(other, w)| (other as usize, w))
            .collect();
        n.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        n
    }

    /// Nodes the graph knows (the largest item with an edge, plus one).
    fn nodes(&self) -> usize {
        self.strength.len()
    }

    /// `Σ_j w_j · weight(j, i) / strength(j)` over the weighted history,
    /// by item.
    pub fn scores(&self, history: &[(usize, f32)]) -> Vec<(usize, f32)> {
        let mut sums = Dense::new(self.nodes());
        for &(j, w) in history {
            let node = j as u32;
            let s = self.strength_of(node);
            if s <= 0.0 {
                continue;
            }
            for (other, weight) in self.edges_of(node) {
                sums.add(other, w * weight / s);
            }
        }
        let mut out: Vec<(usize, f32)> = sums.drain().map(|(n, s)| (n as usize, s)).collect();
        out.sort_unstable_by_key(|(n, _)| *n);
        out
    }

    /// Personalised PageRank from the weighted history: a few steps of
    /// "follow an edge by weight, or restart at the user's items", keeping
    /// the heaviest nodes each step. Mass is spread from nodes in id order,
    /// so that sums are made in the same order every time and a model
    /// answers the same, bit for bit.
    pub fn walk(&self, history: &[(usize, f32)]) -> Vec<(usize, f32)> {
        let total: f32 = history.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return Vec::new();
        }
        let mut restart: Vec<(u32, f32)> = Vec::new();
        for &(i, w) in history {
            restart.push((i as u32, w / total));
        }
        restart.sort_by_key(|(n, _)| *n);
        let mut mass = restart.clone();
        // One dense accumulator for every step: a step touches tens of
        // thousands of nodes at scale, and hashing each was most of a
        // walk's time.
        let size = restart
            .iter()
            .map(|(n, _)| *n as usize + 1)
            .max()
            .unwrap_or(0)
            .max(self.nodes());
        let mut next = Dense::new(size);
        for _ in 0..WALK_STEPS {
            for &(n, p) in &restart {
                next.add(n, RESTART * p);
            }
            for &(node, m) in &mass {
                let s = self.strength_of(node);
                if s <= 0.0 {
                    // A dead end returns its mass to the restart set.
                    for &(r, p) in &restart {
                        next.add(r, (1.0 - RESTART) * m * p);
                    }
                    continue;
                }
                for (other, w) in self.edges_of(node) {
                    next.add(other, (1.0 - RESTART) * m * w / s);
                }
            }
            let mut heavy: Vec<(u32, f32)> = next.drain().collect();
            if heavy.len() > WALK_FRONTIER {
                heavy.select_nth_unstable_by(WALK_FRONTIER, |a, b| {
                    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                });
                heavy.truncate(WALK_FRONTIER);
            }
            heavy.sort_by_key(|(n, _)| *n);
            mass = heavy;
        }
        mass.into_iter().map(|(n, m)| (n as usize, m)).collect()
    }
}

/// Sums by node in a dense array, remembering which nodes were touched so
/// that draining costs what was added, not the array's length.
struct Dense {
    sums: Vec<f32>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl Dense {
    fn new(size: usize) -> Self {
        Self {
            sums: vec![0.0; size],
            seen: vec![false; size],
            touched: Vec::new(),
        }
    }

    fn add(&mut self, node: u32, value: f32) {
        let n = node as usize;
        if !self.seen[n] {
            self.seen[n] = true;
            self.touched.push(node);
        }
        self.sums[n] += value;
    }

    /// Every touched node and its sum, leaving the array empty again.
    fn drain(&mut self) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (sums, seen) = (&mut self.sums, &mut self.seen);
        self.touched.drain(..).map(move |node| {
            let n = node as usize;
            seen[n] = false;
            (node, std::mem::take(&mut sums[n]))
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn order(user: usize, seq: f64, items: &[usize]) -> Order {
        Order {
            user,
            seq,
            items: items.to_vec(),
        }
    }

    #[test]
    fn edges_weigh_same_order_over_same_user() {
        let g = CoPurchase::build(&[
            order(0, 1.0, &[0, 1]),
            order(0, 2.0, &[2]),
            order(1, 1.0, &[0, 1]),
        ]);
        assert_eq!(g.weight(0, 1), Some(2.0));
        // Consecutive orders of user 0: {0,1} then {2}.
        assert_eq!(g.weight(0, 2), Some(SAME_USER));
        assert_eq!(g.weight(1, 2), Some(SAME_USER));
        assert_eq!(g.edge_count(), 3);
        assert_eq!(g.neighbours(0), vec![(1, 2.0), (2, 0.5)]);
        assert_eq!(g.weight(7, 0), None);
        assert!(CoPurchase::build(&[]).neighbours(0).is_empty());
    }

    #[test]
    fn scores_follow_edge_weights_and_the_walk_conserves_mass() {
        let g = CoPurchase::build(&[
            order(0, 1.0, &[0, 1]),
            order(1, 1.0, &[0, 1]),
            order(2, 1.0, &[0, 2]),
        ]);
        let s = g.scores(&[(0, 1.0)]);
        // strength(0) = 2 + 1.
        assert_eq!(s.len(), 2);
        assert!((s[0].1 - 2.0 / 3.0).abs() < 1e-6 && s[0].0 == 1);
        assert!((s[1].1 - 1.0 / 3.0).abs() < 1e-6 && s[1].0 == 2);
        let walk = g.walk(&[(0, 1.0)]);
        let total: f32 = walk.iter().map(|(_, m)| m).sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        let of = |i| walk.iter().find(|(n, _)| *n == i).map_or(0.0, |(_, m)| *m);
        assert!(of(1) > of(2));
        assert!(g.walk(&[]).is_empty());
    }

    #[test]
    fn a_held_out_order_is_absent_from_the_smaller_graph_only() {
        // User 0's last order (level 1) is held out.
        let orders = [order(0, 1.0, &[0, 1]), order(0, 2.0, &[2, 3])];
        let graphs = CoPurchase::build_nested(&orders, &[0, 1], 2);
        assert_eq!(graphs[0].edge_count(), 1);
        assert_eq!(graphs[0].weight(2, 3), None);
        assert_eq!(graphs[0].neighbours(0), vec![(1, 1.0)]);
        assert_eq!(graphs[1].edge_count(), 6);
        assert_eq!(graphs[1].weight(1, 3), Some(SAME_USER));
        // Item 2 has edges only in the larger set: a dead end in the
        // smaller one, whose walk gives the mass back to the restart.
        assert!(graphs[0].scores(&[(2, 1.0)]).is_empty());
        assert_eq!(graphs[0].walk(&[(2, 1.0)]), vec![(2, 1.0)]);
    }

    fn orders_strategy() -> impl Strategy<Value = Vec<(usize, Vec<usize>, u8)>> {
        prop::collection::vec(
            (0usize..4, prop::collection::vec(0usize..8, 0..5), 0u8..3),
            0..12,
        )
    }

    proptest! {
        /// Each nested graph has exactly the edges, weights and strengths
        /// of a graph built from its subset alone.
        #[test]
        fn nested_graphs_equal_graphs_built_from_each_subset(spec in orders_strategy()) {
            // Distinct times; a user's higher levels are their latest
            // orders, as hold-outs are.
            let mut orders: Vec<Order> = Vec::new();
            let mut levels = Vec::new();
            let mut sorted = spec.clone();
            sorted.sort_by_key(|(_, _, l)| *l);
            for (n, (user, items, level)) in sorted.into_iter().enumerate() {
                orders.push(order(user, n as f64, &items));
                levels.push(level);
            }
            let nested = CoPurchase::build_nested(&orders, &levels, 3);
            prop_assert_eq!(nested.len(), 3);
            for (k, graph) in nested.iter().enumerate() {
                let subset: Vec<Order> = orders
                    .iter()
                    .zip(&levels)
                    .filter(|(_, l)| usize::from(**l) <= k)
                    .map(|(o, _)| o.clone())
                    .collect();
                let alone = CoPurchase::build(&subset);
                prop_assert_eq!(graph.edge_count(), alone.edge_count());
                for a in 0..8 {
                    prop_assert_eq!(graph.neighbours(a), alone.neighbours(a));
                    prop_assert_eq!(graph.strength_of(a as u32), alone.strength_of(a as u32));
                }
                // Weights add up: the strengths sum to twice every pair's
                // weight, same-order and consecutive-order pairs alike.
                let distinct = |p: &[usize], q: &[usize]| {
                    p.iter().flat_map(|a| q.iter().map(move |b| (a, b))).filter(|(a, b)| a != b).count()
                };
                let mut expected = 0.0f32;
                for o in &subset {
                    expected += (distinct(&o.items, &o.items) / 2) as f32 * SAME_ORDER;
                }
                for user in 0..4 {
                    let mine: Vec<&Order> = subset.iter().filter(|o| o.user == user).collect();
                    for pair in mine.windows(2) {
                        expected += distinct(&pair[0].items, &pair[1].items) as f32 * SAME_USER;
                    }
                }
                let total: f32 = (0..8).map(|a| graph.strength_of(a)).sum();
                prop_assert_eq!(total, 2.0 * expected);
            }
        }
    }
}
