//! Item vectors and cosine similarity. With content features, each item is
//! a weighted bag of feature tokens in an `ndarray` matrix, rows
//! L2-normalised, and a user is the recency-weighted sum of the vectors of
//! what they bought. With interactions alone, items are compared by the
//! users who bought them (item-based collaborative cosine).

use std::collections::HashMap;

use ndarray::{Array1, Array2, Axis};

use super::content_blocks::{dot, ContentBlocks};
use super::data::Features;

/// Content vectors: one L2-normalised row per item.
#[derive(Debug, Clone)]
pub struct ContentVectors {
    pub matrix: Array2<f32>,
    /// The same rows' non-zero entries, `(column, value)` by row, starting
    /// at `starts[row]`: an item has a handful of tokens out of the
    /// vocabulary (≤ 6 of 91 in the demo shop), so scoring every item
    /// reads a fifteenth of the dense matrix.
    entries: Vec<(u32, f32)>,
    starts: Vec<usize>,
    /// The items in blocks of alike items, so that a ranking scores only
    /// the blocks that can reach its top.
    blocks: ContentBlocks,
}

impl ContentVectors {
    /// Builds the matrix from each item's weighted tokens.
    pub fn build(features: &[Features]) -> Self {
        let mut vocab: HashMap<&str, usize> = HashMap::new();
        for f in features {
            for (token, _) in f {
                let next = vocab.len();
                vocab.entry(token.as_str()).or_insert(next);
            }
        }
        let mut matrix = Array2::<f32>::zeros((features.len(), vocab.len().max(1)));
        for (i, f) in features.iter().enumerate() {
            for (token, weight) in f {
                if let Some(&j) = vocab.get(token.as_str()) {
                    matrix[[i, j]] += weight;
                }
            }
        }
        normalise_rows(&mut matrix);
        let mut entries = Vec::new();
        let mut starts = Vec::with_capacity(matrix.nrows() + 1);
        for row in matrix.axis_iter(Axis(0)) {
            starts.push(entries.len());
            entries.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, v)| (j as u32, *v)),
            );
        }
        starts.push(entries.len());
        let blocks = ContentBlocks::build(&entries, &starts, matrix.ncols());
        Self {
            matrix,
            entries,
            starts,
            blocks,
        }
    }

    /// `profile` scaled to unit length, or `None` when it is zero or of
    /// another width than the matrix.
    fn unit(&self, profile: &Array1<f32>) -> Option<Vec<f32>> {
        let norm = profile.dot(profile).sqrt();
        if norm == 0.0 || profile.len() != self.matrix.ncols() {
            return None;
        }
        Some(profile.iter().map(|x| x / norm).collect())
    }

    /// Row `i` times the unit profile `p`.
    fn row_score(&self, i: usize, p: &[f32]) -> f32 {
        dot(&self.entries[self.starts[i]..self.starts[i + 1]], p)
    }

    /// Cosine of every item with `profile` (any length-d vector): the
    /// matrix times the profile, over each row's non-zero entries.
    pub fn scores(&self, profile: &Array1<f32>) -> Array1<f32> {
        let rows = self.matrix.nrows();
        match self.unit(profile) {
            Some(p) => (0..rows).map(|i| self.row_score(i, &p)).collect(),
            None => Array1::zeros(rows),
        }
    }

    /// The `n` items of highest cosine with `profile` above 0, best first,
    /// ties by index: what ranking [`Self::scores`] gives, found by scoring
    /// only the blocks of items that can reach the top.
    pub fn best(&self, profile: &Array1<f32>, n: usize) -> Vec<(usize, f32)> {
        match self.unit(profile) {
            Some(p) => self.blocks.best(&p, n),
            None => Vec::new(),
        }
    }

    /// The recency-weighted sum of the rows of `history`.
    pub fn profile(&self, history: &[(usize, f32)]) -> Array1<f32> {
        let mut p = Array1::<f32>::zeros(self.matrix.ncols());
        for &(item, weight) in history {
            if item < self.matrix.nrows() {
                p.scaled_add(weight, &self.matrix.row(item));
            }
        }
        p
    }
}

