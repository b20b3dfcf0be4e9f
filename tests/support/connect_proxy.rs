//! An HTTP CONNECT proxy on 127.0.0.1, as corporate networks put between operators and their
//! clusters (kubeconfig `proxy-url`, `HTTPS_PROXY`): it opens the tunnel each CONNECT asks for,
//! records the authority, and copies bytes both ways; TLS runs end to end through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub struct ConnectProxy {
    pub address: SocketAddr,
    /// The `host:port` of every tunnel opened, in order.
    pub tunnels: Arc<Mutex<Vec<String>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the proxy");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free port on 127.0.0.1");
        let address = listener.local_addr().expect("a bound address");
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
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
                    let mut upstream = tokio::net::TcpStream::connect(target).await.ok()?;
                    seen.lock().ok()?.push(authority);
                    let mut client = client.into_inner();
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .ok()?;
                    tokio::io::copy_bidirectional(&mut client, &mut upstream)
                        .await
                        .ok()
                });
            }
        });
        ConnectProxy {
            address,
            tunnels,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}
