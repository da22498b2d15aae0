//! The co-purchase graph (`petgraph`): items bought in the same order are
//! joined with weight 1, items in consecutive orders of one user with
//! weight 0.5. "Bought together" reads a node's strongest edges; personal
//! recommendations walk the graph (personalised PageRank) from the items a
//! user bought.

use std::collections::{BTreeMap, HashMap};

use petgraph::graphmap::UnGraphMap;

use super::data::Order;

/// Weight of two items in one order.
pub const SAME_ORDER: f32 = 1.0;
/// Weight of two items in consecutive orders of one user.
pub const SAME_USER: f32 = 0.5;
/// Items of a basket considered for pairs (bounds the quadratic cost).
const MAX_BASKET: usize = 40;
/// Restart probability of the walk.
const RESTART: f32 = 0.15;
/// Walk iterations.
const WALK_STEPS: usize = 3;
/// Nodes kept with mass after each step (bounds a walk's cost).
const WALK_FRONTIER: usize = 2_000;

/// The co-purchase graph and each node's total edge weight.
#[derive(Debug, Clone, Default)]
pub struct CoPurchase {
    pub graph: UnGraphMap<u32, f32>,
    strength: HashMap<u32, f32>,
}

fn add(graph: &mut UnGraphMap<u32, f32>, a: usize, b: usize, w: f32) {
    if a == b {
        return;
    }
    let (a, b) = (a as u32, b as u32);
    match graph.edge_weight_mut(a, b) {
        Some(weight) => *weight += w,
        None => {
            graph.add_edge(a, b, w);
        }
    }
}

impl CoPurchase {
    /// Builds the graph from orders (any order; consecutive means by `seq`
    /// within a user).
    pub fn build(orders: &[Order]) -> Self {
        let mut graph = UnGraphMap::new();
        let mut by_user: HashMap<usize, Vec<&Order>> = HashMap::new();
        for o in orders {
            let basket = &o.items[..o.items.len().min(MAX_BASKET)];
            for (x, &a) in basket.iter().enumerate() {
                for &b in &basket[x + 1..] {
                    add(&mut graph, a, b, SAME_ORDER);
                }
            }
            by_user.entry(o.user).or_default().push(o);
        }
        let mut users: Vec<_> = by_user.into_iter().collect();
        users.sort_by_key(|(u, _)| *u);
        for (_, mut mine) in users {
            mine.sort_by(|a, b| a.seq.total_cmp(&b.seq));
            for pair in mine.windows(2) {
                for &a in pair[0].items.iter().take(MAX_BASKET) {
                    for &b in pair[1].items.iter().take(MAX_BASKET) {
                        add(&mut graph, a, b, SAME_USER);
                    }
                }
            }
        }
        let strength = graph
            .nodes()
            .map(|n| (n, graph.edges(n).map(|(_, _, w)| *w).sum()))
            .collect();
        Self { graph, strength }
    }

    /// Edges in the graph.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The neighbours of `item`, strongest first (ties by index).
    pub fn neighbours(&self, item: usize) -> Vec<(usize, f32)> {
        let node = item as u32;
        if !self.graph.contains_node(node) {
            return Vec::new();
        }
        let mut n: Vec<(usize, f32)> = self
            .graph
            .edges(node)
            .map(|(_, other, w)| (other as usize, *w))
            .collect();
        n.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        n
    }

    /// `Σ_j w_j · weight(j, i) / strength(j)` over the weighted history.
    pub fn scores(&self, history: &[(usize, f32)]) -> HashMap<usize, f32> {
        let mut scores = HashMap::new();
        for &(j, w) in history {
            let node = j as u32;
            let Some(&s) = self.strength.get(&node) else {
                continue;
            };
            for (_, other, weight) in self.graph.edges(node) {
                *scores.entry(other as usize).or_default() += w * weight / s;
            }
        }
        scores
    }

    /// Personalised PageRank from the weighted history: a few steps of
    /// "follow an edge by weight, or restart at the user's items", keeping
    /// the heaviest nodes each step. Ordered maps, so that sums are made in
    /// the same order every time and a model answers the same, bit for bit.
    pub fn walk(&self, history: &[(usize, f32)]) -> HashMap<usize, f32> {
        let total: f32 = history.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return HashMap::new();
        }
        let mut restart: BTreeMap<u32, f32> = BTreeMap::new();
        for &(i, w) in history {
            *restart.entry(i as u32).or_default() += w / total;
        }
        let mut mass = restart.clone();
        for _ in 0..WALK_STEPS {
            let mut next: BTreeMap<u32, f32> =
                restart.iter().map(|(&n, &p)| (n, RESTART * p)).collect();
            for (&node, &m) in &mass {
                let Some(&s) = self.strength.get(&node) else {
                    // A dead end returns its mass to the restart set.
                    for (&r, &p) in &restart {
                        *next.entry(r).or_default() += (1.0 - RESTART) * m * p;
                    }
                    continue;
                };
                for (_, other, w) in self.graph.edges(node) {
                    *next.entry(other).or_default() += (1.0 - RESTART) * m * w / s;
                }
            }
            if next.len() > WALK_FRONTIER {
                let mut heavy: Vec<(u32, f32)> = next.into_iter().collect();
                heavy.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                heavy.truncate(WALK_FRONTIER);
                next = heavy.into_iter().collect();
            }
            mass = next;
        }
        mass.into_iter().map(|(n, m)| (n as usize, m)).collect()
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(g.graph.edge_weight(0, 1), Some(&2.0));
        // Consecutive orders of user 0: {0,1} then {2}.
        assert_eq!(g.graph.edge_weight(0, 2), Some(&SAME_USER));
        assert_eq!(g.graph.edge_weight(1, 2), Some(&SAME_USER));
        assert_eq!(g.edge_count(), 3);
        assert_eq!(g.neighbours(0), vec![(1, 2.0), (2, 0.5)]);
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
        assert!((s[&1] - 2.0 / 3.0).abs() < 1e-6);
        assert!((s[&2] - 1.0 / 3.0).abs() < 1e-6);
        let walk = g.walk(&[(0, 1.0)]);
        let total: f32 = walk.values().sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        assert!(walk[&1] > walk[&2]);
        assert!(g.walk(&[]).is_empty());
    }
}
