//! Idempotency keys with Stripe's semantics, as pure rules: which keys are
//! acceptable, how a request is fingerprinted, and what a second request
//! with a known key gets. Storage lives in each owning domain's database
//! (`store::idempotency`).

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::validation::FieldError;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Checks a client's `Idempotency-Key`: 1-255 printable ASCII characters.
pub fn check_key(key: &str) -> Result<(), FieldError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(FieldError {
            field: "Idempotency-Key".into(),
            code: "invalid",
            message: format!("Idempotency-Key must be 1-{MAX_KEY_LEN} printable ASCII characters"),
        })
    }
}

/// A client's `Idempotency-Key`, checked: only [`IdempotencyKey::parse`]
/// makes one, so a key that reaches storage is always a valid one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, if `raw` is 1-255 printable ASCII characters.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        check_key(raw)?;
        Ok(Self(raw.to_owned()))
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A write that came with a key: whose key it is, and what the request
/// meant (its [`fingerprint`]), which a retry must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRequest {
    pub user_id: Uuid,
    pub key: IdempotencyKey,
    pub fingerprint: String,
}

/// What a keyed write answers, once its owner has claimed the key, run
/// the effect (or not) and saved the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyedOutcome {
    /// The answer: this request's own, or (`replayed`) the first one's.
    Answered {
        response: SavedResponse,
        replayed: bool,
    },
    /// The key was used with another request: 422.
    Mismatch,
    /// The first request with this key is still running: 409.
    InFlight,
}

/// A digest of what makes two requests "the same": method, path, and the
/// body's meaning (parsed JSON, so key order and spacing do not matter).
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.trim_end_matches('/').as_bytes());
    hasher.update([0]);
    // serde_json's maps are ordered by key, so this is canonical.
    hasher.update(body.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A saved response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// When to try again, for a shed or throttled answer. Not stored: it
    /// is advice for the moment of the first answer, not part of it.
    pub retry_after_secs: Option<u64>,
}

/// What the store found for a key that someone had claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub fingerprint: String,
    /// `None` while the first request is still executing.
    pub response: Option<SavedResponse>,
    /// The resource the first request created, written in the same
    /// transaction as the resource; set even if its response was never
    /// saved (the process died between the two).
    pub resource_id: Option<Uuid>,
}

/// A claim on a key held by the request now running: the token is the
/// fence that the effect's transaction checks, so a request whose claim
/// was taken over (presumed dead, then re-claimed) cannot commit an effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLease {
    pub user_id: Uuid,
    pub key: IdempotencyKey,
    pub token: Uuid,
}

/// The outcome of trying to claim a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key and must save its response.
    Claimed(KeyLease),
    /// Another request claimed it first.
    Existing(KeyRecord),
}

/// What to do with a request whose key was claimed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Same request, finished: answer with the saved response.
    Replay(SavedResponse),
    /// Same key, another request: 422.
    Mismatch,
    /// Same request, its effect committed but its response never saved:
    /// answer by rendering the created resource, never by running again.
    Recover(Uuid),
    /// Same request, still running: 409, nothing saved.
    InFlight,
}

/// Decides for a request with `fingerprint` whose key is held by `record`.
pub fn decide(record: &KeyRecord, fingerprint: &str) -> Decision {
    if record.fingerprint != fingerprint {
        return Decision::Mismatch;
    }
    match (&record.response, record.resource_id) {
        (Some(saved), _) => Decision::Replay(saved.clone()),
        (None, Some(resource)) => Decision::Recover(resource),
        (None, None) => Decision::InFlight,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(check_key("order-123").is_ok());
        assert!(check_key(&"k".repeat(255)).is_ok());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
        assert!(check_key("tab\there").is_err());
        assert!(check_key("ключ").is_err());
        assert_eq!(IdempotencyKey::parse("k 1").expect("valid").as_str(), "k 1");
        assert!(IdempotencyKey::parse("").is_err());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_trailing_slash_only() {
        let a = fingerprint("POST", "/api/v1/orders/", &json!({"a": 1, "b": [1, 2]}));
        let b = fingerprint(
            "POST",
            "/api/v1/orders",
            &serde_json::from_str(r#"{ "b": [1,2], "a": 1 }"#).expect("json"),
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint("POST", "/api/v1/orders", &json!({"a": 2, "b": [1, 2]}))
        );
        assert_ne!(
            a,
            fingerprint("POST", "/api/v1/orders", &json!({"a": 1, "b": [2, 1]}))
        );
        assert_ne!(
            a,
            fingerprint("PUT", "/api/v1/orders", &json!({"a": 1, "b": [1, 2]}))
        );
    }

    #[test]
    fn a_known_key_replays_refuses_or_waits() {
        let saved = SavedResponse {
            status: 201,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
            retry_after_secs: None,
        };
        let done = KeyRecord {
            fingerprint: "f".into(),
            response: Some(saved.clone()),
            resource_id: Some(Uuid::nil()),
        };
        assert_eq!(decide(&done, "f"), Decision::Replay(saved));
        assert_eq!(decide(&done, "g"), Decision::Mismatch);
        let running = KeyRecord {
            fingerprint: "f".into(),
            response: None,
            resource_id: None,
        };
        assert_eq!(decide(&running, "f"), Decision::InFlight);
        assert_eq!(decide(&running, "g"), Decision::Mismatch);
        let orphaned = KeyRecord {
            fingerprint: "f".into(),
            response: None,
            resource_id: Some(Uuid::nil()),
        };
        assert_eq!(decide(&orphaned, "f"), Decision::Recover(Uuid::nil()));
        assert_eq!(decide(&orphaned, "g"), Decision::Mismatch);
    }
}
