//! A fault-injecting proxy in front of the real kube-apiserver. The tool reaches the cluster
//! through it, over TLS with the cluster's own serving certificate, so every live run exercises
//! TLS; each request is forwarded unchanged (the tool's bearer token included, so RBAC is the
//! real server's), answered with the real server's response, and recorded.
//!
//! It only adds what the real server cannot be made to do on demand: answer 429 Too Many
//! Requests, answer 410 Expired to a `continue` token (etcd compaction), let another writer edit an object between the tool's read and its write, and drop
//! the connection after a write the server has committed (its answer lost). Nothing here models
//! Kubernetes behaviour: every answer that is not a fault comes from kube-apiserver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;

use super::control_plane::{ControlPlane, run_kubectl};
use super::loopback::LoopbackServer;

/// What another writer does just before the tool's next write to an object arrives.
#[derive(Debug, Clone)]
pub enum Edit {
    /// A JSON merge patch of the object.
    Patch(Value),
    /// Creates the object (it did not exist when the tool read).
    Create(Value),
}

#[derive(Default)]
pub struct Faults {
    /// "METHOD path?query" of every request, in order.
    pub requests: Vec<String>,
    /// Answer this many requests with 429 first, as API priority and fairness does under load.
    pub throttle: usize,
    /// Answer this many requests that carry a `continue` token with 410 Expired, as the server
    /// does once etcd has compacted past the token (every 5 minutes by default).
    pub expire_continue: usize,
    /// (collection path, name, edit): applied through kubectl before the write is forwarded.
    before_next_write: Vec<(String, String, Edit)>,
    /// (method, collection path, name): forwarded, then the connection is dropped unanswered.
    lose_answer: Vec<(Method, String, String)>,
}

pub struct FaultProxy {
    pub address: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    /// Held for as long as the proxy: dropping it stops the proxy.
    _server: LoopbackServer,
}

/// How the proxy reaches the server and edits objects as another writer.
struct Upstream {
    address: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    kubectl: PathBuf,
    admin: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl FaultProxy {
    /// Starts the proxy on a free port of 127.0.0.1 in front of `cluster`'s API server.
    pub fn start(cluster: &ControlPlane) -> FaultProxy {
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cluster.pki("serving.crt"))
                .expect("the serving certificate")
                .collect::<Result<_, _>>()
                .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(cluster.pki("serving.key")).expect("its key");
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("a TLS server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(cluster.pki("ca.crt")).expect("the CA") {
            roots.add(ca.expect("a PEM CA")).expect("a CA certificate");
        }
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let upstream = Arc::new(Upstream {
            address: cluster
                .server
                .trim_start_matches("https://")
                .parse()
                .expect("the API server's address"),
            tls: tokio_rustls::TlsConnector::from(Arc::new(client)),
            kubectl: cluster.kubectl_path().to_path_buf(),
            admin: cluster.admin_kubeconfig(),
        });

        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = faults.clone();
        let server = LoopbackServer::start(2, move |stream| {
            serve(stream, acceptor.clone(), shared.clone(), upstream.clone())
        });
        FaultProxy {
            address: server.address,
            faults,
            _server: server,
        }
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().expect("the proxy's faults")
    }

    /// `https://127.0.0.1:PORT`, the address kubeconfigs point at.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Another writer applies `edit` to `collection/name` just before the tool's next write to
    /// it (patch, delete, or a create of that name) reaches the server.
    pub fn before_next_write(&self, collection: &str, name: &str, edit: Edit) {
        self.faults()
            .before_next_write
            .push((collection.to_string(), name.to_string(), edit));
    }

    /// The next `method` to `collection/name` is committed by the server, and its answer lost:
    /// the connection drops, as after a timeout or a proxy failure.
    pub fn lose_answer_to(&self, method: Method, collection: &str, name: &str) {
        self.faults()
            .lose_answer
            .push((method, collection.to_string(), name.to_string()));
    }

    /// Requests received that start with `prefix` ("METHOD path").
    pub fn requests_to(&self, prefix: &str) -> usize {
        self.faults()
            .requests
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }
}

/// The object a request writes: (collection path, name), the name of a create read from its body.
fn written(method: &Method, path: &str, body: &[u8]) -> Option<(String, String)> {
    match *method {
        Method::POST => {
            let object: Value = serde_json::from_slice(body).ok()?;
            let name = object["metadata"]["name"].as_str()?.to_string();
            Some((path.to_string(), name))
        }
        Method::PATCH | Method::PUT | Method::DELETE => {
            let (collection, name) = path.rsplit_once('/')?;
            Some((collection.to_string(), name.to_string()))
        }
        _ => None,
    }
}

