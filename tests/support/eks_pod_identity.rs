//! An EKS Pod Identity test double, because moto implements none of its operations. It serves
//! the five of them as botocore's model of `eks` 2017-11-01 defines them, field by field:
//!
//! - protocol `rest-json`, answered as `application/json`, timestamps as epoch seconds (with
//!   milliseconds), errors with the `x-amzn-errortype` header, the HTTP status of the model's
//!   error shape and a body `{"message", "clusterName"}`;
//! - `CreatePodIdentityAssociation`: `POST /clusters/{name}/pod-identity-associations`, body
//!   `namespace`, `serviceAccount`, `roleArn` (required), `clientRequestToken`, `tags`,
//!   `disableSessionTags`, `targetRoleArn`, `policy`;
//! - `DescribePodIdentityAssociation`: `GET /clusters/{name}/pod-identity-associations/{associationId}`;
//! - `UpdatePodIdentityAssociation`: `POST` on that path, body `roleArn`, `disableSessionTags`,
//!   `targetRoleArn`, `policy` (at least one; each changes only itself, and `modifiedAt`) and
//!   `clientRequestToken`; the namespace, service account and tags cannot change;
//! - `DeletePodIdentityAssociation`: `DELETE` on that path, answering the deleted association;
//! - these four answer `{"association": PodIdentityAssociation}`: `clusterName`, `namespace`,
//!   `serviceAccount`, `roleArn`, `associationArn`
//!   (`arn:aws:eks:<region>:<account>:podidentityassociation/<cluster>/<associationId>`),
//!   `associationId` (`a-` and 17 lowercase alphanumerics), `tags`, `createdAt`, `modifiedAt`,
//!   `ownerArn` (only when an add-on owns it), `disableSessionTags`, `targetRoleArn` and
//!   `externalId` (a UUID made when a target role is set), `policy`;
//! - `ListPodIdentityAssociations`: `GET /clusters/{name}/pod-identity-associations`, query
//!   `namespace`, `serviceAccount` (exact filters), `maxResults` (1 to 100, default 100),
//!   `nextToken` (valid only with the filters it was issued for), answering `associations` of
//!   `PodIdentityAssociationSummary` (`clusterName`, `namespace`, `serviceAccount`,
//!   `associationArn`, `associationId`, `ownerArn`), oldest first, and `nextToken` (null on
//!   the last page, as the model documents; botocore's paginator reads it as the end);
//! - errors: `ResourceNotFoundException` (404) for a cluster not registered in the request's
//!   region or an association not in the cluster; `ResourceInUseException` (409) for a second
//!   association of a namespace and service account in a cluster;
//!   `ResourceLimitExceededException` (400) past the per-cluster limit (5,000 unless a test sets
//!   another); `InvalidParameterException` (400) for a body that is not a JSON object, a member
//!   missing or of the wrong type, a namespace or service account that is not a Kubernetes name,
//!   a `roleArn` or `targetRoleArn` that is not an IAM role ARN, a `policy` that is not JSON or
//!   comes without `disableSessionTags` true (the model's "must be set to true"), tags beyond
//!   the `TagMap` bounds or with the reserved `aws:` prefix, a `maxResults` outside 1 to 100, a
//!   bad `nextToken`, an update that carries nothing to change; `InvalidRequestException` (400)
//!   for a `clientRequestToken` reused with another request (the model names no error for this;
//!   the double's choice). A request matching no operation is `UnknownOperationException` (404).
//!
//! `clientRequestToken` makes create and update idempotent: the same token with the same request
//! answers what the first answered, without a second association or a new `modifiedAt`. An
//! empty `targetRoleArn` or `policy` in an update removes it (the model does not say how one is
//! removed; the double's choice). The region is the request's SigV4 credential scope; every
//! request is recorded. It models nothing else of EKS: `ServerException` is never given, nor are
//! tags changed through `TagResource`, nor are add-ons served (a test makes an add-on's
//! association with `create_owned`), nor is the eventual consistency the operations document.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use regex::Regex;
use serde_json::{Map, Value, json};

