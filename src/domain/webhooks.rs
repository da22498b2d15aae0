//! Webhook subscriptions' rules, with no I/O: the Standard Webhooks
//! signature scheme (so subscribers verify with the specification's own
//! libraries), signing secrets, the retry schedule, delivery states, and
//! which target addresses a delivery may connect to (SSRF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of a signing secret, as Standard Webhooks writes them.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new signing secret.
const SECRET_BYTES: usize = 32;

/// A new signing secret, `whsec_<base64 of 32 random bytes>`.
pub fn new_secret() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of a `whsec_…` secret (the base64-decoded part), or `None`
/// for a malformed one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// One `v1,<base64>` signature of `body` as delivery `msg_id` at
/// `timestamp`: HMAC-SHA256 over `"{msg_id}.{timestamp}.{body}"`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated
/// (during a secret rotation both the new and the old secret sign, so a
/// subscriber holding either verifies).
pub fn signature_header(keys: &[Vec<u8>], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| sign(k, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `header` holds a valid signature of `body` with `key` (what a
/// subscriber checks; used by the tests' receivers and the docs' example).
pub fn verify(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected = sign(key, msg_id, timestamp, body);
    header.split(' ').any(|candidate| {
        use subtle::ConstantTimeEq as _;
        candidate.len() == expected.len()
            && bool::from(candidate.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not yet answered with a 2xx; due at its next attempt.
    Pending,
    /// A 2xx came back.
    Succeeded,
    /// Every attempt of the schedule failed, or its endpoint was disabled.
    Failed,
}

impl DeliveryStatus {
    /// The stored and sent name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// What happens after attempt `attempt` (1-based) failed, given the
/// waits of `schedule`: `Some(wait)` before the next attempt (jittered by
/// `unit` in [0, 1) to ±20 %, so a subscriber coming back is not hit by
/// every retry at once), or `None` when the schedule is spent.
pub fn retry_after(schedule: &[u64], attempt: u32, unit: f64) -> Option<Duration> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let base = *schedule.get(index)?;
    let factor = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    Some(Duration::from_millis(base).mul_f64(factor))
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL is not a valid absolute URL")]
    Malformed,
    #[error("webhook URLs must use https")]
    NotHttps,
    #[error("the URL must not carry credentials")]
    Credentials,
    #[error("the address {0} is not a public address")]
    NotPublic(IpAddr),
}

/// Checks a subscription's URL as written: https (or http to loopback when
/// `allow_loopback_http`), no credentials, and no literal address that is
/// not public. Names are checked again after DNS, at every delivery.
pub fn check_url(url: &url::Url, allow_loopback_http: bool) -> Result<(), TargetError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = url.host().ok_or(TargetError::Malformed)?;
    let literal = match host {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http => {
            let loopback_name =
                matches!(host, url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost"));
            if !loopback_name && !literal.is_some_and(|a| a.is_loopback()) {
                return Err(TargetError::NotHttps);
            }
        }
        _ => return Err(TargetError::NotHttps),
    }
    match literal {
        Some(addr) if !address_allowed(addr, allow_loopback_http) => {
            Err(TargetError::NotPublic(addr))
        }
        _ => Ok(()),
    }
}

/// Whether a delivery may connect to `addr`: only public unicast
/// addresses, plus loopback when `allow_loopback` (development and tests).
/// Private, link-local (cloud metadata at 169.254.169.254), shared
/// (100.64/10), unspecified, broadcast, multicast and documentation ranges
/// are refused, and an IPv4 address inside IPv6 is judged as IPv4.
pub fn address_allowed(addr: IpAddr, allow_loopback: bool) -> bool {
    match addr {
        IpAddr::V4(a) => v4_allowed(a, allow_loopback),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4_allowed(v4, allow_loopback),
            None => v6_allowed(a, allow_loopback),
        },
    }
}

fn v4_allowed(a: Ipv4Addr, allow_loopback: bool) -> bool {
    if a.is_loopback() {
        return allow_loopback;
    }
    let [b0, b1, ..] = a.octets();
    let shared = b0 == 100 && (64..128).contains(&b1);
    let benchmarking = b0 == 198 && (b1 == 18 || b1 == 19);
    let reserved = b0 >= 240;
    let this_network = b0 == 0;
    !(a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || shared
        || benchmarking
        || reserved
        || this_network)
}

fn v6_allowed(a: Ipv6Addr, allow_loopback: bool) -> bool {
    if a.is_loopback() {
        return allow_loopback;
    }
    let seg = a.segments();
    let first = seg[0];
    let [.., c, d, e, f] = a.octets();
    // Forms that carry an IPv4 address are judged by it: NAT64
    // (64:ff9b::/96) and the deprecated IPv4-compatible ::a.b.c.d.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (seg[..6] == [0; 6] && !a.is_unspecified()) {
        return v4_allowed(Ipv4Addr::new(c, d, e, f), false);
    }
    // 6to4 (2002::/16) embeds its IPv4 address in the next 32 bits.
    if first == 0x2002 {
        let [b0, b1] = seg[1].to_be_bytes();
        let [b2, b3] = seg[2].to_be_bytes();
        return v4_allowed(Ipv4Addr::new(b0, b1, b2, b3), false);
    }
    let unique_local = (first & 0xfe00) == 0xfc00;
    let link_local = (first & 0xffc0) == 0xfe80;
    let site_local = (first & 0xffc0) == 0xfec0;
    let documentation = first == 0x2001 && seg[1] == 0x0db8;
    // Local-use NAT64 (64:ff9b:1::/48) may lead anywhere inside.
    let local_nat64 = first == 0x64 && seg[1] == 0xff9b && seg[2] == 1;
    !(a.is_unspecified()
        || a.is_multicast()
        || unique_local
        || link_local
        || site_local
        || documentation
        || local_nat64)
}

/// Most event types one subscription may name.
pub const MAX_EVENT_TYPES: usize = 64;

/// A subscription's event list, checked: each entry a known type name or
/// `"*"`, at least one, no repeats (dropped, order kept).
pub fn check_event_types(types: &[String]) -> Result<Vec<String>, String> {
    if types.is_empty() {
        return Err("name at least one event type, or \"*\" for every type".into());
    }
    if types.len() > MAX_EVENT_TYPES {
        return Err(format!("at most {MAX_EVENT_TYPES} event types"));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if t != "*" && crate::domain::events::EventType::parse(t).is_none() {
            return Err(format!("unknown event type {t:?} (see docs/EVENTS.md)"));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// At most `max` bytes of a response body, cut at a character boundary,
/// for the deliveries log.
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]).into_owned();
    text.trim_end_matches('\u{FFFD}').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The specification's published example.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &sig
        ));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            body,
            &sig
        ));
    }

    #[test]
    fn a_rotation_header_carries_both_signatures() {
        let (old, new) = (new_secret(), new_secret());
        let keys = [
            secret_key(&new).expect("new"),
            secret_key(&old).expect("old"),
        ];
        let header = signature_header(&keys, "id", 7, b"{}");
        assert!(verify(&keys[0], "id", 7, b"{}", &header));
        assert!(verify(&keys[1], "id", 7, b"{}", &header));
        let other = secret_key(&new_secret()).expect("other");
        assert!(!verify(&other, "id", 7, b"{}", &header));
    }

    #[test]
    fn new_secrets_are_prefixed_and_decode_to_32_bytes() {
        let s = new_secret();
        assert!(s.starts_with(SECRET_PREFIX));
        assert_eq!(secret_key(&s).expect("decodes").len(), 32);
        assert_ne!(s, new_secret());
    }

    #[test]
    fn the_schedule_is_walked_then_spent() {
        let schedule = [5_000, 300_000];
        assert_eq!(retry_after(&schedule, 1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(
            retry_after(&schedule, 2, 0.0),
            Some(Duration::from_secs(240))
        );
        assert_eq!(retry_after(&schedule, 3, 0.5), None);
        assert_eq!(retry_after(&schedule, 0, 0.5), None);
    }

    proptest! {
        #[test]
        fn jitter_stays_within_a_fifth(base in 1u64..100_000_000, unit in 0.0f64..1.0) {
            let wait = retry_after(&[base], 1, unit).expect("first retry");
            let ms = wait.as_secs_f64() * 1000.0;
            prop_assert!(ms >= base as f64 * 0.8 - 1.0 && ms <= base as f64 * 1.2 + 1.0);
        }
    }

    #[test]
    fn only_public_addresses_are_allowed() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "::169.254.169.254",
            "::10.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::1",
            "fec0::1",
            "::",
        ];
        for a in refused {
            let addr: IpAddr = a.parse().expect("address");
            assert!(!address_allowed(addr, false), "{a} must be refused");
        }
        for a in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let addr: IpAddr = a.parse().expect("address");
            assert!(address_allowed(addr, false), "{a} must be allowed");
        }
        assert!(address_allowed("127.0.0.1".parse().expect("addr"), true));
        assert!(!address_allowed("10.0.0.1".parse().expect("addr"), true));
    }

    #[test]
    fn urls_must_be_https_unless_loopback_is_allowed() {
        let url = |s: &str| url::Url::parse(s).expect("url");
        assert_eq!(
            check_url(&url("https://hooks.example.com/x"), false),
            Ok(())
        );
        assert_eq!(
            check_url(&url("http://hooks.example.com/x"), false),
            Err(TargetError::NotHttps)
        );
        assert_eq!(
            check_url(&url("http://127.0.0.1:9000/x"), false),
            Err(TargetError::NotHttps)
        );
        assert_eq!(check_url(&url("http://127.0.0.1:9000/x"), true), Ok(()));
        assert_eq!(
            check_url(&url("http://hooks.example.com/x"), true),
            Err(TargetError::NotHttps)
        );
        assert!(matches!(
            check_url(&url("https://169.254.169.254/latest"), true),
            Err(TargetError::NotPublic(_))
        ));
        assert_eq!(
            check_url(&url("https://u:p@hooks.example.com/"), false),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            check_url(&url("ftp://x.example/"), true),
            Err(TargetError::NotHttps)
        );
    }

    #[test]
    fn event_lists_name_known_types_or_everything() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_event_types(&list(&["order.paid", "*", "order.paid"])),
            Ok(list(&["order.paid", "*"]))
        );
        assert!(check_event_types(&[]).is_err());
        assert!(check_event_types(&list(&["order.shipped"])).is_err());
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(b"hello", 3), "hel");
        assert_eq!(excerpt("é".as_bytes(), 1), "");
    }
}
