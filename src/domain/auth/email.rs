//! Email validation and normalisation.

use std::str::FromStr;

use email_address::EmailAddress;

use crate::domain::validation::FieldError;

/// Longest address accepted (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;

/// Trims and lower-cases an email and checks it is a deliverable-looking
/// address. Lower-casing the local part is a deliberate choice: no mainstream
/// provider treats it case-sensitively, and two accounts differing only in
/// case are always a mistake.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    let invalid = |message: &str| FieldError {
        field: "email".into(),
        code: "invalid",
        message: message.into(),
    };
    if email.is_empty() {
        return Err(FieldError {
            field: "email".into(),
            code: "required",
            message: "email must not be blank".into(),
        });
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(invalid("email is longer than 254 characters"));
    }
    let parsed =
        EmailAddress::from_str(&email).map_err(|_| invalid("not a valid email address"))?;
    // A dotless domain is legal but never a shopper's real mailbox; refusing
    // it catches typos like "ann@gmailcom".
    let domain = parsed.domain();
    if !domain.contains('.') || domain.starts_with('[') || domain.ends_with('.') {
        return Err(invalid("not a valid email address"));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            normalize_email("  Ann.Lee@Example.COM ").expect("valid"),
            "ann.lee@example.com"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann example@example.com",
            "ann@[127.0.0.1]",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn refuses_overlong_addresses() {
        let long = format!("{}@example.com", "a".repeat(250));
        let err = normalize_email(&long).expect_err("too long");
        assert_eq!(err.code, "invalid");
    }

    #[test]
    fn blank_is_required_not_invalid() {
        assert_eq!(normalize_email(" ").expect_err("blank").code, "required");
    }
}
