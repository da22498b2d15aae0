//! Customer mail as content: which mails there are, what each one says
//! (minijinja templates, a text and an HTML part, embedded in the binary),
//! and how an event's payload becomes a mail. Rendering is pure; queuing
//! and sending are the notifications actor's.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use iso_currency::Currency;
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::events::{FulfilmentData, OrderData, RefundData};

/// One kind of mail. The wire name is stored with each queued mail; with
/// the id of what caused it, it makes the mail unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// On registration: welcome, and confirm the address.
    Welcome,
    /// A verification mail asked for again.
    VerifyEmail,
    /// A password-reset link.
    PasswordReset,
    /// `order.created`: lines, totals, address.
    OrderConfirmation,
    /// `fulfilment.shipped`: the parcel and its tracking.
    OrderShipped,
    /// `refund.succeeded`.
    RefundIssued,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [MailKind; 6] = [
        MailKind::Welcome,
        MailKind::VerifyEmail,
        MailKind::PasswordReset,
        MailKind::OrderConfirmation,
        MailKind::OrderShipped,
        MailKind::RefundIssued,
    ];

    /// The stored name, also the templates' base name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Welcome => "welcome",
            MailKind::VerifyEmail => "verify_email",
            MailKind::PasswordReset => "password_reset",
            MailKind::OrderConfirmation => "order_confirmation",
            MailKind::OrderShipped => "order_shipped",
            MailKind::RefundIssued => "refund_issued",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the mail carries a secret (a token): its body is erased
    /// from the queue once it is sent or given up.
    pub fn carries_secret(self) -> bool {
        matches!(
            self,
            MailKind::Welcome | MailKind::VerifyEmail | MailKind::PasswordReset
        )
    }
}

/// What every mail knows about the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub shop: String,
    /// The storefront, without a trailing slash.
    pub public_url: String,
}

impl Brand {
    /// A brand for `shop` at `public_url` (a trailing slash is dropped).
    pub fn new(shop: &str, public_url: &str) -> Self {
        Self {
            shop: shop.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `<public_url><path>?token=<token>`, the token URL-encoded.
    pub fn token_link(&self, path: &str, token: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        format!("{}{path}?token={encoded}", self.public_url)
    }

    fn order_url(&self, order_id: Uuid) -> String {
        format!("{}/orders/{order_id}", self.public_url)
    }
}

/// A mail carrying a single-use token (welcome, verification, reset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenMail {
    pub name: String,
    pub link: String,
    pub token: String,
    /// How long the token lasts, in words ("30 minutes").
    pub valid_for: String,
}

/// One line of an order confirmation, amounts formatted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineMail {
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i32,
    pub unit_price: String,
    pub total: String,
}

/// An order confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderMail {
    pub order_ref: String,
    pub placed: String,
    pub lines: Vec<LineMail>,
    pub subtotal: String,
    /// `None` when there was no discount.
    pub discount: Option<String>,
    pub shipping: String,
    pub tax: String,
    pub total: String,
    pub address: Vec<String>,
    pub order_url: String,
}

/// A line of a parcel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParcelLine {
    pub name: String,
    pub quantity: i32,
}

/// A parcel has shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippedMail {
    pub order_ref: String,
    pub lines: Vec<ParcelLine>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub order_url: String,
}

/// A refund went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundMail {
    pub order_ref: String,
    pub amount: String,
    pub order_url: String,
}

/// A mail's content before rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Mail {
    Welcome(TokenMail),
    VerifyEmail(TokenMail),
    PasswordReset(TokenMail),
    OrderConfirmation(OrderMail),
    OrderShipped(ShippedMail),
    RefundIssued(RefundMail),
}

impl Mail {
    /// The kind of this mail.
    pub fn kind(&self) -> MailKind {
        match self {
            Mail::Welcome(_) => MailKind::Welcome,
            Mail::VerifyEmail(_) => MailKind::VerifyEmail,
            Mail::PasswordReset(_) => MailKind::PasswordReset,
            Mail::OrderConfirmation(_) => MailKind::OrderConfirmation,
            Mail::OrderShipped(_) => MailKind::OrderShipped,
            Mail::RefundIssued(_) => MailKind::RefundIssued,
        }
    }

