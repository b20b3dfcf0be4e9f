//! This cluster's pods by address: which pod, if any, a legacy role session came from. A session
//! no pod explains came from outside the cluster (another cluster sharing the kiam server or node
//! role, software on a host), so its principal keeps its trust (docs/evidence.md).

use std::collections::BTreeMap;

use crate::inventory::Pod;
use crate::inventory::trail::TrailEvent;

/// The running pods of one cluster, by IP address; empty when none are known (a source without
/// pods, which cannot tell this cluster's sessions from another's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pods {
    /// IP → `namespace/name` of the pods at it (pods on the host's network share its address).
    by_ip: BTreeMap<String, Vec<String>>,
    /// kube2iam's session prefix → the IP it hashes.
    by_session: BTreeMap<String, String>,
}

impl Pods {
    /// `(ip, namespace/name)` of each running pod.
    pub fn new(pods: impl IntoIterator<Item = (String, String)>) -> Pods {
        let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (ip, pod) in pods {
            by_ip.entry(ip).or_default().push(pod);
        }
        let by_session = by_ip
            .keys()
            .map(|ip| (format!("{:x}", fnv1a_32(ip)), ip.clone()))
            .collect();
        Pods { by_ip, by_session }
    }

    /// The inventory's pods that run (a finished pod calls nothing) and have an address.
    pub fn of(pods: &[Pod]) -> Pods {
        Pods::new(pods.iter().filter(|p| !p.is_finished()).filter_map(|p| {
            let ip = p.ip.clone()?;
            Some((ip, format!("{}/{}", p.namespace, p.metadata.name)))
        }))
    }

    /// Whether any pod is known: without them no session can be told to be another cluster's.
    pub fn known(&self) -> bool {
        !self.by_ip.is_empty()
    }

    /// The pod(s) `event` came from: the one kube2iam's session name hashes the address of
    /// (`<FNV-1a of the pod's IP, in hex>-<role name>`, kube2iam `iam/iam.go`), else the one at
    /// its source address (STS reached through a VPC endpoint sees pod addresses; through a NAT
    /// gateway, not).
    pub fn named_by(&self, event: &TrailEvent) -> Option<String> {
        let hashed = event
            .session_name
            .split_once('-')
            .and_then(|(hash, _)| self.by_session.get(hash));
        let ip = hashed.map(String::as_str).or_else(|| {
            self.by_ip
                .contains_key(&event.source_ip)
                .then_some(event.source_ip.as_str())
        })?;
        let pods = self.by_ip.get(ip)?;
        Some(match &pods[..] {
            [pod] => format!("pod {pod} at {ip}"),
            pods => format!("one of pods {} at {ip}", pods.join(", ")),
        })
    }
}

/// 32-bit FNV-1a, as Go's `hash/fnv.New32a`.
fn fnv1a_32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::trail::Caller;

    fn session(name: &str, source_ip: &str) -> TrailEvent {
        TrailEvent {
            id: "1".into(),
            name: crate::inventory::trail::ASSUME_ROLE.into(),
            time: 0,
            region: "us-east-1".into(),
            role_arn: "arn:aws:iam::111122223333:role/payments-worker".into(),
            session_name: name.into(),
            source_ip: source_ip.into(),
            caller: Caller::RoleSession {
                issuer: "arn:aws:iam::111122223333:role/eks-node".into(),
            },
        }
    }

    #[test]
    fn kube2iam_session_names_hash_the_pod_ip_as_go_does() {
        // Go: fmt.Sprintf("%x", fnv.New32a() over "10.1.7.23").
        assert_eq!(format!("{:x}", fnv1a_32("10.1.7.23")), "3caf57bb");
        assert_eq!(format!("{:x}", fnv1a_32("10.0.3.4")), "1e4b0437");
    }

    #[test]
    fn a_session_is_traced_by_the_address_it_hashes_or_comes_from() {
        let pods = Pods::new([
            ("10.1.7.23".to_string(), "payments/worker-x2".to_string()),
            (
                "10.0.12.7".to_string(),
                "kube-system/kiam-server-1".to_string(),
            ),
            (
                "10.0.12.7".to_string(),
                "kube-system/kube-proxy-a".to_string(),
            ),
        ]);
        assert_eq!(
            pods.named_by(&session("3caf57bb-payments-worker", "198.51.100.7")),
            Some("pod payments/worker-x2 at 10.1.7.23".to_string())
        );
        assert_eq!(
            pods.named_by(&session("kiam-kiam", "10.0.12.7")),
            Some(
                "one of pods kube-system/kiam-server-1, kube-system/kube-proxy-a at 10.0.12.7"
                    .to_string()
            )
        );
        assert_eq!(pods.named_by(&session("kiam-kiam", "10.9.9.9")), None);
        assert_eq!(pods.named_by(&session("1e4b0437-payments", "")), None);
        assert!(pods.known());
        assert!(!Pods::default().known());
    }
}
