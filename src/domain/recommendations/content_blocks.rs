//! The exact top of the content cosine without scoring every item. Items
//! are laid out in blocks of alike items (sharing their commonest tokens)
//! when the model is built, blocks in groups, and each block and group
//! keeps, per token, the largest and smallest value any of its items has.
//! A query bounds each group's and block's best possible score from those
//! and the profile, scores items best bound first, and stops at the first
//! group or block whose bound cannot beat the n-th score found. At 100k
//! products a profile shares some token (a price band, a tag) with nearly
//! every item, so an inverted index alone would still visit them all; only
//! a few blocks can reach the top.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Items per block: small enough that a block's items stay alike, large
/// enough that bounding blocks costs a fraction of scoring their items.
/// Tests use tiny blocks and groups so that small datasets prune too.
#[cfg(not(test))]
const BLOCK: usize = 128;
#[cfg(test)]
const BLOCK: usize = 4;
/// Blocks per group: bounding every block of 100k items cost as much as
/// scoring them, so groups are bounded first and only the blocks of
/// groups that can reach the top are.
#[cfg(not(test))]
const GROUP: usize = 16;
#[cfg(test)]
const GROUP: usize = 3;

/// Items in blocks of alike items, blocks in groups, each with its
/// per-token extremes.
#[derive(Debug, Clone, Default)]
pub struct ContentBlocks {
    /// Item indices, block after block.
    members: Vec<u32>,
    /// The members' rows in the same order (a copy of the matrix's
    /// entries): read in item order, the scan of a block missed the cache
    /// on every row, which was most of a query's time.
    rows: Vec<(u32, f32)>,
    /// Where each member's row starts in `rows` (members + 1).
    row_starts: Vec<usize>,
    /// Where each block starts in `members` (blocks + 1).
    member_starts: Vec<usize>,
    blocks: Extremes,
    /// Group g holds blocks `g * GROUP ..` (at most [`GROUP`]).
    groups: Extremes,
}

/// Per-token extremes of each of a run of parts (blocks of items, or
/// groups of blocks).
#[derive(Debug, Clone, Default)]
struct Extremes {
    /// `(column, largest value, smallest value)` per part, counting 0 when
    /// some item of the part lacks the token.
    tokens: Vec<(u32, f32, f32)>,
    /// Where each part starts in `tokens` (parts + 1).
    starts: Vec<usize>,
    /// The most tokens one item of each part has: no item's score sums
    /// more than that many of the part's per-token bests.
    widest: Vec<usize>,
}

impl Extremes {
    fn new() -> Self {
        Self {
            starts: vec![0],
            ..Self::default()
        }
    }

    fn len(&self) -> usize {
        self.widest.len()
    }

    /// Appends a part from its per-column `(largest, smallest, how many
    /// of its `size` members have it)`, taking the touched columns.
    fn push(
        &mut self,
        seen: &mut [(f32, f32, usize)],
        touched: &mut Vec<u32>,
        size: usize,
        widest: usize,
    ) {
        touched.sort_unstable();
        for j in touched.drain(..) {
            let (mut high, mut low, count) = std::mem::take(&mut seen[j as usize]);
            if count < size {
                high = high.max(0.0);
                low = low.min(0.0);
            }
            self.tokens.push((j, high, low));
        }
        self.starts.push(self.tokens.len());
        self.widest.push(widest);
    }

    /// An upper bound of any score in `part` for the unit `profile`, or
    /// `None` when no item of it can score above 0.
    fn bound(&self, part: usize, profile: &[f32], gains: &mut Vec<f64>) -> Option<f64> {
        gains.clear();
        // A score is a sum of at most `widest` f32 products, off by less
        // than (widest + 2) ulps of the sum of their sizes: the slack
        // keeps the bound above any rounded score.
        let mut sizes = 0f64;
        for &(j, high, low) in &self.tokens[self.starts[part]..self.starts[part + 1]] {
            let p = f64::from(profile[j as usize]);
            if p == 0.0 {
                continue;
            }
            let gain = (p * f64::from(high)).max(p * f64::from(low));
            if gain > 0.0 {
                gains.push(gain);
            }
            sizes += p.abs() * f64::from(high.abs().max(low.abs()));
        }
        let widest = self.widest[part];
        if gains.len() > widest {
            gains.select_nth_unstable_by(widest, |a, b| b.total_cmp(a));
            gains.truncate(widest);
        }
        let bound: f64 = gains.iter().sum();
        (bound > 0.0).then(|| bound + (widest + 2) as f64 * f64::from(f32::EPSILON) * sizes)
    }

    /// Every part of `parts` that can score above 0, best bound first.
    fn ranked(
        &self,
        parts: std::ops::Range<usize>,
        profile: &[f32],
        gains: &mut Vec<f64>,
    ) -> Vec<(f64, usize)> {
        let mut out: Vec<(f64, usize)> = parts
            .filter_map(|b| self.bound(b, profile, gains).map(|x| (x, b)))
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out
    }
}

/// Per-column extremes gathered for one part at a time.
struct Gathering {
    seen: Vec<(f32, f32, usize)>,
    touched: Vec<u32>,
}

impl Gathering {
    fn add(&mut self, j: u32, high: f32, low: f32) {
        let s = &mut self.seen[j as usize];
        if s.2 == 0 {
            self.touched.push(j);
            *s = (high, low, 0);
        }
        *s = (s.0.max(high), s.1.min(low), s.2 + 1);
    }
}