use super::loopback::{Answer, LoopbackServer};

/// The associations a cluster may hold unless a test sets another limit (EKS's quota).
pub const DEFAULT_LIMIT: usize = 5_000;

static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([\x21-\x7e]+/)?[A-Za-z0-9_+=,.@-]{1,64}$")
        .expect("a regex")
});
static DNS_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("a regex"));
static DNS_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("a regex")
});

/// A cluster a test registered.
#[derive(Clone, Debug, PartialEq)]
pub struct EksCluster {
    pub name: String,
    pub account: String,
    pub region: String,
    pub arn: String,
}

impl EksCluster {
    /// The ARN of an add-on of this cluster, as EKS writes it (an `ownerArn`).
    pub fn addon_arn(&self, addon: &str) -> String {
        format!(
            "arn:{}:eks:{}:{}:addon/{}/{addon}/{}",
            partition(&self.region),
            self.region,
            self.account,
            self.name,
            uuid(&mut Rng::new())
        )
    }
}

/// An association, with every member of the model's `PodIdentityAssociation`.
#[derive(Clone, Debug, PartialEq)]
pub struct Association {
    pub region: String,
    pub cluster_name: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub association_arn: String,
    pub association_id: String,
    pub tags: BTreeMap<String, String>,
    pub created_at: f64,
    pub modified_at: f64,
    pub owner_arn: Option<String>,
    pub disable_session_tags: bool,
    pub target_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub policy: Option<String>,
    /// The order of creation, which lists follow.
    sequence: u64,
}

impl Association {
    /// As the operations answer it (`PodIdentityAssociation`).
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "clusterName": self.cluster_name,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "roleArn": self.role_arn,
            "associationArn": self.association_arn,
            "associationId": self.association_id,
            "tags": self.tags,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "disableSessionTags": self.disable_session_tags,
        });
        for (key, value) in [
            ("ownerArn", &self.owner_arn),
            ("targetRoleArn", &self.target_role_arn),
            ("externalId", &self.external_id),
            ("policy", &self.policy),
        ] {
            if let Some(value) = value {
                out[key] = json!(value);
            }
        }
        out
    }

    /// As a list answers it (`PodIdentityAssociationSummary`).
    pub fn summary(&self) -> Value {
        let mut out = json!({
            "clusterName": self.cluster_name,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "associationArn": self.association_arn,
            "associationId": self.association_id,
        });
        if let Some(owner) = &self.owner_arn {
            out["ownerArn"] = json!(owner);
        }
        out
    }
}

/// A request as the double received and answered it.
#[derive(Clone, Debug)]
pub struct Call {
    /// The operation's name, or `Unknown`.
    pub operation: &'static str,
    pub method: String,
    pub path: String,
    /// The query, decoded.
    pub query: BTreeMap<String, String>,
    pub region: String,
    /// The body as JSON (a string when it is not JSON, null when empty).
    pub body: Value,
    pub status: u16,
    /// The error type, when it failed.
    pub error: Option<String>,
}

struct State {
    /// (region, name) → cluster.
    clusters: BTreeMap<(String, String), EksCluster>,
    /// associationId → association (in every cluster and region).
    associations: BTreeMap<String, Association>,
    /// (region, cluster, associationId or "", token) → (the request it came with, the answer).
    tokens: BTreeMap<(String, String, String, String), (Value, Value)>,
    limit: usize,
    calls: Vec<Call>,
    sequence: u64,
    rng: Rng,
}

pub struct PodIdentity {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: LoopbackServer,
}