/// Serves one connection: TLS with the cluster's serving certificate, then each HTTP/1.1 request
/// through [`handle`].
async fn serve(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    faults: Arc<Mutex<Faults>>,
    upstream: Arc<Upstream>,
) {
    let Ok(stream) = acceptor.accept(stream).await else {
        return;
    };
    let service = hyper::service::service_fn(move |request| {
        handle(request, faults.clone(), upstream.clone())
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

type ProxyResult = Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>>;

async fn handle(
    request: Request<Incoming>,
    faults: Arc<Mutex<Faults>>,
    upstream: Arc<Upstream>,
) -> ProxyResult {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path().to_string();
    let target = written(&parts.method, &path, &body);
    let (throttled, expired, edit, lose) = {
        let mut faults = faults.lock().expect("the proxy's faults");
        faults.requests.push(format!(
            "{} {}",
            parts.method,
            parts.uri.path_and_query().map_or("", |p| p.as_str())
        ));
        let throttled = faults.throttle > 0;
        faults.throttle = faults.throttle.saturating_sub(1);
        let expired = !throttled
            && faults.expire_continue > 0
            && parts.uri.query().is_some_and(|q| q.contains("continue="));
        if expired {
            faults.expire_continue -= 1;
        }
        let mut edit = None;
        let mut lose = false;
        if let Some((collection, name)) = &target
            && !throttled
        {
            if let Some(i) = faults
                .before_next_write
                .iter()
                .position(|(c, n, _)| c == collection && n == name)
            {
                edit = Some(faults.before_next_write.remove(i));
            }
            if let Some(i) = faults
                .lose_answer
                .iter()
                .position(|(m, c, n)| *m == parts.method && c == collection && n == name)
            {
                faults.lose_answer.remove(i);
                lose = true;
            }
        }
        (throttled, expired, edit, lose)
    };
    if throttled {
        let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#;
        return Ok(Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("content-type", "application/json")
            .header("retry-after", "1")
            .body(Full::new(Bytes::from(status)))?);
    }
    if expired {
        // The server's own words (apiserver storage errors, `NewResourceExpired`).
        let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.","reason":"Expired","code":410}"#;
        return Ok(Response::builder()
            .status(StatusCode::GONE)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(status)))?);
    }
    if let Some((collection, name, edit)) = edit {
        let upstream = upstream.clone();
        tokio::task::spawn_blocking(move || another_writer(&upstream, &collection, &name, &edit))
            .await??;
    }
    let response = forward(&upstream, parts, body).await?;
    if lose {
        return Err("the answer to a committed write is lost".into());
    }
    Ok(response)
}

async fn forward(
    upstream: &Upstream,
    mut parts: hyper::http::request::Parts,
    body: Bytes,
) -> ProxyResult {
    let tcp = TcpStream::connect(upstream.address).await?;
    let name = ServerName::IpAddress(upstream.address.ip().into());
    let tls = upstream.tls.connect(name, tcp).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    parts
        .headers
        .insert(hyper::header::HOST, upstream.address.to_string().parse()?);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Applies `edit` as the cluster admin, with kubectl, as a person or a controller would.
fn another_writer(
    upstream: &Upstream,
    collection: &str,
    name: &str,
    edit: &Edit,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let patch;
    let (args, input) = match edit {
        Edit::Patch(merge) => {
            let (resource, namespace) = resource_of(collection)
                .ok_or_else(|| format!("not a namespaced collection: {collection}"))?;
            patch = (resource, merge.to_string());
            (
                vec![
                    "patch", &patch.0, name, "-n", namespace, "--type", "merge", "-p", &patch.1,
                ],
                None,
            )
        }
        Edit::Create(object) => (
            vec!["create", "--raw", collection, "-f", "-"],
            Some(object.to_string()),
        ),
    };
    let output = run_kubectl(&upstream.kubectl, &upstream.admin, &args, input.as_deref())?;
    if !output.status.success() {
        return Err(format!(
            "another writer's edit of {collection}/{name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// kubectl's name for the resource of a namespaced collection path (`serviceaccounts`,
/// `deployments.apps`) and the namespace: `/api/v1/namespaces/NS/PLURAL` or
/// `/apis/GROUP/VERSION/namespaces/NS/PLURAL`.
fn resource_of(collection: &str) -> Option<(String, &str)> {
    let segments: Vec<&str> = collection.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", _, "namespaces", namespace, plural] => Some((plural.to_string(), namespace)),
        ["apis", group, _, "namespaces", namespace, plural] => {
            Some((format!("{plural}.{group}"), namespace))
        }
        _ => None,
    }
}
