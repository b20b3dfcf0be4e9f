//! The EKS Pod Identity double (tests/support/eks_pod_identity.rs) driven by the real AWS CLI,
//! as the tool's Pod Identity target (issue 18) will be checked against it: each of the five
//! operations, the CLI's pagination, filters, errors as the CLI reports them, an add-on's
//! association, the per-cluster limit and idempotency tokens. A few requests the CLI would
//! refuse to send go over a raw socket, to show bad input gets the model's error.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::eks_pod_identity::{DEFAULT_LIMIT, PodIdentity};
use crate::support::{stderr, stdout};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "eu-west-1";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// The members of `PodIdentityAssociationSummary` a summary without an owner carries.
const SUMMARY: [&str; 5] = [
    "associationArn",
    "associationId",
    "clusterName",
    "namespace",
    "serviceAccount",
];

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn ids(list: &Value) -> Vec<String> {
    list["associations"]
        .as_array()
        .expect("a list of associations")
        .iter()
        .map(|a| a["associationId"].as_str().expect("an id").to_string())
        .collect()
}

fn id(association: &Value) -> String {
    association["associationId"]
        .as_str()
        .expect("an associationId")
        .to_string()
}

/// The AWS CLI of `IRSA_MIGRATE_AWS_CLI`, pointed at the double with dummy credentials and
/// nothing of the user's configuration.
struct Aws<'d> {
    cli: String,
    double: &'d PodIdentity,
    /// The exit code of a request the service refused: 254 from CLI v2, 255 from v1 (which
    /// exits 255 for every error).
    service_error: i32,
}

impl<'d> Aws<'d> {
    fn new(double: &'d PodIdentity) -> Aws<'d> {
        let cli = std::env::var("IRSA_MIGRATE_AWS_CLI")
            .expect("IRSA_MIGRATE_AWS_CLI names the AWS CLI (scripts/test installs it)");
        let version = Command::new(&cli)
            .arg("--version")
            .output()
            .expect("the AWS CLI runs");
        // v1 writes its version to stderr on old Pythons, v2 to stdout.
        let version = format!("{}{}", stdout(&version), stderr(&version));
        assert!(version.contains("aws-cli/"), "{version}");
        let service_error = if version.contains("aws-cli/1.") {
            255
        } else {
            254
        };
        Aws {
            cli,
            double,
            service_error,
        }
    }

    /// `aws eks <args>`, signed for `region`.
    fn run_in(&self, region: &str, args: &[&str]) -> Output {
        let mut command = Command::new(&self.cli);
        command
            .args(["--endpoint-url", &self.double.url(), "--region", region])
            .args(["--output", "json"]);
        // CLI v1 has no pager and no `--no-cli-pager` (it refuses the option).
        if self.service_error == 254 {
            command.arg("--no-cli-pager");
        }
        command
            .arg("eks")
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_EKS")
            .output()
            .expect("the AWS CLI runs")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(REGION, args)
    }

    /// A command that must succeed: its output.
    fn ok(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&output)))
    }

    /// A command the double must refuse with `error` in `operation`: the CLI's error text.
    fn fails_in(&self, region: &str, args: &[&str], error: &str, operation: &str) -> String {
        let output = self.run_in(region, args);
        let text = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(self.service_error),
            "{args:?}: {text}"
        );
        let expected =
            format!("An error occurred ({error}) when calling the {operation} operation");
        assert!(text.contains(&expected), "{args:?}: {text}");
        text
    }

    fn fails(&self, args: &[&str], error: &str, operation: &str) -> String {
        self.fails_in(REGION, args, error, operation)
    }

    /// Creates an association with `extra` arguments: the association answered.
    fn create(&self, cluster: &str, namespace: &str, account: &str, extra: &[&str]) -> Value {
        let role = role(account);
        let mut args = vec![
            "create-pod-identity-association",
            "--cluster-name",
            cluster,
            "--namespace",
            namespace,
            "--service-account",
            account,
            "--role-arn",
            &role,
        ];
        args.extend_from_slice(extra);
        self.ok(&args)["association"].clone()
    }

    fn describe(&self, cluster: &str, id: &str) -> Value {
        self.ok(&[
            "describe-pod-identity-association",
            "--cluster-name",
            cluster,
            "--association-id",
            id,
        ])["association"]
            .clone()
    }

    fn list(&self, cluster: &str, extra: &[&str]) -> Value {
        let mut args = vec!["list-pod-identity-associations", "--cluster-name", cluster];
        args.extend_from_slice(extra);
        self.ok(&args)
    }
}

