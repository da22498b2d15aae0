//! Payments as pure rules: the payment status machine, card checks, the
//! retry policy of the payment pool, the kinds of its jobs and notices, and webhook signatures.

pub mod card;
pub mod queue;
pub mod refund;
pub mod retry;
pub mod status;
pub mod webhook;
