//! A server on a free port of 127.0.0.1, on a runtime of its own: it accepts connections and
//! serves each on a task of its own until it is dropped. The test proxies and doubles are built
//! on it.

use std::future::Future;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// What a double's request handler answers.
pub type Answer = Result<Response<Full<Bytes>>, hyper::Error>;

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

impl LoopbackServer {
    /// Serves plain HTTP/1 (a service's double): each request is answered by `handle`, given a
    /// clone of `state`.
    pub fn serve_http<State, Handle, Handled>(state: State, handle: Handle) -> LoopbackServer
    where
        State: Clone + Send + Sync + 'static,
        Handle: Fn(Request<Incoming>, State) -> Handled + Copy + Send + Sync + 'static,
        Handled: Future<Output = Answer> + Send + 'static,
    {
        LoopbackServer::start(1, move |stream| {
            let state = state.clone();
            async move {
                let service =
                    hyper::service::service_fn(move |request| handle(request, state.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        })
    }
}