    fn context(&self) -> Result<serde_json::Value, RenderError> {
        let data = match self {
            Mail::Welcome(m) | Mail::VerifyEmail(m) | Mail::PasswordReset(m) => {
                serde_json::to_value(m)
            }
            Mail::OrderConfirmation(m) => serde_json::to_value(m),
            Mail::OrderShipped(m) => serde_json::to_value(m),
            Mail::RefundIssued(m) => serde_json::to_value(m),
        };
        data.map_err(|e| RenderError(e.to_string()))
    }
}

/// A mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A template failed to render: a bug in a template or its data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail template failed: {0}")]
pub struct RenderError(pub String);

/// Every template, embedded: `<kind>.subject.txt`, `<kind>.txt`,
/// `<kind>.html`, and the HTML layout.
const TEMPLATES: [(&str, &str); 19] = [
    ("layout.html", include_str!("templates/layout.html")),
    (
        "welcome.subject.txt",
        include_str!("templates/welcome.subject.txt"),
    ),
    ("welcome.txt", include_str!("templates/welcome.txt")),
    ("welcome.html", include_str!("templates/welcome.html")),
    (
        "verify_email.subject.txt",
        include_str!("templates/verify_email.subject.txt"),
    ),
    (
        "verify_email.txt",
        include_str!("templates/verify_email.txt"),
    ),
    (
        "verify_email.html",
        include_str!("templates/verify_email.html"),
    ),
    (
        "password_reset.subject.txt",
        include_str!("templates/password_reset.subject.txt"),
    ),
    (
        "password_reset.txt",
        include_str!("templates/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("templates/password_reset.html"),
    ),
    (
        "order_confirmation.subject.txt",
        include_str!("templates/order_confirmation.subject.txt"),
    ),
    (
        "order_confirmation.txt",
        include_str!("templates/order_confirmation.txt"),
    ),
    (
        "order_confirmation.html",
        include_str!("templates/order_confirmation.html"),
    ),
    (
        "order_shipped.subject.txt",
        include_str!("templates/order_shipped.subject.txt"),
    ),
    (
        "order_shipped.txt",
        include_str!("templates/order_shipped.txt"),
    ),
    (
        "order_shipped.html",
        include_str!("templates/order_shipped.html"),
    ),
    (
        "refund_issued.subject.txt",
        include_str!("templates/refund_issued.subject.txt"),
    ),
    (
        "refund_issued.txt",
        include_str!("templates/refund_issued.txt"),
    ),
    (
        "refund_issued.html",
        include_str!("templates/refund_issued.html"),
    ),
];

/// The template environment, built once. HTML templates are auto-escaped
/// (by their `.html` name); text parts and subjects are not.
fn environment() -> Result<&'static Environment<'static>, RenderError> {
    static ENV: OnceLock<Result<Environment<'static>, RenderError>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // HTML parts escape the five characters that matter in text and
        // quoted attributes, and leave `/` alone so links read as links.
        env.set_formatter(|out, state, value| {
            if state.auto_escape() == minijinja::AutoEscape::Html
                && !value.is_safe()
                && !value.is_undefined()
                && !value.is_none()
            {
                let text = value.to_string();
                out.write_str(&escape_html(&text)).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| RenderError(format!("{name}: {e}")))?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders `mail`'s subject, text and HTML parts.
pub fn render(mail: &Mail, brand: &Brand) -> Result<Rendered, RenderError> {
    let env = environment()?;
    let mut context = mail.context()?;
    if let Some(map) = context.as_object_mut() {
        map.insert("shop".into(), brand.shop.clone().into());
        map.insert("public_url".into(), brand.public_url.clone().into());
    }
    let kind = mail.kind().as_str();
    let part = |suffix: &str| -> Result<String, RenderError> {
        let name = format!("{kind}.{suffix}");
        env.get_template(&name)
            .and_then(|t| t.render(&context))
            .map_err(|e| RenderError(format!("{name}: {e:#}")))
    };
    let subject = part("subject.txt")?;
    // A header is one line: a newline in a subject could smuggle headers.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Rendered {
        subject,
        text: part("txt")?,
        html: part("html")?,
    })
}

/// `minor` units of `currency` as people write them: `12.34 EUR`,
/// `1200 JPY`, `-0.50 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    let exponent = Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    if exponent == 0 {
        return format!("{minor} {currency}");
    }
    let scale = 10_i64.saturating_pow(u32::from(exponent));
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$} {currency}",
        abs / scale,
        abs % scale,
        width = usize::from(exponent)
    )
}