impl PodIdentity {
    pub fn start() -> PodIdentity {
        let state = Arc::new(Mutex::new(State {
            clusters: BTreeMap::new(),
            associations: BTreeMap::new(),
            tokens: BTreeMap::new(),
            limit: DEFAULT_LIMIT,
            calls: Vec::new(),
            sequence: 0,
            rng: Rng::new(),
        }));
        let server = LoopbackServer::serve_http(state.clone(), handle);
        PodIdentity {
            address: server.address,
            state,
            _server: server,
        }
    }

    /// `--endpoint-url` (or `AWS_ENDPOINT_URL_EKS`) for the AWS CLI and the tool.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Registers the cluster `name` of `account` in `region`.
    pub fn add_cluster(&self, region: &str, account: &str, name: &str) -> EksCluster {
        let cluster = EksCluster {
            name: name.to_string(),
            account: account.to_string(),
            region: region.to_string(),
            arn: format!(
                "arn:{}:eks:{region}:{account}:cluster/{name}",
                partition(region)
            ),
        };
        self.lock()
            .clusters
            .insert((region.to_string(), name.to_string()), cluster.clone());
        cluster
    }

    /// Sets how many associations each cluster may hold.
    pub fn set_limit(&self, per_cluster: usize) {
        self.lock().limit = per_cluster;
    }

    /// Creates an association owned by `owner_arn` (as an EKS add-on makes one), with the
    /// checks `CreatePodIdentityAssociation` makes; a refusal is (error type, message).
    pub fn create_owned(
        &self,
        cluster: &EksCluster,
        namespace: &str,
        service_account: &str,
        role_arn: &str,
        owner_arn: &str,
    ) -> Result<Association, (String, String)> {
        let mut input = Map::new();
        input.insert("namespace".into(), json!(namespace));
        input.insert("serviceAccount".into(), json!(service_account));
        input.insert("roleArn".into(), json!(role_arn));
        let mut state = self.lock();
        let answer = create(
            &mut state,
            &cluster.region,
            &cluster.name,
            &input,
            Some(owner_arn),
        )
        .map_err(|refusal| (refusal.kind.to_string(), refusal.message))?;
        let id = answer["association"]["associationId"]
            .as_str()
            .unwrap_or_default();
        state
            .associations
            .get(id)
            .cloned()
            .ok_or_else(|| ("ServerException".to_string(), "not kept".to_string()))
    }

    /// The associations that exist now, oldest first.
    pub fn associations(&self) -> Vec<Association> {
        let mut all: Vec<Association> = self.lock().associations.values().cloned().collect();
        all.sort_by_key(|a| a.sequence);
        all
    }

    /// Every request answered, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The requests of `operation` answered.
    pub fn calls_of(&self, operation: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding it leaves nothing half-changed worth refusing.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn now() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_millis() as f64 / 1000.0
}

/// A small generator for identifiers (splitmix64), seeded by the standard library's hasher.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        Rng(hasher.finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

fn uuid(rng: &mut Rng) -> String {
    let hex = rng.pick(b"0123456789abcdef", 32);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An error answer: the model's error shape and message.
struct Refusal {
    kind: &'static str,
    message: String,
    cluster: Option<String>,
}

fn refuse(kind: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
        cluster: None,
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    refuse("InvalidParameterException", message)
}

/// The HTTP status of each error shape (the model's `error.httpStatusCode`).
fn status_of(kind: &str) -> StatusCode {
    match kind {
        "ResourceNotFoundException" | "UnknownOperationException" => StatusCode::NOT_FOUND,
        "ResourceInUseException" => StatusCode::CONFLICT,
        "ServerException" => StatusCode::INTERNAL_SERVER_ERROR,
        // InvalidParameterException, InvalidRequestException, ResourceLimitExceededException.
        _ => StatusCode::BAD_REQUEST,
    }
}

fn respond(
    status: StatusCode,
    body: &Value,
    error: Option<&str>,
    id: &str,
) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", id);
    if let Some(kind) = error {
        response = response.header("x-amzn-errortype", kind);
    }
    response
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a response of static headers")
}

/// The operations, by method and path.
enum Route {
    Create(String),
    List(String),
    Describe(String, String),
    Update(String, String),
    Delete(String, String),
    Unknown,
}

impl Route {
    fn operation(&self) -> &'static str {
        match self {
            Route::Create(_) => "CreatePodIdentityAssociation",
            Route::List(_) => "ListPodIdentityAssociations",
            Route::Describe(..) => "DescribePodIdentityAssociation",
            Route::Update(..) => "UpdatePodIdentityAssociation",
            Route::Delete(..) => "DeletePodIdentityAssociation",
            Route::Unknown => "Unknown",
        }
    }

