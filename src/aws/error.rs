//! Why a call to AWS failed.

/// Why AWS could not be read or written. The message names the call.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("AWS {operation} failed: {message}")]
    Call {
        operation: &'static str,
        message: String,
    },
    #[error("cannot start the AWS client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A plain-HTTP endpoint off this machine: SigV4 headers and session tokens would cross the
    /// network in clear text.
    #[error(
        "{setting} {url}: plain HTTP would send signed requests and session tokens in clear text; use an https:// endpoint (http:// is accepted only for 127.0.0.1, ::1 and localhost, a test server on this machine)"
    )]
    PlainHttp { setting: String, url: String },
}

impl AwsError {
    pub fn call(operation: &'static str, error: impl std::error::Error) -> AwsError {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        AwsError::Call { operation, message }
    }
}
