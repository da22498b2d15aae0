//! A subscriber for `scripts/load-events.sh`: counts the events it
//! receives and prints the running total every second, as
//! `<unix seconds> <total>`.
//!
//! `event_sink http PORT` is a webhook receiver (HTTP/1.1, keep-alive,
//! answers 204); `event_sink amqp URL EXCHANGE` binds an exclusive queue to
//! the exchange with `#` and consumes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let count = Arc::new(AtomicU64::new(0));
    let reporter = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = chrono::Utc::now().timestamp();
            println!("{now} {}", reporter.load(Ordering::Relaxed));
        }
    });
    match args.get(1).map(String::as_str) {
        Some("http") => http(args.get(2).map_or("9911", String::as_str), count).await,
        Some("amqp") => {
            let url = args
                .get(2)
                .map_or("amqp://guest:guest@127.0.0.1:5672/%2f", String::as_str);
            let exchange = args.get(3).map_or("emporium.events", String::as_str);
            amqp(url, exchange, count).await
        }
        _ => anyhow::bail!("usage: event_sink http PORT | event_sink amqp URL EXCHANGE"),
    }
}

async fn http(port: &str, count: Arc<AtomicU64>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    loop {
        let (mut socket, _) = listener.accept().await?;
        let count = Arc::clone(&count);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut chunk = [0u8; 16 * 1024];
            loop {
                // One request: headers, then Content-Length bytes of body.
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..head_end + length);
                count.fetch_add(1, Ordering::Relaxed);
                if socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn amqp(url: &str, exchange: &str, count: Arc<AtomicU64>) -> anyhow::Result<()> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    while let Some(delivery) = consumer.next().await {
        if delivery.is_ok() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}