    fn cluster(&self) -> Option<&str> {
        match self {
            Route::Create(c) | Route::List(c) => Some(c),
            Route::Describe(c, _) | Route::Update(c, _) | Route::Delete(c, _) => Some(c),
            Route::Unknown => None,
        }
    }
}

fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path.split('/').map(decode).collect();
    let named = |s: &String| !s.is_empty();
    match segments.as_slice() {
        [root, clusters, name, associations]
            if root.is_empty()
                && clusters == "clusters"
                && named(name)
                && associations == "pod-identity-associations" =>
        {
            match *method {
                Method::POST => Route::Create(name.clone()),
                Method::GET => Route::List(name.clone()),
                _ => Route::Unknown,
            }
        }
        [root, clusters, name, associations, id]
            if root.is_empty()
                && clusters == "clusters"
                && named(name)
                && associations == "pod-identity-associations"
                && named(id) =>
        {
            let (name, id) = (name.clone(), id.clone());
            match *method {
                Method::GET => Route::Describe(name, id),
                Method::POST => Route::Update(name, id),
                Method::DELETE => Route::Delete(name, id),
                _ => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    }
}

/// Percent-decodes a path segment or query component (an invalid escape is kept as it is).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (decode(key), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

async fn handle(request: Request<Incoming>, state: Arc<Mutex<State>>) -> Answer {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    // `Credential=<key>/<date>/<region>/eks/aws4_request`.
    let region = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .filter(|r| !r.is_empty())
        .unwrap_or("us-east-1")
        .to_string();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query().unwrap_or_default());
    let route = route(&parts.method, &path);
    let recorded_body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let mut state = lock(&state);
    let request_id = uuid(&mut state.rng);
    let outcome = serve(&mut state, &route, &region, &query, &body);
    let (status, answer, error) = match outcome {
        Ok(answer) => (StatusCode::OK, answer, None),
        Err(refusal) => {
            let mut answer = json!({"message": refusal.message});
            if let Some(cluster) = refusal.cluster.as_deref().or(route.cluster()) {
                answer["clusterName"] = json!(cluster);
            }
            (status_of(refusal.kind), answer, Some(refusal.kind))
        }
    };
    state.calls.push(Call {
        operation: route.operation(),
        method: parts.method.to_string(),
        path,
        query,
        region,
        body: recorded_body,
        status: status.as_u16(),
        error: error.map(str::to_string),
    });
    Ok(respond(status, &answer, error, &request_id))
}

fn serve(
    state: &mut State,
    route: &Route,
    region: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Value, Refusal> {
    match route {
        Route::Create(cluster) => create(state, region, cluster, &object(body)?, None),
        Route::List(cluster) => list(state, region, cluster, query),
        Route::Describe(cluster, id) => {
            let association = find(state, region, cluster, id)?;
            Ok(json!({"association": association.to_json()}))
        }
        Route::Update(cluster, id) => update(state, region, cluster, id, &object(body)?),
        Route::Delete(cluster, id) => {
            find(state, region, cluster, id)?;
            let association = state
                .associations
                .remove(id)
                .ok_or_else(|| refuse("ResourceNotFoundException", "gone"))?;
            Ok(json!({"association": association.to_json()}))
        }
        Route::Unknown => Err(refuse(
            "UnknownOperationException",
            "this double serves the five EKS Pod Identity operations only",
        )),
    }
}

/// The request body, which must be a JSON object (an empty body is an empty object).
fn object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(input)) => Ok(input),
        _ => Err(invalid("The request body is not a JSON object")),
    }
}

