//! Recommendations as pure maths over purchase data: item vectors and
//! cosine similarity (`ndarray`), a co-purchase graph with weighted edges
//! and personalised PageRank (`petgraph`), buy-again, popularity, a blend
//! whose weights are chosen on held-out data, and the offline metrics that
//! decide whether a model may be served. No I/O: the actor feeds it data
//! it received by messages, and `recommend-eval` feeds it a CSV.

pub mod assemble;
pub mod blend;
pub mod content_blocks;
pub mod csv_input;
pub mod data;
pub mod features;
pub mod gate;
pub mod graph;
pub mod metrics;
pub mod model;
pub mod vectors;
