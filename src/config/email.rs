//! Settings of customer mail (`[email]`): how it leaves (`log` or `smtp`),
//! who it is from, where its links point, and how failed sends are retried.

use serde::Deserialize;

/// How mail leaves the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    /// Written to the log (at `info`, target `emporium::mail`) instead of
    /// being sent: development. Production allows it but warns at start.
    Log,
    /// Sent over SMTP to `email.smtp_url`.
    Smtp,
}

/// Customer mail: the durable queue in the notifications database and its
/// sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EmailSettings {
    /// `log` (development default) or `smtp`.
    pub transport: EmailTransport,
    /// The SMTP relay: `smtp://host:port` (plain, for a local relay or a
    /// test server), `smtp://host:port?tls=required` (STARTTLS) or
    /// `smtps://host:465` (TLS from the first byte); user and password may
    /// be given in the URL (`smtp://user:pass@host:587?tls=required`).
    pub smtp_url: String,
    /// The `From` of every mail, e.g. `Emporium <shop@example.com>`.
    pub from: String,
    /// The shop's name as mails say it.
    pub shop_name: String,
    /// Scheme and host of the storefront, for links in mail
    /// (`<public_url>/reset-password?token=…`).
    pub public_url: String,
    /// Sending attempts of one mail before it is `failed` for good.
    pub max_attempts: u32,
    /// Waits after each failed attempt, in milliseconds (jittered ±20 %); the
    /// last one repeats when there are more attempts than entries.
    pub retry_schedule_ms: Vec<u64>,
    /// A claimed mail belongs to its sender this long (then another sender
    /// may claim it: a crash never loses a mail).
    pub lease_secs: u64,
    /// An idle sender looks for due mail this often (new mail wakes it at
    /// once).
    pub poll_interval_ms: u64,
    /// One SMTP conversation longer than this is a failed attempt.
    pub send_timeout_ms: u64,
    /// Sent and failed mails are deleted after this many days.
    pub retention_days: u32,
    /// Set at start-up, never read from files: whether the "log" transport
    /// may write the bodies of mails carrying a one-time token (development
    /// only; elsewhere the log would hold working reset links).
    #[serde(skip)]
    pub log_tokens: bool,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            transport: EmailTransport::Log,
            smtp_url: "smtp://127.0.0.1:25".into(),
            from: "Emporium <no-reply@emporium.test>".into(),
            shop_name: "Emporium".into(),
            public_url: "http://localhost:3000".into(),
            max_attempts: 8,
            retry_schedule_ms: vec![10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000],
            lease_secs: 60,
            poll_interval_ms: 1_000,
            send_timeout_ms: 30_000,
            retention_days: 30,
            log_tokens: false,
        }
    }
}

impl EmailSettings {
    /// Each broken rule of this section, as a sentence saying what to set.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(
                "email.from must be a mailbox such as \"Emporium <shop@example.com>\"".to_owned(),
            );
        }
        let public = url::Url::parse(&self.public_url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !public {
            problems.push(
                "email.public_url must be an http(s) URL such as https://shop.example".to_owned(),
            );
        }
        if self.transport == EmailTransport::Smtp {
            let smtp = url::Url::parse(&self.smtp_url)
                .is_ok_and(|u| matches!(u.scheme(), "smtp" | "smtps") && u.has_host());
            if !smtp {
                problems.push(
                    "email.smtp_url must be an smtp:// or smtps:// URL such as smtp://127.0.0.1:25"
                        .to_owned(),
                );
            }
        }
        if !(1..=50).contains(&self.max_attempts) {
            problems.push("email.max_attempts must be between 1 and 50".to_owned());
        }
        if self.retry_schedule_ms.is_empty() {
            problems.push("email.retry_schedule_ms must list at least one wait".to_owned());
        }
        if self.lease_secs < 1 || self.send_timeout_ms / 1000 >= self.lease_secs {
            problems.push(
                "email.lease_secs must be longer than email.send_timeout_ms (a send must end inside its lease)"
                    .to_owned(),
            );
        }
        if self.poll_interval_ms < 10 {
            problems.push("email.poll_interval_ms must be at least 10".to_owned());
        }
        problems
    }

    /// The wait after failed attempt `attempt` (1-based), before jitter.
    pub fn retry_wait_ms(&self, attempt: u32) -> u64 {
        let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_schedule_ms
            .get(i)
            .or(self.retry_schedule_ms.last())
            .copied()
            .unwrap_or(60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(EmailSettings::default().problems().is_empty());
    }

    #[test]
    fn the_last_wait_repeats() {
        let s = EmailSettings {
            retry_schedule_ms: vec![1, 2],
            ..EmailSettings::default()
        };
        assert_eq!(s.retry_wait_ms(1), 1);
        assert_eq!(s.retry_wait_ms(2), 2);
        assert_eq!(s.retry_wait_ms(9), 2);
    }

    #[test]
    fn bad_values_are_named() {
        let s = EmailSettings {
            transport: EmailTransport::Smtp,
            smtp_url: "http://x".into(),
            from: "not a mailbox".into(),
            public_url: "shop".into(),
            max_attempts: 0,
            ..EmailSettings::default()
        };
        let problems = s.problems().join("\n");
        for key in [
            "email.from",
            "email.public_url",
            "email.smtp_url",
            "email.max_attempts",
        ] {
            assert!(problems.contains(key), "{key} missing from {problems}");
        }
    }
}