/// A string member: absent (or null) is `None`, anything but a string is refused.
fn string(input: &Map<String, Value>, member: &str) -> Result<Option<String>, Refusal> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!("{member} must be a string, not {other}"))),
    }
}

fn required(input: &Map<String, Value>, member: &str) -> Result<String, Refusal> {
    match string(input, member)? {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(invalid(format!("{member} is required"))),
    }
}

fn boolean(input: &Map<String, Value>, member: &str) -> Result<Option<bool>, Refusal> {
    match input.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(format!("{member} must be a boolean, not {other}"))),
    }
}

fn role_arn(member: &str, arn: &str) -> Result<(), Refusal> {
    if ROLE_ARN.is_match(arn) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{member} {arn} is not the ARN of an IAM role"
        )))
    }
}

fn policy(text: &str) -> Result<(), Refusal> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(invalid("policy is not a JSON policy document")),
    }
}

fn tags(input: &Map<String, Value>) -> Result<BTreeMap<String, String>, Refusal> {
    let tags = match input.get("tags") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(tags)) => tags,
        Some(other) => return Err(invalid(format!("tags must be a map, not {other}"))),
    };
    let mut out = BTreeMap::new();
    for (key, value) in tags {
        let Value::String(value) = value else {
            return Err(invalid(format!("the value of tag {key} must be a string")));
        };
        let length = key.chars().count();
        if !(1..=128).contains(&length) || value.chars().count() > 256 {
            return Err(invalid(format!(
                "tag {key}: keys are 1 to 128 characters, values at most 256"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!("tag {key}: the aws: prefix is reserved")));
        }
        out.insert(key.clone(), value.clone());
    }
    if out.len() > 50 {
        return Err(invalid("an association has at most 50 tags"));
    }
    Ok(out)
}

fn cluster<'s>(state: &'s State, region: &str, name: &str) -> Result<&'s EksCluster, Refusal> {
    state
        .clusters
        .get(&(region.to_string(), name.to_string()))
        .ok_or_else(|| Refusal {
            cluster: Some(name.to_string()),
            ..refuse(
                "ResourceNotFoundException",
                format!("No cluster found for name: {name}."),
            )
        })
}

fn find<'s>(
    state: &'s State,
    region: &str,
    cluster_name: &str,
    id: &str,
) -> Result<&'s Association, Refusal> {
    cluster(state, region, cluster_name)?;
    state
        .associations
        .get(id)
        .filter(|a| a.region == region && a.cluster_name == cluster_name)
        .ok_or_else(|| {
            refuse(
                "ResourceNotFoundException",
                format!("No Pod Identity Association found for id: {id}."),
            )
        })
}

/// The request without its token: what a repeated token must come with again.
fn fingerprint(input: &Map<String, Value>) -> Value {
    let mut input = input.clone();
    input.remove("clientRequestToken");
    Value::Object(input)
}

/// The answer to an earlier request of `token`, when there was one.
fn replay(
    state: &State,
    key: &(String, String, String, String),
    input: &Map<String, Value>,
) -> Result<Option<Value>, Refusal> {
    match state.tokens.get(key) {
        None => Ok(None),
        Some((request, answer)) if *request == fingerprint(input) => Ok(Some(answer.clone())),
        Some(_) => Err(refuse(
            "InvalidRequestException",
            format!(
                "The client request token {} was used for another request",
                key.3
            ),
        )),
    }
}