/// A token's lifetime in words.
pub fn duration_words(minutes: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if minutes % (24 * 60) == 0 && minutes >= 24 * 60 {
        plural(minutes / (24 * 60), "day")
    } else if minutes % 60 == 0 && minutes >= 60 {
        plural(minutes / 60, "hour")
    } else {
        plural(minutes, "minute")
    }
}

/// The short reference of an order people read and quote.
pub fn order_ref(order_id: Uuid) -> String {
    order_id.simple().to_string()[..8].to_uppercase()
}

/// The lines of a postal address from an order's address snapshot,
/// blank parts left out.
pub fn address_lines(address: &serde_json::Value) -> Vec<String> {
    let get = |key: &str| {
        address
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    let city_line = [get("postal_code"), get("city"), get("region")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    [
        get("name"),
        get("line1"),
        get("line2"),
        city_line,
        get("country"),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

fn placed(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The confirmation of `order`.
pub fn order_confirmation(order: &OrderData, brand: &Brand) -> Mail {
    let c = order.currency.as_str();
    Mail::OrderConfirmation(OrderMail {
        order_ref: order_ref(order.order_id),
        placed: placed(order.created_at),
        lines: order
            .lines
            .iter()
            .map(|l| LineMail {
                name: l.name.clone(),
                sku: l.sku.clone().filter(|s| !s.is_empty()),
                quantity: l.quantity,
                unit_price: money(l.unit_price, c),
                total: money(l.line_total, c),
            })
            .collect(),
        subtotal: money(order.subtotal, c),
        discount: (order.discount != 0).then(|| money(order.discount, c)),
        shipping: money(order.shipping, c),
        tax: money(order.tax, c),
        total: money(order.total, c),
        address: address_lines(&order.shipping_address),
        order_url: brand.order_url(order.order_id),
    })
}

/// The notice that `parcel` of `order` has shipped.
pub fn order_shipped(parcel: &FulfilmentData, order: &OrderData, brand: &Brand) -> Mail {
    let lines = parcel
        .lines
        .iter()
        .map(|p| ParcelLine {
            name: order
                .lines
                .iter()
                .find(|l| l.line_id == p.line_id)
                .map_or_else(|| "Item".to_owned(), |l| l.name.clone()),
            quantity: p.quantity,
        })
        .collect();
    let nonblank = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    Mail::OrderShipped(ShippedMail {
        order_ref: order_ref(order.order_id),
        lines,
        carrier: nonblank(&parcel.carrier),
        tracking_number: nonblank(&parcel.tracking_number),
        tracking_url: nonblank(&parcel.tracking_url),
        order_url: brand.order_url(order.order_id),
    })
}

/// The notice that `refund` went through.
pub fn refund_issued(refund: &RefundData, brand: &Brand) -> Mail {
    Mail::RefundIssued(RefundMail {
        order_ref: order_ref(refund.order_id),
        amount: money(refund.amount, &refund.currency),
        order_url: brand.order_url(refund.order_id),
    })
}

/// A token mail of `kind` (welcome, verification or reset) to `name`.
pub fn token_mail(
    kind: MailKind,
    name: &str,
    token: &str,
    valid_minutes: i64,
    brand: &Brand,
) -> Option<Mail> {
    let path = match kind {
        MailKind::PasswordReset => "/reset-password",
        MailKind::Welcome | MailKind::VerifyEmail => "/verify-email",
        _ => return None,
    };
    let name = if name.trim().is_empty() {
        "there".to_owned()
    } else {
        name.trim().to_owned()
    };
    let mail = TokenMail {
        name,
        link: brand.token_link(path, token),
        token: token.to_owned(),
        valid_for: duration_words(valid_minutes),
    };
    Some(match kind {
        MailKind::PasswordReset => Mail::PasswordReset(mail),
        MailKind::Welcome => Mail::Welcome(mail),
        _ => Mail::VerifyEmail(mail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{LineQuantityData, OrderLineData};

    fn brand() -> Brand {
        Brand::new("Emporium", "https://shop.example/")
    }

    fn order() -> OrderData {
        let line = Uuid::new_v4();
        OrderData {
            order_id: Uuid::parse_str("8d0b1c2e-0000-4000-8000-000000000001").expect("uuid"),
            customer_id: Some(Uuid::new_v4()),
            email: None,
            status: "pending".into(),
            currency: "EUR".into(),
            subtotal: 2500,
            discount: 250,
            shipping: 490,
            tax: 475,
            total: 3215,
            refunded_amount: 0,
            lines: vec![OrderLineData {
                line_id: line,
                product_id: Uuid::new_v4(),
                variant_id: Uuid::new_v4(),
                sku: Some("MUG-1".into()),
                name: "Mug <Deluxe> & Co".into(),
                quantity: 2,
                unit_price: 1250,
                line_total: 2500,
            }],
            shipping_address: serde_json::json!({
                "name": "Ada Lovelace", "line1": "1 Analytical St", "line2": "",
                "city": "London", "region": "", "postal_code": "N1 1AA", "country": "GB",
                "phone": "+44"
            }),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn money_follows_the_currency_minor_units() {
        assert_eq!(money(1234, "EUR"), "12.34 EUR");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-50, "EUR"), "-0.50 EUR");
        assert_eq!(money(1200, "JPY"), "1200 JPY");
        assert_eq!(money(1234, "BHD"), "1.234 BHD");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(30), "30 minutes");
        assert_eq!(duration_words(1), "1 minute");
        assert_eq!(duration_words(60), "1 hour");
        assert_eq!(duration_words(48 * 60), "2 days");
        assert_eq!(duration_words(90), "90 minutes");
    }

    #[test]
    fn every_kind_has_its_three_parts() {
        let b = brand();
        let o = order();
        let parcel = FulfilmentData {
            fulfilment_id: Uuid::new_v4(),
            order_id: o.order_id,
            status: "shipped".into(),
            location_id: Uuid::new_v4(),
            carrier: Some("DHL".into()),
            tracking_number: Some("TRACK123".into()),
            tracking_url: Some("https://track.example/TRACK123".into()),
            lines: vec![LineQuantityData {
                line_id: o.lines[0].line_id,
                quantity: 1,
            }],
        };
        let refund = RefundData {
            refund_id: Some(Uuid::new_v4()),
            payment_id: Uuid::new_v4(),
            order_id: o.order_id,
            amount: 1250,
            currency: "EUR".into(),
            return_id: None,
        };
        let mails = [
            token_mail(MailKind::Welcome, "Ada", "tok", 2880, &b).expect("welcome"),
            token_mail(MailKind::VerifyEmail, "Ada", "tok", 2880, &b).expect("verify"),
            token_mail(MailKind::PasswordReset, "Ada", "tok", 30, &b).expect("reset"),
            order_confirmation(&o, &b),
            order_shipped(&parcel, &o, &b),
            refund_issued(&refund, &b),
        ];
        for mail in &mails {
            let r = render(mail, &b).expect("renders");
            assert!(!r.subject.is_empty() && !r.subject.contains('\n'));
            assert!(r.text.contains("Emporium"), "{:?}", mail.kind());
            assert!(r.html.starts_with("<!DOCTYPE html>"), "{:?}", mail.kind());
            assert!(r.html.contains("https://shop.example"));
        }
        let kinds: Vec<MailKind> = mails.iter().map(Mail::kind).collect();
        assert_eq!(kinds, MailKind::ALL);
    }

    #[test]
    fn a_reset_mail_carries_the_link_and_the_token() {
        let b = brand();
        let mail = token_mail(MailKind::PasswordReset, "", "a+b/c", 30, &b).expect("reset");
        let r = render(&mail, &b).expect("renders");
        let link = "https://shop.example/reset-password?token=a%2Bb%2Fc";
        assert!(r.text.contains(link), "{}", r.text);
        assert!(r.text.contains("a+b/c"));
        assert!(r.text.contains("30 minutes"));
        assert!(r.text.contains("Hello there"));
        assert!(r.html.contains(&format!("href=\"{link}\"")), "{}", r.html);
        assert_eq!(r.subject, "Reset your Emporium password");
    }

    #[test]
    fn html_escapes_what_customers_wrote_and_text_keeps_it() {
        let b = brand();
        let r = render(&order_confirmation(&order(), &b), &b).expect("renders");
        assert!(r.html.contains("Mug &lt;Deluxe&gt; &amp; Co"));
        assert!(!r.html.contains("<Deluxe>"));
        let evil = Brand::new("\"><script>", "https://shop.example");
        let r = render(&order_confirmation(&order(), &evil), &evil).expect("renders");
        assert!(r.html.contains("&quot;&gt;&lt;script&gt;") && !r.html.contains("<script>"));
        assert!(r.text.contains("2 x Mug <Deluxe> & Co (MUG-1)"));
        assert!(r.text.contains("Total: 32.15 EUR"));
        assert!(r.text.contains("Discount: -2.50 EUR"));
        assert!(r
            .text
            .contains("Ada Lovelace\n1 Analytical St\nN1 1AA London\nGB"));
        assert!(r.subject.contains("8D0B1C2E"));
    }

    #[test]
    fn a_shipped_mail_names_the_parcel_lines_and_tracking() {
        let b = brand();
        let o = order();
        let parcel = FulfilmentData {
            fulfilment_id: Uuid::new_v4(),
            order_id: o.order_id,
            status: "shipped".into(),
            location_id: Uuid::new_v4(),
            carrier: None,
            tracking_number: Some("TRACK123".into()),
            tracking_url: None,
            lines: vec![LineQuantityData {
                line_id: o.lines[0].line_id,
                quantity: 1,
            }],
        };
        let r = render(&order_shipped(&parcel, &o, &b), &b).expect("renders");
        assert!(r.text.contains("1 x Mug <Deluxe> & Co"));
        assert!(r.text.contains("Tracking number: TRACK123"));
        assert!(!r.text.contains("Carrier:"));
    }

    #[test]
    fn a_subject_is_one_line_whatever_the_data() {
        let b = Brand::new("Evil\r\nBcc: x@y.z", "https://shop.example");
        let mail = token_mail(MailKind::PasswordReset, "Ada", "t", 30, &b).expect("reset");
        let r = render(&mail, &b).expect("renders");
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
    }

    #[test]
    fn kinds_read_back_from_their_names() {
        for k in MailKind::ALL {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MailKind::parse("spam"), None);
        assert!(MailKind::PasswordReset.carries_secret());
        assert!(!MailKind::OrderConfirmation.carries_secret());
    }

    #[test]
    fn address_lines_skip_blanks() {
        let lines = address_lines(
            &serde_json::json!({"name": "A", "line1": "B", "city": "C", "country": "FR"}),
        );
        assert_eq!(lines, ["A", "B", "C", "FR"]);
        assert!(address_lines(&serde_json::Value::Null).is_empty());
    }
}