/// A request over a plain socket, signed (in name only) for `REGION`: (status, the
/// `x-amzn-errortype` header, the body).
fn raw(double: &PodIdentity, method: &str, path: &str, body: &str) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(double.address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{REGION}/eks/\
         aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        double.address,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, payload) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let error = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-amzn-errortype")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, error, serde_json::from_str(payload).unwrap())
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn created_associations_are_described_and_listed_page_by_page() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    let aws = Aws::new(&double);
    let pairs = [
        ("payments", "api"),
        ("payments", "worker"),
        ("search", "indexer"),
        ("checkout", "web"),
        ("default", "batch"),
    ];
    let created: Vec<Value> = pairs
        .iter()
        .map(|(namespace, account)| aws.create("demo", namespace, account, &[]))
        .collect();
    let first = &created[0];
    let first_id = id(first);
    assert!(
        first_id.len() == 19
            && first_id.starts_with("a-")
            && first_id[2..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{first_id}"
    );
    assert_eq!(
        first["associationArn"],
        format!("arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/demo/{first_id}")
    );
    assert_eq!(
        keys(first),
        set(&[
            "associationArn",
            "associationId",
            "clusterName",
            "createdAt",
            "disableSessionTags",
            "modifiedAt",
            "namespace",
            "roleArn",
            "serviceAccount",
            "tags",
        ]),
        "{first}"
    );
    assert_eq!(first["clusterName"], "demo");
    assert_eq!(first["namespace"], "payments");
    assert_eq!(first["serviceAccount"], "api");
    assert_eq!(first["roleArn"], role("api"));
    assert_eq!(first["tags"], serde_json::json!({}));
    assert_eq!(first["disableSessionTags"], false);
    // Epoch seconds on the wire, which CLI v1 shows as they came.
    let created_at = first["createdAt"].as_f64().expect("epoch seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - created_at).abs() < 300.0, "{created_at} vs {now}");
    assert_eq!(first["modifiedAt"], first["createdAt"]);
    let all_ids: Vec<String> = created.iter().map(id).collect();
    assert_eq!(all_ids.iter().collect::<BTreeSet<_>>().len(), 5);

    // Described as created; the double keeps it in the region the CLI signed for.
    assert_eq!(aws.describe("demo", &first_id), *first);
    let kept = double.associations();
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[0].association_id, first_id);
    assert_eq!(kept[0].region, REGION);
    assert!(
        double
            .calls()
            .iter()
            .all(|c| c.region == REGION && c.status == 200),
        "{:?}",
        double.calls()
    );

    // By hand, two at a time: `--max-results` turns the CLI's own paging off.
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut extra = vec!["--max-results", "2"];
        if let Some(token) = &token {
            extra.extend(["--next-token", token.as_str()]);
        }
        let page = aws.list("demo", &extra);
        for summary in page["associations"].as_array().unwrap() {
            assert_eq!(keys(summary), set(&SUMMARY), "{summary}");
            let full = created
                .iter()
                .find(|c| c["associationId"] == summary["associationId"]);
            let full = full.expect("a created association");
            for member in SUMMARY {
                assert_eq!(summary[member], full[member], "{member}");
            }
        }
        pages.push(ids(&page));
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
        assert!(pages.len() < 5, "{pages:?}");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), all_ids, "oldest first");
    let listed = double.calls_of("ListPodIdentityAssociations");
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|c| c.query["maxResults"] == "2"));
    assert!(!listed[0].query.contains_key("nextToken"));
    assert!(
        listed[1..]
            .iter()
            .all(|c| c.query.contains_key("nextToken"))
    );

    // The CLI's own paging: pages of two, followed to the end, shown as one list.
    let all = aws.list("demo", &["--page-size", "2"]);
    assert_eq!(ids(&all), all_ids);
    assert!(
        all.get("nextToken").is_none() && all.get("NextToken").is_none(),
        "{all}"
    );
    assert_eq!(double.calls_of("ListPodIdentityAssociations").len(), 6);
    // And cut after three, to resume with the CLI's own token.
    let head = aws.list("demo", &["--page-size", "2", "--max-items", "3"]);
    assert_eq!(ids(&head), all_ids[..3]);
    let resume = head["NextToken"].as_str().expect("the CLI's token");
    let tail = aws.list("demo", &["--page-size", "2", "--starting-token", resume]);
    assert_eq!(ids(&tail), all_ids[3..]);
    // One request without paging: up to 100 at once.
    let before = double.calls_of("ListPodIdentityAssociations").len();
    assert_eq!(ids(&aws.list("demo", &[])), all_ids);
    let calls = double.calls_of("ListPodIdentityAssociations");
    assert_eq!(calls.len(), before + 1);
    assert!(!calls[before].query.contains_key("maxResults"));

    // On the wire, which the CLI filters through the model (it drops members a shape does not
    // name): a summary has exactly the summary's members, an association its own.
    let path = "/clusters/demo/pod-identity-associations";
    let (status, _, page) = raw(&double, "GET", &format!("{path}?maxResults=2"), "");
    assert_eq!(status, 200);
    assert_eq!(keys(&page), set(&["associations", "nextToken"]));
    assert!(page["nextToken"].is_string(), "{page}");
    for summary in page["associations"].as_array().unwrap() {
        assert_eq!(keys(summary), set(&SUMMARY), "{summary}");
    }
    let (status, _, last) = raw(&double, "GET", &format!("{path}?maxResults=100"), "");
    assert_eq!(status, 200);
    assert!(last["nextToken"].is_null(), "null on the last page: {last}");
    let (status, _, wire) = raw(&double, "GET", &format!("{path}/{first_id}"), "");
    assert_eq!(status, 200);
    assert_eq!(wire["association"], *first);
    assert!(wire["association"]["createdAt"].is_number());

    // Clusters are regional: demo is not in us-east-1.
    let text = aws.fails_in(
        "us-east-1",
        &["list-pod-identity-associations", "--cluster-name", "demo"],
        "ResourceNotFoundException",
        "ListPodIdentityAssociations",
    );
    assert!(text.contains("No cluster found for name: demo."), "{text}");
    assert_eq!(double.calls().last().unwrap().region, "us-east-1");
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn a_second_association_of_a_service_account_is_resource_in_use() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    double.add_cluster(REGION, ACCOUNT, "other");
    let aws = Aws::new(&double);
    let first = aws.create("demo", "payments", "api", &[]);
    let again = role("payments-api-v2");
    let text = aws.fails(
        &[
            "create-pod-identity-association",
            "--cluster-name",
            "demo",
            "--namespace",
            "payments",
            "--service-account",
            "api",
            "--role-arn",
            &again,
        ],
        "ResourceInUseException",
        "CreatePodIdentityAssociation",
    );
    assert!(
        text.contains(&id(&first)),
        "the message names the association: {text}"
    );
    let last = double.calls().last().unwrap().clone();
    assert_eq!(
        (last.status, last.error.as_deref()),
        (409, Some("ResourceInUseException"))
    );
    let kept = double.associations();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].role_arn, role("api"), "the first is untouched");
    // Another service account of the namespace, or the same one in another cluster, is free.
    aws.create("demo", "payments", "worker", &[]);
    aws.create("other", "payments", "api", &[]);
    assert_eq!(double.associations().len(), 3);
    // An association is found only in its own cluster.
    let first_id = id(&first);
    aws.fails(
        &[
            "describe-pod-identity-association",
            "--cluster-name",
            "other",
            "--association-id",
            &first_id,
        ],
        "ResourceNotFoundException",
        "DescribePodIdentityAssociation",
    );
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn an_update_changes_only_what_it_carries() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    let aws = Aws::new(&double);
    let created = aws.create(
        "demo",
        "payments",
        "api",
        &["--tags", "team=payments,tier=api"],
    );
    assert_eq!(
        created["tags"],
        serde_json::json!({"team": "payments", "tier": "api"})
    );
    let association = id(&created);
    let update = |extra: &[&str]| -> Value {
        let mut args = vec![
            "update-pod-identity-association",
            "--cluster-name",
            "demo",
            "--association-id",
            &association,
        ];
        args.extend_from_slice(extra);
        aws.ok(&args)["association"].clone()
    };
    let v2 = role("payments-api-v2");
    let updated = update(&["--role-arn", &v2]);
    assert_eq!(updated["roleArn"], v2);
    assert!(
        updated["modifiedAt"].as_f64().unwrap() > created["modifiedAt"].as_f64().unwrap(),
        "{updated}"
    );
    for member in keys(&created) {
        if member != "roleArn" && member != "modifiedAt" {
            assert_eq!(updated[&member], created[&member], "{member}");
        }
    }
    assert_eq!(keys(&updated), keys(&created));
    assert_eq!(aws.describe("demo", &association), updated);
    // The CLI sent the role and an idempotency token of its own, nothing else.
    let body = double.calls_of("UpdatePodIdentityAssociation")[0]
        .body
        .clone();
    assert_eq!(
        keys(&body),
        set(&["clientRequestToken", "roleArn"]),
        "{body}"
    );

    // A target role: EKS gives the association an external id for its trust policy.
    let target = "arn:aws:iam::444455556666:role/payments-data";
    let targeted = update(&["--target-role-arn", target]);
    assert_eq!(targeted["targetRoleArn"], target);
    assert_eq!(targeted["roleArn"], v2, "the role is kept");
    let external = targeted["externalId"].as_str().expect("an externalId");
    assert_eq!(
        (external.len(), external.matches('-').count()),
        (36, 4),
        "{external}"
    );
    assert!(targeted["modifiedAt"].as_f64().unwrap() > updated["modifiedAt"].as_f64().unwrap());

    // A policy needs session tags disabled: refused alone, and nothing changes.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let refused = [
        "update-pod-identity-association",
        "--cluster-name",
        "demo",
        "--association-id",
        &association,
        "--policy",
        policy,
    ];
    let text = aws.fails(
        &refused,
        "InvalidParameterException",
        "UpdatePodIdentityAssociation",
    );
    assert!(text.contains("disableSessionTags"), "{text}");
    assert_eq!(aws.describe("demo", &association), targeted);
    let scoped = update(&["--disable-session-tags", "--policy", policy]);
    assert_eq!(scoped["disableSessionTags"], true);
    assert_eq!(scoped["policy"], policy);
    assert_eq!(scoped["externalId"], external, "the external id is kept");
    assert_eq!(scoped["tags"], created["tags"]);
    assert_eq!(scoped["namespace"], "payments");
    assert_eq!(scoped["createdAt"], created["createdAt"]);

    // An update must carry a change, and a role must be an IAM role.
    let base = [
        "update-pod-identity-association",
        "--cluster-name",
        "demo",
        "--association-id",
        association.as_str(),
    ];
    aws.fails(
        &base,
        "InvalidParameterException",
        "UpdatePodIdentityAssociation",
    );
    let user = format!("arn:aws:iam::{ACCOUNT}:user/bob");
    let mut not_a_role = base.to_vec();
    not_a_role.extend(["--role-arn", &user]);
    aws.fails(
        &not_a_role,
        "InvalidParameterException",
        "UpdatePodIdentityAssociation",
    );
    assert_eq!(double.associations()[0].role_arn, v2);
    assert_eq!(aws.describe("demo", &association), scoped);
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn a_deleted_association_is_not_found() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    let aws = Aws::new(&double);
    let gone = aws.create("demo", "payments", "api", &["--tags", "team=payments"]);
    let kept = aws.create("demo", "payments", "worker", &[]);
    let gone_id = id(&gone);
    let deleted = aws.ok(&[
        "delete-pod-identity-association",
        "--cluster-name",
        "demo",
        "--association-id",
        &gone_id,
    ]);
    assert_eq!(
        deleted["association"], gone,
        "delete answers the association"
    );
    let on_it = |verb: &str| {
        vec![
            verb.to_string(),
            "--cluster-name".into(),
            "demo".into(),
            "--association-id".into(),
            gone_id.clone(),
        ]
    };
    for (verb, operation) in [
        (
            "describe-pod-identity-association",
            "DescribePodIdentityAssociation",
        ),
        (
            "delete-pod-identity-association",
            "DeletePodIdentityAssociation",
        ),
    ] {
        let args = on_it(verb);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = aws.fails(&args, "ResourceNotFoundException", operation);
        assert!(text.contains(&gone_id), "{text}");
        assert_eq!(double.calls().last().unwrap().status, 404);
    }
    let mut update = on_it("update-pod-identity-association");
    update.extend(["--role-arn".into(), role("other")]);
    let update: Vec<&str> = update.iter().map(String::as_str).collect();
    aws.fails(
        &update,
        "ResourceNotFoundException",
        "UpdatePodIdentityAssociation",
    );
    assert_eq!(ids(&aws.list("demo", &[])), [id(&kept)]);
    assert_eq!(double.associations().len(), 1);
    // The service account is free again.
    aws.create("demo", "payments", "api", &[]);
    // A cluster nobody registered is not found either.
    let text = aws.fails(
        &[
            "describe-pod-identity-association",
            "--cluster-name",
            "nope",
            "--association-id",
            &id(&kept),
        ],
        "ResourceNotFoundException",
        "DescribePodIdentityAssociation",
    );
    assert!(text.contains("No cluster found for name: nope."), "{text}");
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn lists_filter_by_namespace_and_service_account() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    let aws = Aws::new(&double);
    let payments_api = id(&aws.create("demo", "payments", "api", &[]));
    let payments_worker = id(&aws.create("demo", "payments", "worker", &[]));
    let search_api = id(&aws.create("demo", "search", "api", &[]));
    let search_indexer = id(&aws.create("demo", "search", "indexer", &[]));
    assert_eq!(
        ids(&aws.list("demo", &["--namespace", "payments"])),
        [payments_api.clone(), payments_worker]
    );
    assert_eq!(
        ids(&aws.list("demo", &["--service-account", "api"])),
        [payments_api, search_api.clone()]
    );
    assert_eq!(
        ids(&aws.list(
            "demo",
            &["--namespace", "search", "--service-account", "api"]
        )),
        [search_api]
    );
    assert_eq!(
        ids(&aws.list("demo", &["--namespace", "nobody"])),
        Vec::<String>::new()
    );
    let calls = double.calls_of("ListPodIdentityAssociations");
    assert_eq!(calls[0].query["namespace"], "payments");
    assert_eq!(calls[1].query["serviceAccount"], "api");
    // Filters hold across pages, and a token is good only for the filters it came with.
    let page = aws.list("demo", &["--namespace", "search", "--max-results", "1"]);
    let token = page["nextToken"]
        .as_str()
        .expect("a second page")
        .to_string();
    let next = aws.list(
        "demo",
        &[
            "--namespace",
            "search",
            "--max-results",
            "1",
            "--next-token",
            &token,
        ],
    );
    assert_eq!(ids(&next), [search_indexer]);
    assert!(next["nextToken"].is_null(), "{next}");
    aws.fails(
        &[
            "list-pod-identity-associations",
            "--cluster-name",
            "demo",
            "--namespace",
            "payments",
            "--next-token",
            &token,
        ],
        "InvalidParameterException",
        "ListPodIdentityAssociations",
    );
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn an_add_on_owned_association_shows_its_owner_arn() {
    let double = PodIdentity::start();
    let cluster = double.add_cluster(REGION, ACCOUNT, "demo");
    assert_eq!(
        cluster.arn,
        format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/demo")
    );
    let aws = Aws::new(&double);
    let owner = cluster.addon_arn("aws-ebs-csi-driver");
    assert!(
        owner.starts_with(&format!(
            "arn:aws:eks:{REGION}:{ACCOUNT}:addon/demo/aws-ebs-csi-driver/"
        )),
        "{owner}"
    );
    let owned = double
        .create_owned(
            &cluster,
            "kube-system",
            "ebs-csi-controller-sa",
            &role("ebs-csi"),
            &owner,
        )
        .unwrap();
    assert_eq!(owned.owner_arn.as_deref(), Some(owner.as_str()));
    let mine = aws.create("demo", "payments", "api", &[]);
    assert!(mine.get("ownerArn").is_none(), "{mine}");
    let described = aws.describe("demo", &owned.association_id);
    assert_eq!(described["ownerArn"], owner);
    assert_eq!(described, owned.to_json());
    let list = aws.list("demo", &[]);
    let summaries = list["associations"].as_array().unwrap();
    assert_eq!(summaries[0]["ownerArn"], owner);
    let mut with_owner = SUMMARY.to_vec();
    with_owner.push("ownerArn");
    assert_eq!(keys(&summaries[0]), set(&with_owner));
    assert_eq!(keys(&summaries[1]), set(&SUMMARY));
    // Its service account is taken, for the CLI and for another add-on alike.
    let ebs = role("ebs-csi-mine");
    aws.fails(
        &[
            "create-pod-identity-association",
            "--cluster-name",
            "demo",
            "--namespace",
            "kube-system",
            "--service-account",
            "ebs-csi-controller-sa",
            "--role-arn",
            &ebs,
        ],
        "ResourceInUseException",
        "CreatePodIdentityAssociation",
    );
    let refusal = double
        .create_owned(
            &cluster,
            "kube-system",
            "ebs-csi-controller-sa",
            &ebs,
            &owner,
        )
        .unwrap_err();
    assert_eq!(refusal.0, "ResourceInUseException");
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn a_cluster_holds_at_most_its_limit_of_associations() {
    let double = PodIdentity::start();
    let cluster = double.add_cluster(REGION, ACCOUNT, "demo");
    double.add_cluster(REGION, ACCOUNT, "other");
    let aws = Aws::new(&double);
    // The default quota, filled as add-ons would fill it.
    assert_eq!(DEFAULT_LIMIT, 5_000);
    let owner = cluster.addon_arn("many");
    for n in 0..DEFAULT_LIMIT {
        double
            .create_owned(
                &cluster,
                "crowd",
                &format!("sa-{n}"),
                &role("crowd"),
                &owner,
            )
            .unwrap();
    }
    let one_more = role("one-more");
    let create = [
        "create-pod-identity-association",
        "--cluster-name",
        "demo",
        "--namespace",
        "payments",
        "--service-account",
        "api",
        "--role-arn",
        &one_more,
    ];
    let text = aws.fails(
        &create,
        "ResourceLimitExceededException",
        "CreatePodIdentityAssociation",
    );
    assert!(text.contains("5000"), "{text}");
    assert_eq!(double.calls().last().unwrap().status, 400);
    // The limit is the cluster's: another one still takes associations.
    aws.create("other", "payments", "api", &[]);
    // One deleted makes room for one.
    let first = double.associations()[0].association_id.clone();
    aws.ok(&[
        "delete-pod-identity-association",
        "--cluster-name",
        "demo",
        "--association-id",
        &first,
    ]);
    aws.ok(&create);
    aws.fails(
        &[
            "create-pod-identity-association",
            "--cluster-name",
            "demo",
            "--namespace",
            "payments",
            "--service-account",
            "worker",
            "--role-arn",
            &one_more,
        ],
        "ResourceLimitExceededException",
        "CreatePodIdentityAssociation",
    );

    // A limit a test sets.
    let small = PodIdentity::start();
    small.add_cluster(REGION, ACCOUNT, "demo");
    small.set_limit(2);
    let aws = Aws::new(&small);
    aws.create("demo", "payments", "api", &[]);
    aws.create("demo", "payments", "worker", &[]);
    aws.fails(
        &create.map(|a| if a == "api" { "third" } else { a }),
        "ResourceLimitExceededException",
        "CreatePodIdentityAssociation",
    );
    assert_eq!(small.associations().len(), 2);
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn a_repeated_client_request_token_answers_the_first_request_again() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    let aws = Aws::new(&double);
    let first = aws.create(
        "demo",
        "payments",
        "api",
        &["--client-request-token", "tok-1"],
    );
    let again = aws.create(
        "demo",
        "payments",
        "api",
        &["--client-request-token", "tok-1"],
    );
    assert_eq!(again, first);
    assert_eq!(double.associations().len(), 1);
    // The same token with another request is refused; without a token it is a duplicate.
    let other = role("other");
    let create = |token: &'static str| {
        let mut args = vec![
            "create-pod-identity-association",
            "--cluster-name",
            "demo",
            "--namespace",
            "payments",
            "--service-account",
            "api",
            "--role-arn",
            other.as_str(),
        ];
        if !token.is_empty() {
            args.extend(["--client-request-token", token]);
        }
        args
    };
    aws.fails(
        &create("tok-1"),
        "InvalidRequestException",
        "CreatePodIdentityAssociation",
    );
    aws.fails(
        &create(""),
        "ResourceInUseException",
        "CreatePodIdentityAssociation",
    );
    // The CLI makes a token of its own for each request that has none.
    aws.create("demo", "payments", "worker", &[]);
    aws.create("demo", "search", "api", &[]);
    let tokens: Vec<String> = double
        .calls_of("CreatePodIdentityAssociation")
        .iter()
        .map(|c| c.body["clientRequestToken"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens[..3], ["tok-1", "tok-1", "tok-1"]);
    assert!(tokens[3..].iter().all(|t| t.len() == 36), "{tokens:?}");
    assert_eq!(tokens[3..].iter().collect::<BTreeSet<_>>().len(), 3);
    // An update too: the same token answers the same, modifiedAt unchanged.
    let association = id(&first);
    let v2 = role("payments-api-v2");
    let update = [
        "update-pod-identity-association",
        "--cluster-name",
        "demo",
        "--association-id",
        &association,
        "--role-arn",
        &v2,
        "--client-request-token",
        "up-1",
    ];
    let updated = aws.ok(&update);
    assert_eq!(aws.ok(&update), updated);
    assert_eq!(
        double.associations()[0].modified_at,
        updated["association"]["modifiedAt"].as_f64().unwrap()
    );
}

#[test]
#[ignore = "needs the AWS CLI; scripts/test installs it"]
fn bad_input_gets_the_models_errors_and_the_double_keeps_serving() {
    let double = PodIdentity::start();
    double.add_cluster(REGION, ACCOUNT, "demo");
    let aws = Aws::new(&double);
    let create = |namespace: &'static str, role: &str, extra: &[&'static str]| {
        let mut args: Vec<String> = [
            "create-pod-identity-association",
            "--cluster-name",
            "demo",
            "--namespace",
            namespace,
            "--service-account",
            "api",
            "--role-arn",
            role,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let good = role("api");
    let user = format!("arn:aws:iam::{ACCOUNT}:user/bob");
    for args in [
        create("payments", &user, &[]),
        create("payments", "not-an-arn", &[]),
        create("Payments", &good, &[]),
        create("payments", &good, &["--tags", "aws:owner=me"]),
        create(
            "payments",
            &good,
            &["--target-role-arn", "arn:aws:s3:::bucket"],
        ),
        create(
            "payments",
            &good,
            &["--disable-session-tags", "--policy", "{not json"],
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        aws.fails(
            &args,
            "InvalidParameterException",
            "CreatePodIdentityAssociation",
        );
    }
    for extra in [["--max-results", "101"], ["--next-token", "forged"]] {
        let mut args = vec!["list-pod-identity-associations", "--cluster-name", "demo"];
        args.extend(extra);
        aws.fails(
            &args,
            "InvalidParameterException",
            "ListPodIdentityAssociations",
        );
    }
    assert!(double.associations().is_empty());

    // What the CLI would not send.
    let path = "/clusters/demo/pod-identity-associations";
    for body in [
        "{not json",
        "[]",
        r#"{"namespace": 7, "serviceAccount": "api", "roleArn": "x"}"#,
        r#"{"serviceAccount": "api"}"#,
        r#"{"namespace": "p", "serviceAccount": "api", "roleArn": "arn:aws:iam::111122223333:role/a", "tags": ["x"]}"#,
        r#"{"namespace": "p", "serviceAccount": "api", "roleArn": "arn:aws:iam::111122223333:role/a", "disableSessionTags": "yes"}"#,
    ] {
        let (status, error, answer) = raw(&double, "POST", path, body);
        assert_eq!(
            (status, error.as_str()),
            (400, "InvalidParameterException"),
            "{body}"
        );
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, error, _) = raw(&double, "PUT", path, "");
    assert_eq!((status, error.as_str()), (404, "UnknownOperationException"));
    let (status, error, answer) = raw(&double, "GET", &format!("{path}?maxResults=x"), "");
    assert_eq!(
        (status, error.as_str()),
        (400, "InvalidParameterException"),
        "{answer}"
    );
    // A bad escape is kept as it is: a cluster nobody registered.
    let (status, error, answer) = raw(
        &double,
        "GET",
        "/clusters/d%zz%41mo/pod-identity-associations",
        "",
    );
    assert_eq!((status, error.as_str()), (404, "ResourceNotFoundException"));
    assert_eq!(answer["clusterName"], "d%zzAmo");
    let (status, error, answer) = raw(
        &double,
        "GET",
        "/clusters/d%65mo/pod-identity-associations/a-x",
        "",
    );
    assert_eq!((status, error.as_str()), (404, "ResourceNotFoundException"));
    assert_eq!(answer["clusterName"], "demo", "the path is percent-decoded");

    // Still serving, and nothing was made.
    aws.create("demo", "payments", "api", &[]);
    assert_eq!(double.associations().len(), 1);
    let refused = double.calls().iter().filter(|c| c.status != 200).count();
    assert_eq!(refused, 6 + 2 + 6 + 4);
}
