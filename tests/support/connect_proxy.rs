//! An HTTP CONNECT proxy on 127.0.0.1, as corporate networks put between operators and their
//! clusters (kubeconfig `proxy-url`, `HTTPS_PROXY`): it opens the tunnel each CONNECT asks for,
//! records the authority, and copies bytes both ways; TLS runs end to end through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::loopback::LoopbackServer;

pub struct ConnectProxy {
    pub address: SocketAddr,
    /// The `host:port` of every tunnel opened, in order.
    pub tunnels: Arc<Mutex<Vec<String>>>,
    /// Held for as long as the proxy: dropping it stops the proxy.
    _server: LoopbackServer,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        let server = LoopbackServer::start(1, move |client| tunnel(client, seen.clone()));
        ConnectProxy {
            address: server.address,
            tunnels,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Reads the CONNECT request of `client`, opens the tunnel it asks for, records its authority in
/// `seen`, and copies bytes both ways until either side closes; `None` when the request is not a
/// CONNECT to this machine's loopback.
async fn tunnel(client: TcpStream, seen: Arc<Mutex<Vec<String>>>) -> Option<(u64, u64)> {
    let mut client = BufReader::new(client);
    let mut request = String::new();
    client.read_line(&mut request).await.ok()?;
    let authority = request
        .strip_prefix("CONNECT ")?
        .split(' ')
        .next()?
        .to_string();
    loop {
        let mut header = String::new();
        client.read_line(&mut header).await.ok()?;
        if header.trim().is_empty() {
            break;
        }
    }
    // Tunnels only to this machine's loopback: nothing else is reached.
    let target: SocketAddr = authority
        .parse()
        .ok()
        .filter(|a: &SocketAddr| a.ip().is_loopback())?;
    let mut upstream = TcpStream::connect(target).await.ok()?;
    seen.lock().ok()?.push(authority);
    let mut client = client.into_inner();
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .ok()?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .ok()
}