/// A candidate in the bounded heap, ordered so that the heap's top is the
/// worst kept: lower score, then higher index (the ranking's tie-break).
#[derive(Debug, Clone, Copy)]
struct Kept(f32, usize);

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Kept {}

/// A row times the unit `profile`: the one sum both the full scan and the
/// pruned search make, so that their scores agree to the bit.
pub fn dot(row: &[(u32, f32)], profile: &[f32]) -> f32 {
    row.iter().map(|&(j, v)| v * profile[j as usize]).sum()
}

/// Whether nothing bounded by `bound` can enter the full heap `kept`:
/// strictly below its worst, since an equal score with a lower index
/// would still displace it.
fn beaten(kept: &BinaryHeap<Kept>, n: usize, bound: f64) -> bool {
    kept.len() == n && kept.peek().is_some_and(|w| bound < f64::from(w.0))
}

impl ContentBlocks {
    /// Lays out the items whose non-zero entries are `entries[starts[i]..
    /// starts[i + 1]]` (columns below `columns`).
    pub fn build(entries: &[(u32, f32)], starts: &[usize], columns: usize) -> Self {
        let items = starts.len().saturating_sub(1);
        let row = |i: usize| &entries[starts[i]..starts[i + 1]];
        // Alike items share their commonest tokens: each item's columns,
        // commonest first, compared as words, keep them together.
        let mut frequency = vec![0usize; columns];
        for &(j, _) in entries {
            frequency[j as usize] += 1;
        }
        let keys: Vec<Vec<u32>> = (0..items)
            .map(|i| {
                let mut key: Vec<u32> = row(i).iter().map(|(j, _)| *j).collect();
                key.sort_by(|a, b| {
                    frequency[*b as usize]
                        .cmp(&frequency[*a as usize])
                        .then(a.cmp(b))
                });
                key
            })
            .collect();
        let mut members: Vec<u32> = (0..items as u32).collect();
        members.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]).then(a.cmp(b)));
        drop(keys);
        let mut gathering = Gathering {
            seen: vec![(0.0, 0.0, 0); columns],
            touched: Vec::new(),
        };
        let mut blocks = Extremes::new();
        let mut member_starts = vec![0];
        for block in members.chunks(BLOCK) {
            let mut widest = 0;
            for &i in block {
                let r = row(i as usize);
                widest = widest.max(r.len());
                for &(j, v) in r {
                    gathering.add(j, v, v);
                }
            }
            blocks.push(
                &mut gathering.seen,
                &mut gathering.touched,
                block.len(),
                widest,
            );
            member_starts.push(member_starts.last().copied().unwrap_or(0) + block.len());
        }
        let mut groups = Extremes::new();
        for first in (0..blocks.len()).step_by(GROUP) {
            let last = (first + GROUP).min(blocks.len());
            for b in first..last {
                for &(j, high, low) in &blocks.tokens[blocks.starts[b]..blocks.starts[b + 1]] {
                    gathering.add(j, high, low);
                }
            }
            let widest = blocks.widest[first..last]
                .iter()
                .copied()
                .max()
                .unwrap_or(0);
            groups.push(
                &mut gathering.seen,
                &mut gathering.touched,
                last - first,
                widest,
            );
        }
        let mut rows = Vec::with_capacity(entries.len());
        let mut row_starts = Vec::with_capacity(members.len() + 1);
        for &i in &members {
            row_starts.push(rows.len());
            rows.extend_from_slice(row(i as usize));
        }
        row_starts.push(rows.len());
        Self {
            members,
            rows,
            row_starts,
            member_starts,
            blocks,
            groups,
        }
    }

    /// The `n` best items with a score above 0, best first, ties by index
    /// — exactly what scoring every item with `score` and sorting would
    /// give, each item's score its row's [`dot`] with the unit `profile`.
    pub fn best(&self, profile: &[f32], n: usize) -> Vec<(usize, f32)> {
        if n == 0 {
            return Vec::new();
        }
        let mut gains: Vec<f64> = Vec::new();
        let mut kept: BinaryHeap<Kept> = BinaryHeap::with_capacity(n + 1);
        for (bound, g) in self
            .groups
            .ranked(0..self.groups.len(), profile, &mut gains)
        {
            if beaten(&kept, n, bound) {
                break;
            }
            let first = g * GROUP;
            let last = (first + GROUP).min(self.blocks.len());
            for (bound, b) in self.blocks.ranked(first..last, profile, &mut gains) {
                if beaten(&kept, n, bound) {
                    break;
                }
                for at in self.member_starts[b]..self.member_starts[b + 1] {
                    let row = &self.rows[self.row_starts[at]..self.row_starts[at + 1]];
                    let candidate = Kept(dot(row, profile), self.members[at] as usize);
                    // Only positive scores rank (NaN neither).
                    if candidate.0.partial_cmp(&0.0) != Some(Ordering::Greater) {
                        continue;
                    }
                    if kept.len() < n {
                        kept.push(candidate);
                    } else if let Some(mut worst) = kept.peek_mut() {
                        if candidate < *worst {
                            *worst = candidate;
                        }
                    }
                }
            }
        }
        let mut out: Vec<(usize, f32)> = kept.into_iter().map(|Kept(s, i)| (i, s)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}
