//! A real SMTP server for the mail tests: a small listener on loopback
//! speaking the protocol's core (EHLO/HELO, MAIL, RCPT, DATA with dot
//! un-stuffing, RSET, NOOP, QUIT) and keeping every message it accepts,
//! parsed with `mail-parser`. It can start late (on a port chosen before
//! the instance starts) to play a mail server that is down at first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use emporium::config::{EmailTransport, Settings};
use mail_parser::MessageParser;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::helpers::TestApp;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub from_header: String,
    pub message_id: String,
}

impl Received {
    /// The token after `token=` in the text part's link.
    pub fn link_token(&self) -> String {
        let start = self.text.find("token=").expect("a link with a token") + "token=".len();
        let token: String = self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        url::form_urlencoded::parse(format!("t={token}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .expect("a token")
    }
}

#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// The server: its port and what it has received.
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Inbox>,
}

impl SmtpServer {
    /// A server listening now.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = Self {
            port,
            inbox: Arc::default(),
        };
        server.serve(listener);
        server
    }

    /// A server on a free port that is not listening yet.
    pub fn reserve() -> Self {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        Self {
            port,
            inbox: Arc::default(),
        }
    }

    /// Starts listening on the reserved port.
    pub async fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the reserved port");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let inbox = Arc::clone(&self.inbox);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inbox = Arc::clone(&inbox);
                tokio::spawn(async move {
                    let _ = session(stream, inbox).await;
                });
            }
        });
    }

    /// Settings that send mail here, with quick retries.
    pub fn configure(&self, settings: &mut Settings) {
        settings.email.transport = EmailTransport::Smtp;
        settings.email.smtp_url = format!("smtp://127.0.0.1:{}", self.port);
        settings.email.retry_schedule_ms = vec![200, 300];
        settings.email.poll_interval_ms = 50;
        settings.email.send_timeout_ms = 3_000;
        settings.email.lease_secs = 10;
        settings.email.public_url = "https://shop.example".into();
        settings.events.relay_interval_ms = 50;
    }

    /// An instance mailing here, with `adjust` applied after.
    pub async fn app(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::spawn_with(|s| {
            self.configure(s);
            adjust(s);
        })
        .await
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.inbox.messages.lock().expect("inbox").clone()
    }

    /// The messages to `to`.
    pub fn to(&self, to: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == to))
            .collect()
    }

    /// Waits (at most `within`) until `to` has `count` messages whose
    /// subject contains `subject`; answers the newest.
    pub async fn wait_for(
        &self,
        to: &str,
        subject: &str,
        count: usize,
        within: Duration,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.inbox.arrived.notified();
            let found: Vec<Received> = self
                .to(to)
                .into_iter()
                .filter(|m| m.subject.contains(subject))
                .collect();
            if found.len() >= count {
                return found.last().cloned().expect("a message");
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "no mail {subject:?} #{count} to {to} within {within:?}; got {:?}",
                    self.messages()
                        .iter()
                        .map(|m| (&m.rcpt_to, &m.subject))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn session(stream: TcpStream, inbox: Arc<Inbox>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 emporium-test ESMTP ready\r\n")
        .await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                write
                    .write_all(b"250-emporium-test greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?
            }
            "HELO" => write.write_all(b"250 emporium-test\r\n").await?,
            "MAIL" => {
                mail_from = address_of(&command);
                rcpt_to.clear();
                write.write_all(b"250 OK\r\n").await?;
            }
            "RCPT" => {
                rcpt_to.push(address_of(&command));
                write.write_all(b"250 OK\r\n").await?;
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if lines.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" || raw == b".\n" {
                        break;
                    }
                    // Dot un-stuffing (RFC 5321 §4.5.2).
                    let raw = if raw.starts_with(b"..") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    data.extend_from_slice(raw);
                }
                let received = parse(&mail_from, &rcpt_to, &data);
                inbox.messages.lock().expect("inbox").push(received);
                inbox.arrived.notify_waiters();
                write.write_all(b"250 OK: queued\r\n").await?;
            }
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                write.write_all(b"250 OK\r\n").await?;
            }
            "NOOP" => write.write_all(b"250 OK\r\n").await?,
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"502 Command not implemented\r\n").await?,
        }
    }
}

/// `user@host` of `MAIL FROM:<user@host> …` or `RCPT TO:<user@host>`.
fn address_of(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}

fn parse(mail_from: &str, rcpt_to: &[String], data: &[u8]) -> Received {
    let message = MessageParser::default()
        .parse(data)
        .expect("a parseable message");
    let from_header = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    Received {
        mail_from: mail_from.to_owned(),
        rcpt_to: rcpt_to.to_vec(),
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        from_header,
        message_id: message.message_id().unwrap_or_default().to_owned(),
    }
}
