//! A real HTTP receiver for webhook tests: a TCP listener speaking
//! HTTP/1.1 (one request per connection), recording what it was sent and
//! answering with a status the test sets, or not at all while "down".

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub body: String,
    pub at: Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// Whether its signature verifies with `secret` (Standard Webhooks).
    pub fn verifies_with(&self, secret: &str) -> bool {
        let key = emporium::domain::webhooks::secret_key(secret).expect("a whsec_ secret");
        let ts: i64 = self.timestamp.parse().expect("a unix timestamp");
        emporium::domain::webhooks::verify(
            &key,
            &self.webhook_id,
            ts,
            self.body.as_bytes(),
            &self.signature,
        )
    }
}

/// The receiver.
pub struct Receiver {
    pub port: u16,
    status: Arc<AtomicU16>,
    down: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Received>>>,
    accept: AbortHandle,
}

impl Receiver {
    /// Listens on a free loopback port, answering 200.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let status = Arc::new(AtomicU16::new(200));
        let down = Arc::new(AtomicBool::new(false));
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (status_, down_, received_) = (
            Arc::clone(&status),
            Arc::clone(&down),
            Arc::clone(&received),
        );
        let accept = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (status, down, received) = (
                    Arc::clone(&status_),
                    Arc::clone(&down_),
                    Arc::clone(&received_),
                );
                tokio::spawn(async move {
                    if down.load(Ordering::SeqCst) {
                        // A subscriber that is down: the connection is
                        // reset without an answer.
                        let _ = socket.set_zero_linger();
                        return;
                    }
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    let code = status.load(Ordering::SeqCst);
                    // Every attempt is recorded, whatever it is answered.
                    received.lock().expect("received").push(request);
                    let body = format!("answered {code}");
                    let reply = format!(
                        "HTTP/1.1 {code} Test\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            port,
            status,
            down,
            received,
            accept: accept.abort_handle(),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers `code` from now on.
    pub fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    /// Drops every connection unanswered (true) or answers again (false).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `check` holds for the requests to `path`, or fails
    /// after `within`.
    pub async fn wait_for(
        &self,
        path: &str,
        within: Duration,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests_to(path);
            if check(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get what was expected at {path}: {} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split("\r\n").next()?.split(' ').nth(1)?.to_owned();
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    let (webhook_id, timestamp, signature, content_type) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        header("content-type"),
    );
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Some(Received {
        path,
        webhook_id,
        timestamp,
        signature,
        content_type,
        body,
        at: Instant::now(),
    })
}
