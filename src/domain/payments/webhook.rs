//! Webhook signatures as Stripe makes them: header
//! `Emporium-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, where each `v1` is
//! HMAC-SHA256 of `"<t>.<raw body>"` with a webhook secret. Several `v1`
//! values let a provider sign with an old and a new secret while they are
//! rotated; the endpoint accepts any of its own secrets.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature is refused. All are answered the same 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// The `v1` signature of `body` at `timestamp` with `secret`, in hex.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A header value for `body` signed with each of `secrets` at `timestamp`.
pub fn header(secrets: &[&[u8]], timestamp: i64, body: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret, timestamp, body));
    }
    value
}

/// Verifies `header` over the raw `body` against any of `secrets`, at
/// `now`, allowing `tolerance_secs` of age or clock skew either way. The
/// comparison is constant-time (`Mac::verify_slice`).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            // Other schemes (v0, future ones) are ignored, as Stripe does.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let matches = secrets.iter().any(|secret| {
        signatures
            .iter()
            .any(|sig| mac(secret, timestamp, body).verify_slice(sig).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"charge.succeeded"}"#;

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        let h = header(&[b"whsec_a"], NOW, BODY);
        assert_eq!(verify(Some(&h), BODY, &[b"whsec_a"], NOW, 300), Ok(()));
        let tampered = br#"{"id":"evt_1","type":"charge.refunded"}"#;
        assert_eq!(
            verify(Some(&h), tampered, &[b"whsec_a"], NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&h), BODY, &[b"whsec_b"], NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_v1_and_any_own_secret_count_during_rotation() {
        let h = header(&[b"old", b"new"], NOW, BODY);
        assert_eq!(verify(Some(&h), BODY, &[b"new"], NOW, 300), Ok(()));
        assert_eq!(verify(Some(&h), BODY, &[b"old"], NOW, 300), Ok(()));
        let only_new = header(&[b"new"], NOW, BODY);
        assert_eq!(
            verify(Some(&only_new), BODY, &[b"old", b"new"], NOW, 300),
            Ok(())
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let old = header(&[b"s"], NOW - 301, BODY);
        assert_eq!(
            verify(Some(&old), BODY, &[b"s"], NOW, 300),
            Err(SignatureError::Stale)
        );
        let future = header(&[b"s"], NOW + 301, BODY);
        assert_eq!(
            verify(Some(&future), BODY, &[b"s"], NOW, 300),
            Err(SignatureError::Stale)
        );
        let edge = header(&[b"s"], NOW - 300, BODY);
        assert_eq!(verify(Some(&edge), BODY, &[b"s"], NOW, 300), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        assert_eq!(
            verify(None, BODY, &[b"s"], NOW, 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=abc,v1=00",
            "v1=00",
            &format!("t={NOW}"),
            &format!("t={NOW},v1=zz"),
        ] {
            assert_eq!(
                verify(Some(bad), BODY, &[b"s"], NOW, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
