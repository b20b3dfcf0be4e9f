//! A server on a free port of 127.0.0.1, on a runtime of its own: it accepts connections and
//! serves each on a task of its own until it is dropped. The test proxies are built on it.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

pub struct LoopbackServer {
    pub address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        // Ends the accept loop and every open connection without waiting for their peers.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl LoopbackServer {
    /// Starts accepting, and runs `serve` on each connection, on `worker_threads` threads.
    pub fn start<Serve, Served>(worker_threads: usize, serve: Serve) -> LoopbackServer
    where
        Serve: Fn(TcpStream) -> Served + Send + 'static,
        Served: Future + Send + 'static,
        Served::Output: Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a free port on 127.0.0.1");
        let address = listener.local_addr().expect("a bound address");
        runtime.spawn(async move {
            loop {
                // A connection that failed before it was accepted ends no other one.
                if let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream));
                }
            }
        });
        LoopbackServer {
            address,
            runtime: Some(runtime),
        }
    }
}
