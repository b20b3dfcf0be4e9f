//! A CloudTrail test double, because moto does not implement `LookupEvents`. It serves that one
//! operation as botocore's model of `cloudtrail` 2013-11-01 defines it, field by field:
//!
//! - protocol `json` 1.1: `POST /` with `X-Amz-Target:
//!   com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents` (botocore's
//!   `targetPrefix`; the Rust SDK's Smithy model sends `CloudTrail_20131101.LookupEvents`, and
//!   CloudTrail takes both), answered as
//!   `application/x-amz-json-1.1`, timestamps as epoch seconds, errors as `{"__type", "message"}`;
//! - `LookupEventsRequest`: `LookupAttributes` (at most one item, `AttributeKey` one of the
//!   `LookupAttributeKey` enum), `StartTime`, `EndTime`, `MaxResults` (1 to 50, default 50),
//!   `NextToken` (valid only with the parameters it was issued for);
//! - `LookupEventsResponse`: `Events` (most recent first) of `EventId`, `EventName`, `ReadOnly`,
//!   `AccessKeyId`, `EventTime`, `EventSource`, `Username`, `Resources`, `CloudTrailEvent` (the
//!   record as a JSON string), and `NextToken` while more remain;
//! - the errors the operation declares for bad input (`InvalidLookupAttributesException`,
//!   `InvalidTimeRangeException`, `InvalidMaxResultsException`, `InvalidNextTokenException`),
//!   and `ThrottlingException` for a third request within a second in one region (the documented
//!   limit: two a second per account and region).
//!
//! The region is the request's SigV4 credential scope. It holds only the records a test gives
//! it; it models nothing else of CloudTrail.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::loopback::{Answer, LoopbackServer};

const TARGETS: [&str; 2] = [
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
    "CloudTrail_20131101.LookupEvents",
];
const KEYS: [&str; 8] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

#[derive(Default)]
struct State {
    /// Region → CloudTrail records (as CloudTrail writes them).
    records: BTreeMap<String, Vec<Value>>,
    /// Region → the instants of its recent requests.
    recent: BTreeMap<String, Vec<Instant>>,
    requests: usize,
    throttled: usize,
}

pub struct CloudTrail {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: LoopbackServer,
}

impl CloudTrail {
    pub fn start() -> CloudTrail {
        let state = Arc::new(Mutex::new(State::default()));
        let server = LoopbackServer::serve_http(state.clone(), handle);
        CloudTrail {
            address: server.address,
            state,
            _server: server,
        }
    }

    /// `AWS_ENDPOINT_URL_CLOUDTRAIL` for the tool and the AWS CLI.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Logs `record` in `region`.
    pub fn record(&self, region: &str, record: Value) {
        let mut state = self.state.lock().unwrap();
        state
            .records
            .entry(region.to_string())
            .or_default()
            .push(record);
    }

    /// (requests answered, of which throttled).
    pub fn requests(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.requests, state.throttled)
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a response")
}

fn error(kind: &str, message: &str) -> Response<Full<Bytes>> {
    answer(
        StatusCode::BAD_REQUEST,
        json!({"__type": kind, "message": message}),
    )
}

async fn handle(request: Request<Incoming>, state: Arc<Mutex<State>>) -> Answer {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if parts.method != hyper::Method::POST || !TARGETS.contains(&header("x-amz-target").as_str()) {
        return Ok(error(
            "UnknownOperationException",
            "this double serves LookupEvents only",
        ));
    }
    // `Credential=<key>/<date>/<region>/cloudtrail/aws4_request`.
    let authorization = header("authorization");
    let region = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("us-east-1")
        .to_string();
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return Ok(error("SerializationException", "the body is not JSON"));
    };
    let mut state = state.lock().unwrap();
    state.requests += 1;
    let now = Instant::now();
    let recent = state.recent.entry(region.clone()).or_default();
    recent.retain(|at| now.duration_since(*at).as_millis() < 1000);
    if recent.len() >= 2 {
        state.throttled += 1;
        return Ok(error("ThrottlingException", "Rate exceeded"));
    }
    recent.push(now);
    Ok(match lookup(&input, state.records.get(&region)) {
        Ok(output) => answer(StatusCode::OK, output),
        Err((kind, message)) => error(kind, &message),
    })
}

