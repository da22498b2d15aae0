//! Payments as pure rules: the payment status machine, card checks, the
//! retry policy of the payment pool, and webhook signatures.

pub mod card;
pub mod retry;
pub mod status;
pub mod webhook;
