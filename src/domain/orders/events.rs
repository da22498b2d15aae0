//! The kinds of event the orders domain appends to its outbox
//! (`order_events`), as typed values; stored as text through
//! `store::text_enum`, so a reader never compares strings.

use serde::Serialize;

/// What happened to an order, as its outbox records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    /// The order was paid; the payload carries its lines (what the
    /// recommender follows).
    OrderPaid,
}

impl OrderEventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderEventKind::OrderPaid => "order_paid",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "order_paid" => Some(OrderEventKind::OrderPaid),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_written() {
        let kind = OrderEventKind::OrderPaid;
        assert_eq!(OrderEventKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).expect("json"), "order_paid");
        assert_eq!(OrderEventKind::parse("paid"), None);
    }
}
