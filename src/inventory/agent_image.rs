//! Which legacy credential agent a container image runs: the one rule, by the image's repository
//! name, that the loader (which keeps commands only of agents' containers) and the agent
//! detection (`crate::legacy`) share.

/// A legacy agent, as its image names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentImage {
    Kiam,
    Kube2iam,
}

impl AgentImage {
    /// The agent `image` runs, by the last name of its repository (`quay.io/uswitch/kiam:v4.2`,
    /// a mirror's `registry:5000/mirror/kube2iam@sha256:…`); `None` for any other image.
    pub fn of(image: &str) -> Option<AgentImage> {
        let repository = repository(image);
        if repository.ends_with("kube2iam") {
            Some(AgentImage::Kube2iam)
        } else if repository.ends_with("kiam") {
            Some(AgentImage::Kiam)
        } else {
            None
        }
    }
}

/// `quay.io/uswitch/kiam:v4.2@sha256:…` → `quay.io/uswitch/kiam`.
fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::{AgentImage, repository};

    #[test]
    fn repository_drops_tag_and_digest_but_not_port() {
        assert_eq!(
            repository("quay.io/uswitch/kiam:v4.2"),
            "quay.io/uswitch/kiam"
        );
        assert_eq!(repository("jtblin/kube2iam@sha256:abc"), "jtblin/kube2iam");
        assert_eq!(
            repository("registry:5000/kube2iam"),
            "registry:5000/kube2iam"
        );
        assert_eq!(
            repository("registry:5000/mirror/kiam:v3.6"),
            "registry:5000/mirror/kiam"
        );
    }

    #[test]
    fn agents_are_told_by_repository_name() {
        assert_eq!(
            AgentImage::of("quay.io/uswitch/kiam:v4.2"),
            Some(AgentImage::Kiam)
        );
        assert_eq!(
            AgentImage::of("registry:5000/mirror/kube2iam@sha256:abc"),
            Some(AgentImage::Kube2iam)
        );
        assert_eq!(AgentImage::of("nginx:1.27"), None);
        // The tag is not the repository.
        assert_eq!(AgentImage::of("nginx:kiam"), None);
    }
}
