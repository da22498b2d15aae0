//! Access tokens (short-lived HS256 JWTs) and refresh tokens (opaque random
//! strings stored only as SHA-256 digests, rotated on every use).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::principal::Role;

/// Clock skew tolerated when checking `exp` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 5;
/// The `token_type` claim of access tokens, as simplejwt names it.
const ACCESS_TOKEN_TYPE: &str = "access";

/// The claims of an access token. Every one is checked on every request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id.
    pub sub: Uuid,
    /// The role at issue time (informational: the edge uses the current role).
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id.
    pub jti: Uuid,
    /// The user's token version at issue time; bumping it revokes the token.
    pub ver: i32,
    /// Always `access`; a refresh token can never pass as an access token.
    pub token_type: String,
}

/// Why a token was refused. Callers answer every case with the same 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Expired.
    #[error("token expired")]
    Expired,
    /// Bad signature, wrong algorithm, wrong issuer or audience, malformed.
    #[error("token invalid: {0}")]
    Invalid(String),
}

/// Signing and verification keys with the validation rules.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// HS256 keys from a shared secret.
    pub fn new(secret: &[u8], issuer: &str, audience: &str, access_ttl_secs: i64) -> Self {
        // Only HS256 is accepted: a token whose header names another
        // algorithm (including "none") fails before its signature is read.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl_secs,
        }
    }

    /// Lifetime of access tokens, in seconds.
    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    /// Issues an access token valid from `now` (seconds since the epoch).
    pub fn issue_access(
        &self,
        user_id: Uuid,
        role: Role,
        token_version: i32,
        now: i64,
    ) -> Result<String, TokenError> {
        let claims = AccessClaims {
            sub: user_id,
            role,
            exp: now + self.access_ttl_secs,
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
            ver: token_version,
            token_type: ACCESS_TOKEN_TYPE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Verifies signature, algorithm, expiry, issuer, audience and type.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?;
        if data.claims.token_type != ACCESS_TOKEN_TYPE {
            return Err(TokenError::Invalid("not an access token".into()));
        }
        // jsonwebtoken checks `iat` only for presence; a token from the
        // future is forged or from a badly wrong clock.
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(i64::MAX);
        if data.claims.iat > now.saturating_add(leeway) {
            return Err(TokenError::Invalid("issued in the future".into()));
        }
        Ok(data.claims)
    }
}

/// A freshly made refresh token: the string handed to the client once, and
/// the digest that is all the database keeps.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// What the client presents.
    pub token: String,
    /// SHA-256 of `token`.
    pub digest: Vec<u8>,
}

impl RefreshToken {
    /// 256 random bits, URL-safe.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let digest = Self::digest(&token);
        Self { token, digest }
    }

    /// The stored form of a presented token. A fast hash is right here: the
    /// token has 256 bits of entropy, so there is nothing to brute-force.
    pub fn digest(token: &str) -> Vec<u8> {
        Sha256::digest(token.as_bytes()).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"unit-test-secret-unit-test-secret";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, "emporium", "emporium-api", 900)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn valid_claims() -> serde_json::Value {
        serde_json::json!({
            "sub": Uuid::new_v4(), "role": "admin", "exp": now() + 600, "iat": now(),
            "iss": "emporium", "aud": "emporium-api", "jti": Uuid::new_v4(), "ver": 0,
            "token_type": "access"
        })
    }

    #[test]
    fn issued_tokens_verify_with_all_claims() {
        let keys = keys();
        let user = Uuid::new_v4();
        let token = keys
            .issue_access(user, Role::Customer, 3, now())
            .expect("sign");
        let claims = keys.verify_access(&token).expect("verify");
        assert_eq!(claims.sub, user);
        assert_eq!(claims.ver, 3);
        assert_eq!(claims.role, Role::Customer);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = keys();
        let token = keys
            .issue_access(Uuid::new_v4(), Role::Customer, 0, now() - 3600)
            .expect("sign");
        assert_eq!(keys.verify_access(&token), Err(TokenError::Expired));
    }

    #[test]
    fn tokens_issued_in_the_future_are_refused() {
        let keys = keys();
        let ahead = keys
            .issue_access(Uuid::new_v4(), Role::Customer, 0, now() + 3600)
            .expect("sign");
        assert!(matches!(
            keys.verify_access(&ahead),
            Err(TokenError::Invalid(_))
        ));
        let within_leeway = keys
            .issue_access(Uuid::new_v4(), Role::Customer, 0, now() + 5)
            .expect("sign");
        assert!(keys.verify_access(&within_leeway).is_ok());
    }

    #[test]
    fn another_key_issuer_or_audience_is_refused() {
        let token = keys()
            .issue_access(Uuid::new_v4(), Role::Admin, 0, now())
            .expect("sign");
        let other_key = TokenKeys::new(
            b"another-secret-another-secret-xx",
            "emporium",
            "emporium-api",
            900,
        );
        let other_iss = TokenKeys::new(SECRET, "someone-else", "emporium-api", 900);
        let other_aud = TokenKeys::new(SECRET, "emporium", "another-api", 900);
        for verifier in [other_key, other_iss, other_aud] {
            assert!(matches!(
                verifier.verify_access(&token),
                Err(TokenError::Invalid(_))
            ));
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(&serde_json::json!({"alg": "none", "typ": "JWT"}));
        let token = format!("{header}.{}.", b64(&valid_claims()));
        assert!(keys().verify_access(&token).is_err());
    }

    #[test]
    fn another_algorithm_with_the_same_key_is_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &valid_claims(),
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign");
        assert!(keys().verify_access(&token).is_err());
    }

    #[test]
    fn tampered_payload_is_refused() {
        let token = keys()
            .issue_access(Uuid::new_v4(), Role::Customer, 0, now())
            .expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = valid_claims();
        claims["role"] = "admin".into();
        let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert!(keys().verify_access(&forged).is_err());
    }

    #[test]
    fn a_token_of_another_type_is_refused() {
        let mut claims = valid_claims();
        claims["token_type"] = "refresh".into();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign");
        assert!(keys().verify_access(&token).is_err());
    }

    #[test]
    fn missing_claims_are_refused() {
        let mut claims = valid_claims();
        claims.as_object_mut().expect("object").remove("aud");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign");
        assert!(keys().verify_access(&token).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_digest_stably() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(RefreshToken::digest(&a.token), a.digest);
        assert_eq!(a.digest.len(), 32);
    }
}
