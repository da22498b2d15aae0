//! The co-purchase graph (`petgraph`): items bought in the same order are
//! joined with weight 1, items in consecutive orders of one user with
//! weight 0.5. "Bought together" reads a node's strongest edges; personal
//! recommendations walk the graph (personalised PageRank) from the items a
//! user bought.

use std::collections::HashMap;

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
const WALK_FRONTIER: usize = 300;

/// The co-purchase graph, and the same edges as flat adjacency lists for
/// serving: a walk visits hundreds of thousands of edges, and a plain
/// slice per node is several times faster than the graph map's lookups
/// (they took two thirds of a ranking's time in the profile).
#[derive(Debug, Clone, Default)]
pub struct CoPurchase {
    /// Edges of the petgraph graph it was built as; the graph itself is
    /// dropped once flattened, so a served model holds its edges once.
    edges: usize,
    adjacency: Vec<Vec<(u32, f32)>>,
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
        let size = graph.nodes().max().map_or(0, |n| n as usize + 1);
        let mut adjacency = vec![Vec::new(); size];
        for node in graph.nodes() {
            adjacency[node as usize] = graph.edges(node).map(|(_, other, w)| (other, *w)).collect();
        }
        Self {
            edges: graph.edge_count(),
            adjacency,
            strength,
        }
    }

    fn edges_of(&self, node: u32) -> &[(u32, f32)] {
        self.adjacency.get(node as usize).map_or(&[], Vec::as_slice)
    }

    /// Edges in the graph.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    /// The weight of the edge between `a` and `b`, if any.
    pub fn weight(&self, a: usize, b: usize) -> Option<f32> {
        self.edges_of(a as u32)
            .iter()
            .find(|(other, _)| *other as usize == b)
            .map(|(_, w)| *w)
    }

    /// The neighbours of `item`, strongest first (ties by index).
    pub fn neighbours(&self, item: usize) -> Vec<(usize, f32)> {
        let mut n: Vec<(usize, f32)> = self
            .edges_of(item as u32)
            .iter()
            .map(|&(other, w)| (other as usize, w))
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
            for &(other, weight) in self.edges_of(node) {
                *scores.entry(other as usize).or_default() += w * weight / s;
            }
        }
        scores
    }

    /// Personalised PageRank from the weighted history: a few steps of
    /// "follow an edge by weight, or restart at the user's items", keeping
    /// the heaviest nodes each step. Mass is spread from nodes in id order,
    /// so that sums are made in the same order every time and a model
    /// answers the same, bit for bit.
    pub fn walk(&self, history: &[(usize, f32)]) -> HashMap<usize, f32> {
        let total: f32 = history.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return HashMap::new();
        }
        let mut restart: Vec<(u32, f32)> = Vec::new();
        for &(i, w) in history {
            restart.push((i as u32, w / total));
        }
        restart.sort_by_key(|(n, _)| *n);
        let mut mass = restart.clone();
        for _ in 0..WALK_STEPS {
            let mut next: HashMap<u32, f32> = HashMap::with_capacity(mass.len() * 8);
            for &(n, p) in &restart {
                *next.entry(n).or_default() += RESTART * p;
            }
            for &(node, m) in &mass {
                let Some(&s) = self.strength.get(&node) else {
                    // A dead end returns its mass to the restart set.
                    for &(r, p) in &restart {
                        *next.entry(r).or_default() += (1.0 - RESTART) * m * p;
                    }
                    continue;
                };
                for &(other, w) in self.edges_of(node) {
                    *next.entry(other).or_default() += (1.0 - RESTART) * m * w / s;
                }
            }
            let mut heavy: Vec<(u32, f32)> = next.into_iter().collect();
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
        assert_eq!(g.weight(0, 1), Some(2.0));
        // Consecutive orders of user 0: {0,1} then {2}.
        assert_eq!(g.weight(0, 2), Some(SAME_USER));
        assert_eq!(g.weight(1, 2), Some(SAME_USER));
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
