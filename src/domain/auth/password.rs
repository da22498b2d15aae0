//! Password policy and argon2id hashing. Hashing is CPU-bound: callers run it
//! off the async threads.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

use crate::domain::validation::FieldError;

/// Shortest accepted password, in characters (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters; bounds hashing work per request.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Checks a new password against the length policy. `field` names the
/// request field in the error (`password` or `new_password`).
pub fn check_password_policy(field: &str, password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    let error = |code, message: String| FieldError {
        field: field.into(),
        code,
        message,
    };
    if chars < MIN_PASSWORD_CHARS {
        return Err(error(
            "too_short",
            format!("password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(error(
            "too_long",
            format!("password must have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.trim().is_empty() {
        return Err(error("blank", "password must not be only spaces".into()));
    }
    Ok(())
}

/// argon2id with OWASP's recommended parameters, plus a decoy hash so that
/// logins for unknown emails cost as much as real ones.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    decoy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher(argon2id)")
    }
}

impl PasswordHasher {
    /// argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's first recommendation).
    pub fn new() -> anyhow::Result<Self> {
        let params = Params::new(19 * 1024, 2, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self {
            argon2,
            decoy_hash: String::new(),
        };
        hasher.decoy_hash = hasher.hash("decoy password for unknown accounts")?;
        Ok(hasher)
    }

    /// Hashes a password into a PHC string carrying its own salt and parameters.
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    }

    /// Whether `password` matches `phc`. A malformed stored hash never matches.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon2
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one verification and returns false: used when the
    /// account does not exist, so that timing does not reveal it.
    pub fn verify_decoy(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.decoy_hash);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds_length_in_characters() {
        assert_eq!(
            check_password_policy("password", "short")
                .expect_err("short")
                .code,
            "too_short"
        );
        assert!(check_password_policy("password", "long enough").is_ok());
        // Eight multi-byte characters are eight characters.
        assert!(check_password_policy("password", "ééééééék").is_ok());
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            check_password_policy("new_password", &long)
                .expect_err("long")
                .field,
            "new_password"
        );
        assert_eq!(
            check_password_policy("password", "          ")
                .expect_err("blank")
                .code,
            "blank"
        );
    }

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let hasher = PasswordHasher::new().expect("params are valid");
        let a = hasher.hash("correct horse").expect("hash");
        let b = hasher.hash("correct horse").expect("hash");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", &a));
        assert!(!hasher.verify("wrong horse", &a));
        assert!(!hasher.verify("correct horse", "not a phc string"));
        assert!(!hasher.verify_decoy("decoy password for unknown accounts"));
    }
}
