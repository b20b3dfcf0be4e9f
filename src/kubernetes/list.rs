//! Lists read page by page, following `continue` tokens: every kind the scanner needs, a few kinds
//! at once, and one namespace's objects of a kind.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use kube::core::Request;
use kube::core::params::{GetParams, ListParams};
use serde_json::Value;

use super::request::{call, parse};
use super::{CONFIG_MAP, Kube, KubeError, Resource, SCANNED};
use crate::call_error::ErrorKind;
use crate::inventory::Unreadable;

/// Lists of different kinds read at once: enough to hide latency, few enough not to be
/// throttled by API priority and fairness.
const CONCURRENT_LISTS: usize = 4;

/// One list page as the API server sent it.
pub struct Page {
    pub resource: Resource,
    pub number: usize,
    pub text: String,
}

/// A read the API server refused (403 Forbidden), in RBAC's terms: `deployments.apps`.
fn denied(
    verb: &str,
    resource: Resource,
    namespace: Option<&str>,
    error: &KubeError,
) -> Unreadable {
    let group = resource
        .api_version
        .rsplit_once('/')
        .map(|(group, _)| group);
    Unreadable {
        verb: verb.to_string(),
        resource: match group {
            Some(group) => format!("{}.{group}", resource.plural),
            None => resource.plural.to_string(),
        },
        namespace: namespace.map(str::to_string),
        message: error.without_fix(),
    }
}

impl Kube {
    /// Reads every object of every kind the scanner needs, page by page, a few kinds at once;
    /// `on_page` sees each page as its kind's list ends (for progress).
    /// A kind the caller may not read (403) is left out and named in the second list, so one
    /// missing permission never ends a scan; every other error does.
    pub fn collect(
        &self,
        on_page: Arc<dyn Fn(&Page) + Send + Sync>,
    ) -> Result<(Vec<Page>, Vec<Unreadable>), KubeError> {
        self.runtime.block_on(async {
            let lists = SCANNED
                .iter()
                .copied()
                .map(|resource| {
                    let client = self.client.clone();
                    let calls = self.calls.clone();
                    let on_page = on_page.clone();
                    let page_size = self.page_size;
                    async move {
                        let pages = list_all(&client, &calls, resource, page_size).await;
                        if let Ok(pages) = &pages {
                            pages.iter().for_each(|page| on_page(page));
                        }
                        pages
                    }
                })
                .collect();
            // Kinds in a fixed order, so the inventory does not depend on which list ended first.
            let mut pages = Vec::new();
            let mut refused = Vec::new();
            for (kind, resource) in crate::tasks::bounded(CONCURRENT_LISTS, lists)
                .await
                .into_iter()
                .zip(SCANNED)
            {
                match kind {
                    Ok(kind) => pages.extend(kind),
                    Err(e) if e.kind() == ErrorKind::Denied => {
                        refused.push(denied("list", *resource, None, &e))
                    }
                    Err(e) => return Err(e),
                }
            }
            let aws_auth = CONFIG_MAP.collection(Some("kube-system"));
            match call(&self.client, &self.calls, "get", &aws_auth, || {
                Request::new(&aws_auth).get("aws-auth", &GetParams::default())
            })
            .await
            {
                Ok(text) => pages.push(Page {
                    resource: CONFIG_MAP,
                    number: 1,
                    text,
                }),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) if e.kind() == ErrorKind::Denied => {
                    refused.push(denied("get", CONFIG_MAP, Some("kube-system"), &e))
                }
                Err(e) => return Err(e),
            }
            Ok((pages, refused))
        })
    }

    /// Objects of a namespace (`None`: of all namespaces) matching a label selector (`a=b,c=d`;
    /// `None`: all), every page.
    pub fn list(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let path = resource.collection(namespace);
        let pages = self.runtime.block_on(pages(
            &self.client,
            &self.calls,
            &path,
            selector,
            self.page_size,
        ))?;
        let mut items = Vec::new();
        for text in pages {
            if let Some(list) = parse(&path, &text)?["items"].as_array_mut() {
                items.append(list);
            }
        }
        Ok(items)
    }
}

/// The `continue` token of a list page's text, `None` on the last page (an empty token too),
/// without parsing the page's items.
fn continue_token(text: &str) -> Result<Option<String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct ListMeta {
        #[serde(rename = "continue", default)]
        token: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: Option<ListMeta>,
    }
    let head: Head = serde_json::from_str(text)?;
    Ok(head
        .metadata
        .and_then(|m| m.token)
        .filter(|t| !t.is_empty()))
}

/// Every page of one kind, cluster-wide.
async fn list_all(
    client: &kube::Client,
    calls: &AtomicUsize,
    resource: Resource,
    page_size: u32,
) -> Result<Vec<Page>, KubeError> {
    let path = resource.collection(None);
    let texts = pages(client, calls, &path, None, page_size).await?;
    Ok(texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Page {
            resource,
            number: i + 1,
            text,
        })
        .collect())
}

/// How often a list whose `continue` token expired is started again before giving up.
const LIST_RESTARTS: usize = 3;

/// Every page of a list (its JSON text), following `continue` tokens. A token older than the
/// last etcd compaction (every 5 minutes by default) is answered 410 Expired: the list is read
/// again from its start, as kubectl and client-go's pager do, a few times at most.
async fn pages(
    client: &kube::Client,
    calls: &AtomicUsize,
    path: &str,
    selector: Option<&str>,
    page_size: u32,
) -> Result<Vec<String>, KubeError> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    let mut restarts = 0;
    loop {
        let params = ListParams {
            label_selector: selector.map(str::to_string),
            limit: Some(page_size),
            continue_token: token.clone(),
            ..ListParams::default()
        };
        let text = match call(client, calls, "list", path, || {
            Request::new(path).list(&params)
        })
        .await
        {
            Ok(text) => text,
            Err(e)
                if e.kind() == ErrorKind::Expired
                    && token.is_some()
                    && restarts < LIST_RESTARTS =>
            {
                restarts += 1;
                pages.clear();
                token = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        token = continue_token(&text).map_err(|source| KubeError::Decode {
            path: path.to_string(),
            source,
        })?;
        pages.push(text);
        if token.is_none() {
            return Ok(pages);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_continue_token_ends_the_list() {
        assert_eq!(
            continue_token(r#"{"metadata": {"continue": ""}, "items": []}"#).unwrap(),
            None
        );
        assert_eq!(
            continue_token(r#"{"metadata": {"continue": "abc"}}"#).unwrap(),
            Some("abc".into())
        );
    }
}
