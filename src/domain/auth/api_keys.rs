//! API keys: their scopes, the map from routes to the scope each needs,
//! and how a key's secret is recognised and digested. No I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What every key's secret starts with, so scanners and people can tell
/// one apart from a JWT.
pub const KEY_PREFIX: &str = "emp_sk_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    /// Read products, categories, stock and the stock ledger.
    #[serde(rename = "catalog:read")]
    CatalogRead,
    /// Write products, categories, variants, images, stock and locations.
    #[serde(rename = "catalog:write")]
    CatalogWrite,
    /// Read orders, their fulfilments, returns and payments.
    #[serde(rename = "orders:read")]
    OrdersRead,
    /// Ship and deliver orders; make and move fulfilments; decide and
    /// receive returns. Never cancel: a paid order's cancel is a refund.
    #[serde(rename = "orders:write")]
    OrdersWrite,
    /// Manage webhook subscriptions (reserved: no route takes it yet).
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [
        Scope::CatalogRead,
        Scope::CatalogWrite,
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::WebhooksManage,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CatalogRead => "catalog:read",
            Scope::CatalogWrite => "catalog:write",
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// Parses a name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes, small enough to copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// The set of `scopes`.
    pub fn of(scopes: &[Scope]) -> Self {
        Self(scopes.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Whether it holds `scope`.
    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Its scopes, in the order of [`Scope::ALL`].
    pub fn list(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| self.has(*s)).collect()
    }
}

/// The scope a key needs for `method` on `path` (an `/api/v1/…` path, with
/// or without its trailing slash); `None` for every route no key may use
/// (accounts, user management, keys themselves, carts, checkout,
/// payments' writes, promotions, shipping and tax rules, the admin
/// reports). An allow-list: a route added later is closed to keys until it
/// is named here.
pub fn required_scope(method: &str, path: &str) -> Option<Scope> {
    let path = path.strip_prefix("/api/v1/")?.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    let read = matches!(method, "GET" | "HEAD");
    let write = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
    match parts.as_slice() {
        ["products" | "categories" | "stock-locations" | "stock-movements", ..] => {
            // Recommendations under /products/ are public reads already.
            if read {
                Some(Scope::CatalogRead)
            } else if write {
                Some(Scope::CatalogWrite)
            } else {
                None
            }
        }
        ["orders"] | ["orders", _] if read => Some(Scope::OrdersRead),
        ["orders", _, "fulfilments" | "returns", ..] if read => Some(Scope::OrdersRead),
        // Not `cancel`: a paid order's cancel is a refund, and keys move
        // no money.
        ["orders", _, "ship" | "deliver"] if write => Some(Scope::OrdersWrite),
        ["orders", _, "fulfilments", ..] if write => Some(Scope::OrdersWrite),
        ["orders", _, "returns", _, "approve" | "reject" | "close" | "receive"] if write => {
            Some(Scope::OrdersWrite)
        }
        ["payments"] | ["payments", _] | ["payments", _, "events" | "refunds"] if read => {
            Some(Scope::OrdersRead)
        }
        ["webhooks", ..] if read || write => Some(Scope::WebhooksManage),
        _ => None,
    }
}

/// Whether a bearer token is an API key rather than a JWT.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

/// The digest a key is stored and looked up by.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A key's secret from 32 random bytes (256 bits): the prefix and their
/// URL-safe base64.
pub fn secret_from(random: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_keys_may_use_names_its_scope_and_the_rest_are_closed() {
        use Scope::*;
        let table = [
            ("GET", "/api/v1/products/", Some(CatalogRead)),
            (
                "GET",
                "/api/v1/products/abc/variants/def/stock/",
                Some(CatalogRead),
            ),
            (
                "PUT",
                "/api/v1/products/abc/variants/def/stock",
                Some(CatalogWrite),
            ),
            ("POST", "/api/v1/products/", Some(CatalogWrite)),
            ("DELETE", "/api/v1/categories/x/", Some(CatalogWrite)),
            ("GET", "/api/v1/stock-movements/", Some(CatalogRead)),
            ("GET", "/api/v1/orders/", Some(OrdersRead)),
            ("GET", "/api/v1/orders/1/", Some(OrdersRead)),
            ("GET", "/api/v1/orders/1/fulfilments/", Some(OrdersRead)),
            ("POST", "/api/v1/orders/1/fulfilments/", Some(OrdersWrite)),
            (
                "POST",
                "/api/v1/orders/1/fulfilments/2/ship/",
                Some(OrdersWrite),
            ),
            ("PATCH", "/api/v1/orders/1/fulfilments/2", Some(OrdersWrite)),
            ("POST", "/api/v1/orders/1/ship/", Some(OrdersWrite)),
            ("POST", "/api/v1/orders/1/cancel/", None),
            (
                "POST",
                "/api/v1/orders/1/returns/2/receive/",
                Some(OrdersWrite),
            ),
            ("GET", "/api/v1/payments/1/refunds/", Some(OrdersRead)),
            ("GET", "/api/v1/webhooks/", Some(WebhooksManage)),
            (
                "POST",
                "/api/v1/webhooks/1/deliveries/2/redeliver/",
                Some(WebhooksManage),
            ),
            ("DELETE", "/api/v1/webhooks/1", Some(WebhooksManage)),
            // Closed to keys.
            ("POST", "/api/v1/orders/", None),
            ("POST", "/api/v1/orders/1/returns/", None),
            ("POST", "/api/v1/orders/1/returns/2/refund/", None),
            ("POST", "/api/v1/payments/1/refunds/", None),
            ("GET", "/api/v1/auth/users/", None),
            ("PATCH", "/api/v1/auth/users/1/", None),
            ("GET", "/api/v1/api-keys/", None),
            ("POST", "/api/v1/api-keys/", None),
            ("GET", "/api/v1/admin/actors/", None),
            ("POST", "/api/v1/cart/checkout/", None),
            ("GET", "/api/v1/shipping/zones/", None),
            ("OPTIONS", "/api/v1/products/", None),
            ("GET", "/metrics", None),
        ];
        for (method, path, want) in table {
            assert_eq!(required_scope(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn scopes_round_trip_and_sets_hold_what_they_were_made_of() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
        }
        let set = Scopes::of(&[Scope::CatalogRead, Scope::OrdersWrite]);
        assert!(set.has(Scope::CatalogRead) && set.has(Scope::OrdersWrite));
        assert!(!set.has(Scope::CatalogWrite));
        assert_eq!(set.list(), [Scope::CatalogRead, Scope::OrdersWrite]);
        assert_eq!(Scopes::default().list(), []);
    }

    #[test]
    fn secrets_carry_256_bits_behind_their_prefix() {
        let secret = secret_from(&[7; 32]);
        assert!(is_api_key(&secret));
        assert_eq!(secret.len(), KEY_PREFIX.len() + 43);
        assert!(!is_api_key("eyJhbGciOi"));
        assert_eq!(digest(&secret).len(), 32);
        assert_ne!(digest(&secret), digest(&secret_from(&[8; 32])));
    }
}