type Refusal = (&'static str, String);

fn lookup(input: &Value, records: Option<&Vec<Value>>) -> Result<Value, Refusal> {
    let attributes = input["LookupAttributes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if attributes.len() > 1 {
        return Err((
            "InvalidLookupAttributesException",
            "LookupAttributes can contain only one item".into(),
        ));
    }
    let filter = match attributes.first() {
        Some(attribute) => {
            let key = attribute["AttributeKey"].as_str().unwrap_or_default();
            let value = attribute["AttributeValue"].as_str();
            match (KEYS.contains(&key), value) {
                (true, Some(value)) => Some((key.to_string(), value.to_string())),
                _ => {
                    return Err((
                        "InvalidLookupAttributesException",
                        format!("not a lookup attribute: {attribute}"),
                    ));
                }
            }
        }
        None => None,
    };
    let start = input["StartTime"].as_f64().unwrap_or(f64::MIN);
    let end = input["EndTime"].as_f64().unwrap_or(f64::MAX);
    if start > end {
        return Err((
            "InvalidTimeRangeException",
            "StartTime is after EndTime".into(),
        ));
    }
    let max = input["MaxResults"].as_i64().unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err((
            "InvalidMaxResultsException",
            format!("MaxResults {max} is not between 1 and 50"),
        ));
    }
    // A token names its offset and the parameters it was issued for.
    let parameters = json!([attributes, input["StartTime"], input["EndTime"], max]).to_string();
    let offset = match input["NextToken"].as_str() {
        None => 0,
        Some(token) => match token.split_once('|') {
            Some((offset, issued)) if issued == parameters => offset.parse().unwrap_or(usize::MAX),
            _ => {
                return Err((
                    "InvalidNextTokenException",
                    "the token was issued for other parameters".into(),
                ));
            }
        },
    };
    let mut events: Vec<(f64, Value)> = records
        .into_iter()
        .flatten()
        .filter_map(|record| {
            let time = irsa_migrate::time::parse(record["eventTime"].as_str()?)? as f64;
            let event = event(record, time);
            let matches = filter
                .as_ref()
                .is_none_or(|(key, value)| match key.as_str() {
                    "ResourceName" | "ResourceType" => event["Resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r[key.as_str()].as_str() == Some(value)),
                    key => event[key].as_str() == Some(value),
                });
            (matches && time >= start && time <= end).then_some((time, event))
        })
        .collect();
    events.sort_by(|a, b| b.0.total_cmp(&a.0));
    let page: Vec<Value> = events
        .iter()
        .skip(offset)
        .take(max as usize)
        .map(|(_, e)| e.clone())
        .collect();
    let mut output = json!({"Events": page});
    if offset + (max as usize) < events.len() {
        output["NextToken"] = json!(format!("{}|{parameters}", offset + max as usize));
    }
    Ok(output)
}

/// A record as `LookupEvents` returns it.
fn event(record: &Value, time: f64) -> Value {
    let identity = &record["userIdentity"];
    let username = identity["userName"]
        .as_str()
        .or_else(|| identity["sessionContext"]["sessionIssuer"]["userName"].as_str());
    json!({
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "ReadOnly": record["readOnly"].as_bool().unwrap_or(true).to_string(),
        "AccessKeyId": identity["accessKeyId"],
        "EventTime": time,
        "EventSource": record["eventSource"],
        "Username": username,
        "Resources": [{"ResourceType": "AWS::IAM::Role", "ResourceName": record["requestParameters"]["roleArn"]}],
        "CloudTrailEvent": record.to_string(),
    })
}