/// Scales every row to unit length (zero rows stay zero).
pub fn normalise_rows(m: &mut Array2<f32>) {
    for mut row in m.axis_iter_mut(Axis(0)) {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
}

/// Cosine of two vectors (0 when either is zero).
pub fn cosine(a: &Array1<f32>, b: &Array1<f32>) -> f32 {
    let (na, nb) = (a.dot(a).sqrt(), b.dot(b).sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        a.dot(b) / (na * nb)
    }
}

/// Item-based collaborative cosine from interactions alone:
/// `cos(i, j) = |U_i ∩ U_j| / sqrt(|U_i| · |U_j|)` over the sets of users
/// who bought each item.
#[derive(Debug, Clone)]
pub struct CollaborativeVectors {
    users_of: Vec<Vec<u32>>,
    items_of: Vec<Vec<u32>>,
}

impl CollaborativeVectors {
    /// From each user's distinct items.
    pub fn build(items: usize, histories: &[Vec<(usize, f32)>]) -> Self {
        let mut users_of = vec![Vec::new(); items];
        let mut items_of = Vec::with_capacity(histories.len());
        for (u, h) in histories.iter().enumerate() {
            let mut mine: Vec<u32> = h.iter().map(|(i, _)| *i as u32).collect();
            mine.sort_unstable();
            mine.dedup();
            for &i in &mine {
                users_of[i as usize].push(u as u32);
            }
            items_of.push(mine);
        }
        Self { users_of, items_of }
    }

    /// `Σ_j w_j · cos(i, j)` over the weighted history, for every item
    /// reachable through a shared buyer (others score 0).
    pub fn scores(&self, history: &[(usize, f32)]) -> HashMap<usize, f32> {
        let mut scores: HashMap<usize, f32> = HashMap::new();
        for &(j, w) in history {
            let Some(buyers) = self.users_of.get(j) else {
                continue;
            };
            if buyers.is_empty() {
                continue;
            }
            let mut shared: HashMap<u32, u32> = HashMap::new();
            for &u in buyers {
                for &i in &self.items_of[u as usize] {
                    *shared.entry(i).or_default() += 1;
                }
            }
            let nj = buyers.len() as f32;
            for (i, c) in shared {
                let ni = self.users_of[i as usize].len() as f32;
                *scores.entry(i as usize).or_default() += w * c as f32 / (ni * nj).sqrt();
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn cosine_of_hand_checked_vectors() {
        assert!((cosine(&array![1.0, 0.0], &array![1.0, 1.0]) - 0.70710677).abs() < 1e-6);
        assert_eq!(cosine(&array![1.0, 0.0], &array![0.0, 2.0]), 0.0);
        assert_eq!(cosine(&array![0.0, 0.0], &array![1.0, 2.0]), 0.0);
    }

    #[test]
    fn rows_are_unit_length_and_shared_tokens_make_neighbours() {
        let f = |tokens: &[(&str, f32)]| tokens.iter().map(|(t, w)| (t.to_string(), *w)).collect();
        let v = ContentVectors::build(&[
            f(&[("cat:shoes", 2.0), ("tag:red", 1.0)]),
            f(&[("cat:shoes", 2.0), ("tag:blue", 1.0)]),
            f(&[("cat:tents", 2.0), ("tag:red", 1.0)]),
            vec![],
        ]);
        for (i, row) in v.matrix.axis_iter(Axis(0)).enumerate().take(3) {
            assert!((row.dot(&row) - 1.0).abs() < 1e-6, "row {i}");
        }
        let s = v.scores(&v.profile(&[(0, 1.0)]));
        assert!((s[0] - 1.0).abs() < 1e-6);
        // Shared category (weight 2) beats a shared tag (weight 1).
        assert!(
            (s[1] - 0.8).abs() < 1e-6 && (s[2] - 0.2).abs() < 1e-6,
            "{s}"
        );
        assert_eq!(s[3], 0.0);
        // The sparse scan is the dense product.
        let profile = v.profile(&[(0, 0.5), (2, 1.0)]);
        let dense = v.matrix.dot(&profile) / profile.dot(&profile).sqrt();
        for (a, b) in v.scores(&profile).iter().zip(&dense) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn collaborative_cosine_counts_shared_buyers() {
        // Users: 0 bought {0,1}, 1 bought {0,1}, 2 bought {0,2}.
        let h = vec![
            vec![(0, 1.0), (1, 1.0)],
            vec![(0, 1.0), (1, 1.0)],
            vec![(0, 1.0), (2, 1.0)],
        ];
        let cf = CollaborativeVectors::build(3, &h);
        let s = cf.scores(&[(0, 1.0)]);
        // cos(0,1) = 2 / sqrt(3·2); cos(0,2) = 1 / sqrt(3·1).
        assert!((s[&1] - 2.0 / 6f32.sqrt()).abs() < 1e-6);
        assert!((s[&2] - 1.0 / 3f32.sqrt()).abs() < 1e-6);
        assert!((s[&0] - 1.0).abs() < 1e-6);
    }
}
