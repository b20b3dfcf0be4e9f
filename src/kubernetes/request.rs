//! One raw request, sent through the client and retried with backoff while the API server
//! throttles or is briefly unavailable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::KubeError;

/// Attempts per call when the API server throttles (429) or is briefly unavailable (5xx).
const ATTEMPTS: u32 = 5;

pub(super) fn parse(path: &str, text: &str) -> Result<Value, KubeError> {
    serde_json::from_str(text).map_err(|source| KubeError::Decode {
        path: path.to_string(),
        source,
    })
}

/// One request, retried with exponential backoff while the server throttles or is unavailable.
pub(super) async fn call(
    client: &kube::Client,
    calls: &AtomicUsize,
    verb: &'static str,
    path: &str,
    request: impl Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<String, KubeError> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let built =
            request().map_err(|e| KubeError::call(verb, path, kube::Error::BuildRequest(e)))?;
        calls.fetch_add(1, Ordering::Relaxed);
        let error = match client.request_text(built).await {
            Ok(text) => return Ok(text),
            Err(e) => KubeError::call(verb, path, e),
        };
        if !error.kind().is_transient() || attempt >= ATTEMPTS {
            return Err(error);
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
        attempt += 1;
    }
}
