//! Kubernetes access through `kube`: the kubeconfig (`--kubeconfig`, `--context`, `KUBECONFIG`,
//! in-cluster) and the one client every call goes through.
//!
//! Calls are raw requests built by `kube::core::Request`: the tool reads slim types of its own and
//! must not drop fields it does not know when it writes, so typed `k8s-openapi` objects would
//! only cost memory. Where the objects live is `resource`; lists read page by page as the API's
//! own JSON (so live reads, `snapshot --out` and the snapshot loader share one path) are `list`;
//! one object's read and the conditional writes of the live backend are `object`; sending a
//! request and retrying it is `request`; why a call failed is `error`.

mod error;
mod list;
mod object;
mod request;
mod resource;

pub use error::KubeError;
pub use list::Page;
pub use resource::{CONFIG_MAP, Resource, SCANNED};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;

/// How to reach the cluster's API server. `KUBECONFIG` and the in-cluster service account apply
/// when no flag is given, as for kubectl.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster
    /// service account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Objects per list page (`limit`); the API server's `continue` token fetches the rest.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

impl KubeArgs {
    /// The EKS cluster the kubeconfig context points at, when its cluster entry is named by the
    /// cluster's ARN (as `aws eks update-kubeconfig` names it): (region, name).
    pub fn eks_cluster(&self) -> Option<(String, String)> {
        let kubeconfig = match &self.kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path),
            None => kube::config::Kubeconfig::read(),
        }
        .ok()?;
        let context_name = self
            .context
            .clone()
            .or(kubeconfig.current_context.clone())?;
        let context = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context_name)?
            .context
            .as_ref()?;
        eks_cluster_arn(&context.cluster)
    }
}

/// `arn:<partition>:eks:<region>:<account>:cluster/<name>` → (region, name).
fn eks_cluster_arn(text: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "eks", region, _, resource] => {
            let name = resource.strip_prefix("cluster/")?;
            (!region.is_empty() && !name.is_empty()).then(|| (region.to_string(), name.to_string()))
        }
        _ => None,
    }
}

/// One client and the runtime it runs on; every call blocks the caller until it is answered.
pub struct Kube {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    page_size: u32,
    calls: Arc<AtomicUsize>,
    server: String,
}

impl Kube {
    pub fn connect(args: &KubeArgs) -> Result<Kube, KubeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(KubeError::Runtime)?;
        let options = kube::config::KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let config = runtime.block_on(async {
            match (&args.kubeconfig, &args.context) {
                (Some(path), _) => {
                    let file = kube::config::Kubeconfig::read_from(path)
                        .map_err(|e| KubeError::config(Some(path), e))?;
                    kube::Config::from_custom_kubeconfig(file, &options)
                        .await
                        .map_err(|e| KubeError::config(Some(path), e))
                }
                (None, Some(_)) => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| KubeError::config(None, e)),
                (None, None) => kube::Config::infer()
                    .await
                    .map_err(|e| KubeError::config(None, e)),
            }
        })?;
        let server = config.cluster_url.to_string();
        let client = {
            // The client spawns its connection tasks on the current runtime.
            let _guard = runtime.enter();
            kube::Client::try_from(config).map_err(|e| KubeError::config(None, e))?
        };
        Ok(Kube {
            runtime,
            client,
            page_size: args.page_size,
            calls: Arc::new(AtomicUsize::new(0)),
            server,
        })
    }

    /// The API server's URL, for summaries.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// API calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_contexts_name_their_cluster_by_arn() {
        assert_eq!(
            eks_cluster_arn("arn:aws:eks:eu-west-1:111122223333:cluster/prod"),
            Some(("eu-west-1".into(), "prod".into()))
        );
        assert_eq!(eks_cluster_arn("kind-dev"), None);
        assert_eq!(eks_cluster_arn("arn:aws:iam::111122223333:role/prod"), None);
    }
}
