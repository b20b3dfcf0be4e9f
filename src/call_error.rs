//! What a failed call to AWS or the Kubernetes API means to the code above it: the kind callers
//! branch on ([`ErrorKind`]), derived once from the peer's answer, with the one rule of whether a
//! failed write can have been made ([`ErrorKind::is_refusal`]); and a cause chain in one line,
//! for messages.

/// How a call failed, as its answer says: callers decide on this, never on message text or
/// status numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller may not make the call (403; AWS `AccessDenied`): a permission is missing.
    Denied,
    /// The credentials were not accepted (401; AWS `ExpiredToken`, `InvalidClientTokenId`).
    Unauthenticated,
    /// The object does not exist (404; AWS `NoSuchEntity`).
    NotFound,
    /// The object changed since it was read, or exists already (409: a failed precondition;
    /// AWS `EntityAlreadyExists`, `ConcurrentModification`).
    Conflict,
    /// A list's `continue` token is older than the API server's last compaction (410).
    Expired,
    /// Too many calls (429; AWS `Throttling`).
    Throttled,
    /// Any other refusal (400, 422, ...; AWS `MalformedPolicyDocument`, `LimitExceeded`): the
    /// request itself was not acceptable.
    Invalid,
    /// The server answered that it failed (a 5xx, or any answer outside 4xx).
    Unavailable,
    /// No answer the tool could read: the connection failed or timed out, the answer was not
    /// what the API sends, or the request could not be made.
    Other,
}

impl ErrorKind {
    /// The kind of an answer with HTTP status `status`. `named` is what the answer's own error
    /// code names, when the caller knows it (IAM answers throttling as 400 `Throttling` and
    /// expired credentials as 403 `ExpiredToken`); it refines a refusal only, so a 4xx stays a
    /// refusal and anything else stays a failure, whatever the code says.
    pub fn from_answer(status: u16, named: Option<ErrorKind>) -> ErrorKind {
        if !(400..500).contains(&status) {
            return ErrorKind::Unavailable;
        }
        if let Some(kind) = named.filter(|kind| kind.is_refusal()) {
            return kind;
        }
        match status {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            410 => ErrorKind::Expired,
            429 => ErrorKind::Throttled,
            _ => ErrorKind::Invalid,
        }
    }

    /// Whether the peer answered that it did not make the call (a 4xx): a refused write was
    /// not made. Without an answer, or with a 5xx, a write may have been committed.
    pub fn is_refusal(self) -> bool {
        !matches!(self, ErrorKind::Unavailable | ErrorKind::Other)
    }

    /// Whether the same call may succeed if it is made again a little later.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Unavailable)
    }
}

/// An error and its causes in one line, `: `-separated: the SDKs' top-level messages ("service
/// error", "dispatch failure") say nothing without them.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn a_4xx_is_a_refusal_whatever_its_code_names_and_nothing_else_is() {
        assert_eq!(ErrorKind::from_answer(403, None), ErrorKind::Denied);
        assert_eq!(ErrorKind::from_answer(409, None), ErrorKind::Conflict);
        assert_eq!(ErrorKind::from_answer(422, None), ErrorKind::Invalid);
        assert_eq!(
            ErrorKind::from_answer(400, Some(ErrorKind::Throttled)),
            ErrorKind::Throttled
        );
        // A code cannot make a refusal of a failure, nor a failure of a refusal.
        assert_eq!(
            ErrorKind::from_answer(503, Some(ErrorKind::Throttled)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            ErrorKind::from_answer(400, Some(ErrorKind::Other)),
            ErrorKind::Invalid
        );
        for status in [400, 401, 403, 404, 409, 410, 422, 429] {
            assert!(
                ErrorKind::from_answer(status, None).is_refusal(),
                "{status}"
            );
        }
        for status in [500, 502, 503, 504] {
            let kind = ErrorKind::from_answer(status, None);
            assert!(!kind.is_refusal() && kind.is_transient(), "{status}");
        }
        assert!(!ErrorKind::Other.is_refusal());
    }
}
