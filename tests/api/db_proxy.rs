//! A TCP proxy in front of PostgreSQL that a test can cut and restore, so
//! that one instance's database "goes down" without touching the server
//! every other test shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The proxy: connections are forwarded while it is up; cutting it closes
/// every open connection and refuses new ones until it is restored.
pub struct DbProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl DbProxy {
    /// Listens on a free local port and forwards to `target` (host:port).
    pub async fn start(target: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up_, links_) = (Arc::clone(&up), Arc::clone(&links));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up_.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links_.lock().expect("links").push(link.abort_handle());
            }
        })
        .abort_handle();
        Self {
            port,
            up,
            links,
            accept,
        }
    }

    /// A URL for database `name` through the proxy.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The database goes away: open connections drop, new ones are refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    /// The database is back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }
}
