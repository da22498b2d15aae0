//! Guest orders: who placed an order, and the token that opens an order
//! placed without an account.
//!
//! The token is `base64url(HMAC-SHA256(key, "order-token:v1:" || id))`:
//! derived, never stored, so no table (nor a saved Idempotency-Key answer)
//! holds it, and a replayed checkout derives the very same token again.
//! Rotating the key invalidates every token at once; that is the price of
//! storing nothing, and the reason the key is a production secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::domain::auth::email::normalize_email;
use crate::domain::auth::Principal;
use crate::domain::validation::FieldError;

type HmacSha256 = Hmac<Sha256>;

/// Binds the MAC to this use and version, so the same key could sign
/// something else (or a v2 token) without the two ever being confused.
const CONTEXT: &[u8] = b"order-token:v1:";

/// Length of a token as issued: 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// Who placed an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buyer {
    /// A customer, by account.
    Customer(Uuid),
    /// A shopper without an account, by the (normalised) email the order
    /// is for.
    Guest { email: String },
}

impl Buyer {
    /// The account the order belongs to; `None` for a guest.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Buyer::Customer(id) => Some(*id),
            Buyer::Guest { .. } => None,
        }
    }

    /// The email the order records; `None` for a customer (the account
    /// holds theirs).
    pub fn email(&self) -> Option<&str> {
        match self {
            Buyer::Customer(_) => None,
            Buyer::Guest { email } => Some(email),
        }
    }

    /// How the order's history names who placed it.
    pub fn history_actor(&self) -> String {
        match self {
            Buyer::Customer(id) => format!("user:{id}"),
            Buyer::Guest { .. } => "guest".to_owned(),
        }
    }
}

/// Who asks to see an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderViewer {
    /// An authenticated user: their own orders, or any order for an admin.
    User(Principal),
    /// Whoever sent the order's token (the edge checked it against the
    /// order asked for): that order, and only while it is a guest's, so a
    /// token can never open a customer's order.
    TokenHolder,
}

impl From<Principal> for OrderViewer {
    fn from(p: Principal) -> Self {
        OrderViewer::User(p)
    }
}

impl OrderViewer {
    /// Whether this viewer may see an order owned by `owner` (`None`: a
    /// guest's).
    pub fn may_see(&self, owner: Option<Uuid>) -> bool {
        match self {
            OrderViewer::User(p) => p.is_admin() || owner == Some(p.user_id),
            OrderViewer::TokenHolder => owner.is_none(),
        }
    }
}

/// A guest's email, checked as registration checks one (so an order's
/// email is one an account could have).
pub fn guest_email(raw: &str) -> Result<String, FieldError> {
    normalize_email(raw)
}

/// The server key that derives and checks order tokens.
#[derive(Clone)]
pub struct OrderTokenKey(Vec<u8>);

impl std::fmt::Debug for OrderTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderTokenKey(..)")
    }
}

impl OrderTokenKey {
    /// A key from the configured secret's bytes.
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    fn mac(&self, order_id: Uuid) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(CONTEXT);
        mac.update(order_id.as_bytes());
        mac
    }

    /// The token that opens `order_id`.
    pub fn token(&self, order_id: Uuid) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(order_id).finalize().into_bytes())
    }

    /// Whether `token` opens `order_id`. The MAC comparison is
    /// constant-time (`Mac::verify_slice`); what is not (the length and
    /// base64 checks) depends only on the token's shape, never on the key.
    pub fn opens(&self, order_id: Uuid, token: &str) -> bool {
        let token = token.trim();
        if token.len() != TOKEN_LEN {
            return false;
        }
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(order_id).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> OrderTokenKey {
        OrderTokenKey::new(b"a test key of some length")
    }

    #[test]
    fn a_token_opens_its_own_order_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let token = key().token(a);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(key().opens(a, &token));
        assert!(!key().opens(b, &token));
    }

    #[test]
    fn the_same_order_always_derives_the_same_token() {
        let id = Uuid::new_v4();
        assert_eq!(key().token(id), key().token(id));
    }

    #[test]
    fn another_key_derives_another_token() {
        let id = Uuid::new_v4();
        let other = OrderTokenKey::new(b"another key");
        assert_ne!(key().token(id), other.token(id));
        assert!(!other.opens(id, &key().token(id)));
    }

    #[test]
    fn malformed_tokens_open_nothing() {
        let id = Uuid::new_v4();
        let good = key().token(id);
        let mut flipped = good.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        for bad in [
            "",
            "x",
            &good[..42],
            &format!("{good}A"),
            &flipped,
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(!key().opens(id, bad), "{bad:?} must not open the order");
        }
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(format!("{:?}", key()), "OrderTokenKey(..)");
    }

    #[test]
    fn buyers_say_who_they_are() {
        let id = Uuid::new_v4();
        let customer = Buyer::Customer(id);
        assert_eq!((customer.user_id(), customer.email()), (Some(id), None));
        assert_eq!(customer.history_actor(), format!("user:{id}"));
        let guest = Buyer::Guest {
            email: "ann@example.com".into(),
        };
        assert_eq!(
            (guest.user_id(), guest.email()),
            (None, Some("ann@example.com"))
        );
        assert_eq!(guest.history_actor(), "guest");
    }

    #[test]
    fn customers_see_their_own_admins_all_and_tokens_only_guest_orders() {
        use crate::domain::auth::Role;
        let ann = Uuid::new_v4();
        let customer = OrderViewer::from(Principal {
            user_id: ann,
            role: Role::Customer,
        });
        let admin = OrderViewer::from(Principal {
            user_id: Uuid::new_v4(),
            role: Role::Admin,
        });
        assert!(customer.may_see(Some(ann)));
        assert!(!customer.may_see(Some(Uuid::new_v4())));
        assert!(!customer.may_see(None));
        assert!(admin.may_see(None) && admin.may_see(Some(ann)));
        assert!(OrderViewer::TokenHolder.may_see(None));
        assert!(!OrderViewer::TokenHolder.may_see(Some(ann)));
    }

    #[test]
    fn guest_emails_are_checked_like_account_emails() {
        assert_eq!(
            guest_email("  Ann@Example.COM ").expect("valid"),
            "ann@example.com"
        );
        assert_eq!(guest_email("").map_err(|e| e.code), Err("required"));
        assert_eq!(guest_email("ann@").map_err(|e| e.code), Err("invalid"));
    }
}