fn create(
    state: &mut State,
    region: &str,
    cluster_name: &str,
    input: &Map<String, Value>,
    owner: Option<&str>,
) -> Result<Value, Refusal> {
    let cluster = cluster(state, region, cluster_name)?.clone();
    let token = string(input, "clientRequestToken")?.filter(|t| !t.is_empty());
    let key = token.map(|t| {
        (
            region.to_string(),
            cluster_name.to_string(),
            String::new(),
            t,
        )
    });
    if let Some(key) = &key
        && let Some(answer) = replay(state, key, input)?
    {
        return Ok(answer);
    }
    let namespace = required(input, "namespace")?;
    let service_account = required(input, "serviceAccount")?;
    let role = required(input, "roleArn")?;
    if namespace.len() > 63 || !DNS_LABEL.is_match(&namespace) {
        return Err(invalid(format!(
            "namespace {namespace} is not a Kubernetes namespace name"
        )));
    }
    if service_account.len() > 253 || !DNS_SUBDOMAIN.is_match(&service_account) {
        return Err(invalid(format!(
            "serviceAccount {service_account} is not a Kubernetes service account name"
        )));
    }
    role_arn("roleArn", &role)?;
    let target = string(input, "targetRoleArn")?.filter(|t| !t.is_empty());
    if let Some(target) = &target {
        role_arn("targetRoleArn", target)?;
    }
    let disable_session_tags = boolean(input, "disableSessionTags")?.unwrap_or(false);
    let policy_text = string(input, "policy")?.filter(|p| !p.is_empty());
    if let Some(text) = &policy_text {
        policy(text)?;
        if !disable_session_tags {
            return Err(invalid(
                "disableSessionTags must be set to true when a policy is given",
            ));
        }
    }
    let tags = tags(input)?;
    let in_cluster = || {
        state
            .associations
            .values()
            .filter(|a| a.region == region && a.cluster_name == cluster_name)
    };
    if let Some(existing) =
        in_cluster().find(|a| a.namespace == namespace && a.service_account == service_account)
    {
        return Err(refuse(
            "ResourceInUseException",
            format!(
                "Association already exists: {} (namespace {namespace}, service account \
                 {service_account})",
                existing.association_id
            ),
        ));
    }
    if in_cluster().count() >= state.limit {
        return Err(refuse(
            "ResourceLimitExceededException",
            format!(
                "Cluster {cluster_name} already has {} Pod Identity associations, its limit",
                state.limit
            ),
        ));
    }
    let id = loop {
        let id = format!(
            "a-{}",
            state.rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789", 17)
        );
        if !state.associations.contains_key(&id) {
            break id;
        }
    };
    let external_id = target.as_ref().map(|_| uuid(&mut state.rng));
    let at = now();
    state.sequence += 1;
    let association = Association {
        region: region.to_string(),
        cluster_name: cluster_name.to_string(),
        namespace,
        service_account,
        role_arn: role,
        association_arn: format!(
            "arn:{}:eks:{region}:{}:podidentityassociation/{cluster_name}/{id}",
            partition(region),
            cluster.account
        ),
        association_id: id.clone(),
        tags,
        created_at: at,
        modified_at: at,
        owner_arn: owner.map(str::to_string),
        disable_session_tags,
        target_role_arn: target,
        external_id,
        policy: policy_text,
        sequence: state.sequence,
    };
    let answer = json!({"association": association.to_json()});
    state.associations.insert(id, association);
    if let Some(key) = key {
        state
            .tokens
            .insert(key, (fingerprint(input), answer.clone()));
    }
    Ok(answer)
}

