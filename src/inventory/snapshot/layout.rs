//! Where each object lives in a snapshot directory the tool writes: the one definition of the
//! layouts, which the writer renders into, the rehearsal backend edits in place, and the check
//! before a snapshot is replaced recognises. (The loader reads any layout: it recognises files
//! by their content.)
//!
//! [`Layout::PerNamespace`]: `kubernetes/<namespace>/<kind>.json` (cluster-scoped objects under
//! `_cluster`). [`Layout::PerKind`]: `kubernetes/<kind>.json` (every namespace's objects of the
//! kind, one a line). Both: `iam/<account>/roles-<n>.json` (authorization details,
//! [`ROLES_PER_FILE`] roles a file, the account's policies in the first), `iam/role-….json`
//! (roles known only from `get-role`),
//! `iam/<account>/stack-resources.json` (the roles CloudFormation stacks made),
//! `iam/oidc-providers.json`, `eks/describe-cluster.json`, `cloudtrail/<region>.json`, and the
//! [`MARKER`].

/// How a snapshot the tool writes is cut into files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Small files, one a namespace and kind: what `snapshot --out` writes for people to read and
    /// the rehearsal's state, where each write replaces one small file. Also the file names the
    /// inventory's fingerprint digests.
    PerNamespace,
    /// Few large files, one a kind: a plan's copy of its inventory, written once and read whole
    /// (a filesystem's cost of creating a file is many times that of writing its bytes: a fleet
    /// of 2,000 namespaces was 12,000 files).
    PerKind,
}

impl Layout {
    /// Whether list files hold their items compact, one a line (else pretty, as `kubectl`
    /// prints them).
    pub fn items_one_a_line(self) -> bool {
        self == Layout::PerKind
    }
}

/// The file every snapshot directory the tool writes carries (ignored by the loader), so that
/// replacing one never removes what the tool did not write.
pub const MARKER: &str = ".irsa-migrate-snapshot";

/// Kubernetes lists, one a namespace and kind.
pub const KUBERNETES_DIR: &str = "kubernetes";
/// IAM documents: an account's authorization details in a directory named after the account.
pub const IAM_DIR: &str = "iam";
/// EKS documents.
pub const EKS_DIR: &str = "eks";
/// CloudTrail's role assumptions, one `lookup-events` document a region and reading.
pub const CLOUDTRAIL_DIR: &str = "cloudtrail";

/// The directory of cluster-scoped objects: no namespace can be named so (`_` is not allowed in
/// a DNS label), so it never meets a namespace's directory.
const CLUSTER_SCOPED_DIR: &str = "_cluster";

/// The list file of `layout` that holds objects of `kind` in `namespace` (`None`:
/// cluster-scoped), or `None` for a kind the tool does not keep. Kinds go through the fixed set
/// the tool knows; a namespace must already be a valid namespace name, so that the path stays
/// inside the snapshot.
pub fn kubernetes_file(layout: Layout, namespace: Option<&str>, kind: &str) -> Option<String> {
    crate::names::kind_file_stem(kind).map(|stem| match layout {
        Layout::PerNamespace => format!(
            "{KUBERNETES_DIR}/{}/{stem}.json",
            namespace.unwrap_or(CLUSTER_SCOPED_DIR)
        ),
        Layout::PerKind => format!("{KUBERNETES_DIR}/{stem}.json"),
    })
}

/// The kind's stem of a Kubernetes list file (`kubernetes/default/pod.json` → `pod`), or `None`
/// for a file that holds a whole AWS document instead of a list.
pub fn kubernetes_file_stem(file: &str) -> Option<&str> {
    let inside = file.strip_prefix(KUBERNETES_DIR)?.strip_prefix('/')?;
    inside
        .rsplit('/')
        .next()
        .map(|name| name.trim_end_matches(".json"))
}

/// Roles per IAM file: small files keep each rehearsal write small. The same in both layouts, so
/// that both render the same documents (and one rendering gives the fingerprint too).
pub const ROLES_PER_FILE: usize = 50;

/// The `index`th file of an account's authorization details.
pub fn account_roles_file(account: &str, index: usize) -> String {
    format!("{IAM_DIR}/{account}/roles-{index:04}.json")
}

/// The roles an account's CloudFormation stacks made, as `describe-stack-resources` prints them.
pub fn stack_resources_file(account: &str) -> String {
    format!("{IAM_DIR}/{account}/stack-resources.json")
}

/// The file of a role known only from `get-role`, named after its ARN.
pub fn get_role_file(arn: &str) -> String {
    let name = arn.replace([':', '/'], "_");
    format!("{IAM_DIR}/role-{name}.json")
}

/// `aws iam list-open-id-connect-providers`.
pub const OIDC_PROVIDERS_FILE: &str = "iam/oidc-providers.json";

/// `aws cloudtrail lookup-events` of a region (or of a region's later reading: `<region>-2`).
pub fn trail_file(region: &str) -> String {
    format!("{CLOUDTRAIL_DIR}/{region}.json")
}

/// `aws eks describe-cluster`.
pub const EKS_CLUSTER_FILE: &str = "eks/describe-cluster.json";
