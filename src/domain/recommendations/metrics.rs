//! Ranking metrics at a cut-off k, on held-out baskets.

use std::collections::HashSet;

/// Recall, NDCG and hit rate at k, averaged over users.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Scores {
    pub recall: f64,
    pub ndcg: f64,
    pub hit_rate: f64,
    pub users: usize,
}

/// Accumulates per-user results.
#[derive(Debug, Default)]
pub struct Accumulator {
    sum: Scores,
}

impl Accumulator {
    /// Adds one user's ranking (best first, at most k long) against the
    /// items of their held-out basket.
    pub fn add(&mut self, ranked: &[usize], relevant: &HashSet<usize>) {
        if relevant.is_empty() {
            return;
        }
        let hits: Vec<bool> = ranked.iter().map(|i| relevant.contains(i)).collect();
        let found = hits.iter().filter(|h| **h).count();
        let dcg: f64 = hits
            .iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(ranked.len().max(1)))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        self.sum.recall += found as f64 / relevant.len() as f64;
        self.sum.ndcg += if ideal > 0.0 { dcg / ideal } else { 0.0 };
        self.sum.hit_rate += if found > 0 { 1.0 } else { 0.0 };
        self.sum.users += 1;
    }

    /// The averages.
    pub fn scores(&self) -> Scores {
        let n = self.sum.users.max(1) as f64;
        Scores {
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
            hit_rate: self.sum.hit_rate / n,
            users: self.sum.users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_rankings() {
        let relevant: HashSet<usize> = [1, 2].into_iter().collect();
        let mut acc = Accumulator::default();
        // Hits at ranks 1 and 3 of 3: recall 1, hit 1,
        // ndcg = (1 + 1/log2 4) / (1 + 1/log2 3).
        acc.add(&[1, 9, 2], &relevant);
        let s = acc.scores();
        assert!((s.recall - 1.0).abs() < 1e-12);
        assert!((s.hit_rate - 1.0).abs() < 1e-12);
        let expected = (1.0 + 0.5) / (1.0 + 1.0 / 3f64.log2());
        assert!((s.ndcg - expected).abs() < 1e-12);
        // A miss halves the averages.
        acc.add(&[7, 8, 9], &relevant);
        let s = acc.scores();
        assert_eq!(s.users, 2);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert!((s.hit_rate - 0.5).abs() < 1e-12);
    }
}