fn update(
    state: &mut State,
    region: &str,
    cluster_name: &str,
    id: &str,
    input: &Map<String, Value>,
) -> Result<Value, Refusal> {
    let mut association = find(state, region, cluster_name, id)?.clone();
    let token = string(input, "clientRequestToken")?.filter(|t| !t.is_empty());
    let key = token.map(|t| {
        (
            region.to_string(),
            cluster_name.to_string(),
            id.to_string(),
            t,
        )
    });
    if let Some(key) = &key
        && let Some(answer) = replay(state, key, input)?
    {
        return Ok(answer);
    }
    let role = string(input, "roleArn")?;
    let disable_session_tags = boolean(input, "disableSessionTags")?;
    let target = string(input, "targetRoleArn")?;
    let policy_text = string(input, "policy")?;
    if role.is_none() && disable_session_tags.is_none() && target.is_none() && policy_text.is_none()
    {
        return Err(invalid(
            "An update must change at least one of roleArn, targetRoleArn, disableSessionTags \
             and policy",
        ));
    }
    if let Some(role) = role {
        role_arn("roleArn", &role)?;
        association.role_arn = role;
    }
    if let Some(disable) = disable_session_tags {
        association.disable_session_tags = disable;
    }
    match target.as_deref() {
        None => {}
        Some("") => {
            association.target_role_arn = None;
            association.external_id = None;
        }
        Some(target) => {
            role_arn("targetRoleArn", target)?;
            if association.external_id.is_none() {
                association.external_id = Some(uuid(&mut state.rng));
            }
            association.target_role_arn = Some(target.to_string());
        }
    }
    match policy_text.as_deref() {
        None => {}
        Some("") => association.policy = None,
        Some(text) => {
            policy(text)?;
            association.policy = Some(text.to_string());
        }
    }
    if association.policy.is_some() && !association.disable_session_tags {
        return Err(invalid(
            "disableSessionTags must be set to true when a policy is given",
        ));
    }
    // Each update is later than the one before, even within a millisecond.
    association.modified_at = now().max(association.modified_at + 0.001);
    let answer = json!({"association": association.to_json()});
    state.associations.insert(id.to_string(), association);
    if let Some(key) = key {
        state
            .tokens
            .insert(key, (fingerprint(input), answer.clone()));
    }
    Ok(answer)
}

/// A token names the creation order after which the next page starts and the filters it was
/// issued for, hex-encoded to be opaque.
fn token(after: u64, filters: &Value) -> String {
    format!("{after}|{filters}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn untoken(token: &str, filters: &Value) -> Option<u64> {
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (after, issued) = text.split_once('|')?;
    let issued: Value = serde_json::from_str(issued).ok()?;
    (issued == *filters).then(|| after.parse().ok()).flatten()
}

fn list(
    state: &State,
    region: &str,
    cluster_name: &str,
    query: &BTreeMap<String, String>,
) -> Result<Value, Refusal> {
    cluster(state, region, cluster_name)?;
    let max = match query.get("maxResults") {
        None => 100,
        Some(text) => match text.parse::<u64>() {
            Ok(max) if (1..=100).contains(&max) => max as usize,
            _ => {
                return Err(invalid(format!(
                    "maxResults {text} is not between 1 and 100"
                )));
            }
        },
    };
    let namespace = query.get("namespace");
    let service_account = query.get("serviceAccount");
    let filters = json!([namespace, service_account]);
    let after = match query.get("nextToken") {
        None => 0,
        Some(text) => untoken(text, &filters)
            .ok_or_else(|| invalid("The nextToken is not one this list issued"))?,
    };
    let mut matching: Vec<&Association> = state
        .associations
        .values()
        .filter(|a| {
            a.region == region
                && a.cluster_name == cluster_name
                && a.sequence > after
                && namespace.is_none_or(|n| n.as_str() == a.namespace)
                && service_account.is_none_or(|s| s.as_str() == a.service_account)
        })
        .collect();
    matching.sort_by_key(|a| a.sequence);
    let page: Vec<&Association> = matching.iter().take(max).copied().collect();
    let next = match page.last() {
        Some(last) if matching.len() > max => json!(token(last.sequence, &filters)),
        _ => Value::Null,
    };
    Ok(json!({
        "associations": page.iter().map(|a| a.summary()).collect::<Vec<_>>(),
        "nextToken": next,
    }))
}
