//! Why a call to the Kubernetes API failed: kube's error kept as the cause, its kind derived once
//! from the API server's answer, and the fix the operator can make.

use std::path::{Path, PathBuf};

use crate::call_error::{ErrorKind, chain};

/// Why the Kubernetes API could not be reached, read or written. The message names the call and
/// the fix.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable configuration: the kubeconfig (`file`, when one was named) is missing or
    /// broken, its context unknown, and no in-cluster service account stands in.
    #[error(
        "cannot load the Kubernetes configuration: {}{source}; pass --kubeconfig/--context, set KUBECONFIG, or read a snapshot with --snapshot",
        in_file(.file.as_deref())
    )]
    Config {
        file: Option<PathBuf>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A call that the API server refused or failed, or that got no answer; `kind` says which.
    #[error("{}; {}", call_summary(.verb, .path, .source), fix(.kind))]
    Call {
        verb: &'static str,
        path: String,
        kind: ErrorKind,
        /// Boxed: kube's error is large, and every result of a call carries its size.
        #[source]
        source: Box<kube::Error>,
    },
    /// An answer that is not the JSON the API sends.
    #[error(
        "Kubernetes decode {path}: {source}; check that --context names a Kubernetes API server, not a proxy that answers otherwise"
    )]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The client's runtime (its worker threads) could not start.
    #[error(
        "cannot start the Kubernetes client runtime: {0}; check the process's limits on threads (ulimit -u) and the free memory"
    )]
    Runtime(#[source] std::io::Error),
}

impl KubeError {
    /// The configuration (from `file`, when one was named) could not be loaded.
    pub(super) fn config(
        file: Option<&Path>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> KubeError {
        KubeError::Config {
            file: file.map(Path::to_path_buf),
            source: Box::new(source),
        }
    }

    /// A failed `verb` on `path`, its kind read from the API server's answer (none:
    /// [`ErrorKind::Other`]). The Status's `reason` is one per code, so the code decides.
    pub(super) fn call(verb: &'static str, path: &str, source: kube::Error) -> KubeError {
        let kind = match &source {
            kube::Error::Api(answer) => ErrorKind::from_answer(answer.code, None),
            _ => ErrorKind::Other,
        };
        KubeError::Call {
            verb,
            path: path.to_string(),
            kind,
            source: Box::new(source),
        }
    }

    /// How the call failed; [`ErrorKind::Other`] for what is not an answered call.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KubeError::Call { kind, .. } => *kind,
            KubeError::Config { .. } | KubeError::Decode { .. } | KubeError::Runtime(_) => {
                ErrorKind::Other
            }
        }
    }

    /// The failed call and its answer without the fix the message ends with, for a report that
    /// names its own (a list the scan was denied).
    pub fn without_fix(&self) -> String {
        match self {
            KubeError::Call {
                verb, path, source, ..
            } => call_summary(verb, path, source),
            other => other.to_string(),
        }
    }
}

fn in_file(file: Option<&Path>) -> String {
    file.map(|file| format!("{}: ", file.display()))
        .unwrap_or_default()
}

/// The call and the API server's answer as it gave it (`403 Forbidden: …`, which names the verb,
/// resource and namespace RBAC denied), or why there was none.
fn call_summary(verb: &str, path: &str, source: &kube::Error) -> String {
    let answer = match source {
        kube::Error::Api(answer) => {
            format!("{} {}: {}", answer.code, answer.reason, answer.message)
        }
        other => chain(other),
    };
    format!("Kubernetes {verb} {path}: {answer}")
}

/// What the operator can do about a call that failed this way.
fn fix(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Denied => {
            "the credentials may not do this: grant the irsa-migrate-read ClusterRole of docs/permissions.md, and to apply, the plan's irsa-migrate-apply"
        }
        ErrorKind::Unauthenticated => {
            "the API server did not accept the credentials: refresh them (for EKS, `aws eks update-kubeconfig` and the AWS credentials it uses), or pass --kubeconfig/--context"
        }
        ErrorKind::NotFound => {
            "the API server has no such object: check --context (the cluster) and the namespace"
        }
        ErrorKind::Conflict => {
            "the object was changed by someone else at the same time: run the same command again"
        }
        ErrorKind::Expired => {
            "the list changed faster than it could be read page by page: run the same command again, or with a larger --page-size"
        }
        ErrorKind::Throttled => {
            "the API server throttled every attempt: run again when it is less busy"
        }
        ErrorKind::Invalid => "the API server refused the request as it was: its message says why",
        ErrorKind::Unavailable => {
            "the API server failed to answer: run the same command again once it is healthy"
        }
        ErrorKind::Other => {
            "no answer the tool could read: check the network, and that --context names a reachable API server"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: u16, reason: &str) -> KubeError {
        let answer = kube::core::ErrorResponse {
            status: "Failure".into(),
            message: format!("deployments.apps \"web\" is {reason}"),
            reason: reason.into(),
            code,
        };
        KubeError::call(
            "patch",
            "/apis/apps/v1/deployments",
            kube::Error::Api(answer),
        )
    }

    #[test]
    fn the_kind_comes_from_the_answers_code_and_the_message_keeps_the_answer_and_names_the_fix() {
        let denied = answered(403, "Forbidden");
        assert_eq!(denied.kind(), ErrorKind::Denied);
        assert_eq!(
            denied.without_fix(),
            "Kubernetes patch /apis/apps/v1/deployments: 403 Forbidden: deployments.apps \"web\" is Forbidden"
        );
        assert!(
            denied
                .to_string()
                .starts_with(&format!("{}; ", denied.without_fix())),
            "{denied}"
        );
        assert!(
            denied.to_string().contains("irsa-migrate-apply"),
            "{denied}"
        );
        assert!(std::error::Error::source(&denied).is_some());
        assert_eq!(answered(409, "Conflict").kind(), ErrorKind::Conflict);
        assert_eq!(answered(410, "Expired").kind(), ErrorKind::Expired);
        assert!(answered(503, "ServiceUnavailable").kind().is_transient());
        let lost = KubeError::call(
            "get",
            "/api/v1/pods",
            kube::Error::LinesCodecMaxLineLengthExceeded,
        );
        assert_eq!(lost.kind(), ErrorKind::Other);
        assert!(!lost.kind().is_refusal());
    }
}
