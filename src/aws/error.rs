//! Why a call to AWS failed: the SDK's error kept as the cause, its kind derived once from the
//! answer's status and error code, and the fix the operator can make.

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::call_error::{ErrorKind, chain};

/// Why AWS could not be read or written. The message names the call and the fix.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A call that AWS refused or failed, or that got no answer; `kind` says which, the source
    /// is the SDK's error (its type differs per operation).
    #[error("AWS {operation} failed: {}; {}", chain(.source.as_ref()), fix(.kind))]
    Call {
        operation: &'static str,
        kind: ErrorKind,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A successful answer without what the call returns: the endpoint is not AWS, or not as AWS
    /// answers.
    #[error(
        "AWS {operation} answered without {missing}; check --endpoint-url (or AWS_ENDPOINT_URL): the endpoint does not answer as AWS does"
    )]
    Answer {
        operation: &'static str,
        missing: String,
    },
    /// The SDK's runtime (its worker threads) could not start.
    #[error(
        "cannot start the AWS client runtime: {0}; check the process's limits on threads (ulimit -u) and the free memory"
    )]
    Runtime(#[source] std::io::Error),
    /// A plain-HTTP endpoint off this machine: SigV4 headers and session tokens would cross the
    /// network in clear text.
    #[error(
        "{setting} {url}: plain HTTP would send signed requests and session tokens in clear text; use an https:// endpoint (http:// is accepted only for 127.0.0.1, ::1 and localhost, a test server on this machine)"
    )]
    PlainHttp { setting: String, url: String },
}

impl AwsError {
    /// A failed call of `operation`, its kind read from the answer (none: [`ErrorKind::Other`]).
    pub fn call<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let kind = match error.raw_response() {
            Some(answer) => ErrorKind::from_answer(
                answer.status().as_u16(),
                error.code().and_then(kind_of_code),
            ),
            None => ErrorKind::Other,
        };
        AwsError::Call {
            operation,
            kind,
            source: Box::new(error),
        }
    }

    /// How the call failed; [`ErrorKind::Other`] for what is not a call.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AwsError::Call { kind, .. } => *kind,
            AwsError::Answer { .. } | AwsError::Runtime(_) | AwsError::PlainHttp { .. } => {
                ErrorKind::Other
            }
        }
    }
}

/// The output of a call of `operation`; `None` when the object it reads does not exist.
pub fn found<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result.map_err(|e| AwsError::call(operation, e)) {
        Ok(output) => Ok(Some(output)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the error codes of IAM, STS and EKS name where their HTTP status alone would mislead
/// (IAM throttles with 400, answers a quota with 409) or say less.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "AccessDenied" | "AccessDeniedException" => ErrorKind::Denied,
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch" => ErrorKind::Unauthenticated,
        "NoSuchEntity" | "ResourceNotFoundException" => ErrorKind::NotFound,
        "EntityAlreadyExists" | "ConcurrentModification" => ErrorKind::Conflict,
        "Throttling" | "ThrottlingException" | "TooManyRequestsException" => ErrorKind::Throttled,
        "LimitExceeded" | "DeleteConflict" | "MalformedPolicyDocument" | "InvalidInput" => {
            ErrorKind::Invalid
        }
        _ => return None,
    })
}

/// What the operator can do about a call that failed this way.
fn fix(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Denied => {
            "the credentials may not make this call: grant the IAM permissions of docs/permissions.md, or use credentials that have them (--profile, --account-profile)"
        }
        ErrorKind::Unauthenticated => {
            "AWS did not accept the credentials (expired or unknown): refresh them (for SSO, `aws sso login`), or pass --profile"
        }
        ErrorKind::NotFound => {
            "AWS has no such object for these credentials: check --region and that the credentials are the account's"
        }
        ErrorKind::Conflict => {
            "the object was changed or created by someone else at the same time: run the same command again"
        }
        ErrorKind::Expired => "the answer was out of date: run the same command again",
        ErrorKind::Throttled => {
            "AWS throttled the call through every attempt: run again later, or with a higher --max-attempts"
        }
        ErrorKind::Invalid => "AWS refused the request as it was: its message says which part",
        ErrorKind::Unavailable => "AWS failed to answer: run the same command again later",
        ErrorKind::Other => {
            "no answer from AWS: check the network, the credentials, --region and --endpoint-url"
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::error::ErrorMetadata;
    use aws_sdk_iam::operation::get_role::GetRoleError;

    use super::*;

    fn answered(status: u16, code: &str) -> SdkError<GetRoleError, HttpResponse> {
        let error = GetRoleError::generic(ErrorMetadata::builder().code(code).build());
        let answer = HttpResponse::new(status.try_into().expect("a status"), "".into());
        SdkError::service_error(error, answer)
    }

    #[test]
    fn the_kind_comes_from_the_answers_code_and_status_and_the_message_names_the_fix() {
        let throttled = AwsError::call("iam:GetRole", answered(400, "Throttling"));
        assert_eq!(throttled.kind(), ErrorKind::Throttled);
        assert!(
            throttled.to_string().contains("--max-attempts"),
            "{throttled}"
        );
        let denied = AwsError::call("iam:GetRole", answered(403, "AccessDenied"));
        assert_eq!(denied.kind(), ErrorKind::Denied);
        assert!(denied.to_string().starts_with("AWS iam:GetRole failed: "));
        assert!(std::error::Error::source(&denied).is_some());
        let unknown = AwsError::call("iam:GetRole", answered(404, "SomethingNew"));
        assert_eq!(unknown.kind(), ErrorKind::NotFound);
        let lost: SdkError<GetRoleError, HttpResponse> =
            SdkError::timeout_error(std::io::Error::other("timed out"));
        let lost = AwsError::call("iam:GetRole", lost);
        assert_eq!(lost.kind(), ErrorKind::Other);
        assert!(lost.to_string().contains("timed out"), "{lost}");
    }
}
