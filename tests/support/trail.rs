//! CloudTrail records shaped as CloudTrail writes them: kiam's server assuming a role for a pod
//! (an `AssumeRole` by the kiam server's role session, through the global endpoint, so logged in
//! us-east-1), kube2iam on a node doing the same (the node role's instance-profile session, the
//! session named after the pod's IP), and a pod on IRSA (`AssumeRoleWithWebIdentity` by a
//! `WebIdentityUser` through the cluster's OIDC provider), as ../shared/domain.md quotes them;
//! and `aws cloudtrail lookup-events` output holding them.

use serde_json::{Value, json};

pub const ACCOUNT: &str = "111122223333";
/// The demo cluster's OIDC provider (moto gives a live cluster another; see [`web_identity`]).
pub const DEMO_PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/5E1D2C8A4F0B9C7D6E3A2B1C0D9E8F7A";

/// The demo's roles decommission removes the legacy trust of, and each one's service account.
pub const MIGRATED: [(&str, &str); 5] = [
    ("checkout-web", "checkout:checkout-web"),
    ("data-ingest", "data:data-ingest"),
    ("payments-reconcile", "payments:default-payments-reconcile"),
    ("payments-worker", "payments:default-payments-worker"),
    ("prometheus", "monitoring:prometheus"),
];

/// `ago` seconds before now, as CloudTrail writes instants.
pub fn at(ago: i64) -> String {
    irsa_migrate::time::format(irsa_migrate::time::now() - ago)
}

/// The address of a kiam server pod of the demo snapshot (`kube-system/kiam-server-…-q2w8r`).
pub const DEMO_KIAM_SERVER_IP: &str = "10.0.1.100";
/// A kiam server no pod of the demo runs at: another cluster's, sharing the kiam server role.
pub const OTHER_CLUSTER_KIAM_IP: &str = "10.200.4.9";

/// kiam's server at `from` assuming `role` for a pod (session `kiam-kiam`), through the global
/// endpoint.
pub fn kiam_assumes(id: &str, role: &str, from: &str, ago: i64) -> Value {
    role_session_assumes(
        id,
        &format!("arn:aws:iam::{ACCOUNT}:role/kiam-server"),
        "1764755130000000000",
        &format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
        "kiam-kiam",
        from,
        ago,
    )
}

/// kube2iam on the node at `node_ip` assuming `role` (an ARN) for a pod: the caller is the node
/// role's instance-profile session, the session `<fnv32a of the pod IP>-<role name>`.
pub fn kube2iam_assumes(
    id: &str,
    node_role: &str,
    role: &str,
    session: &str,
    node_ip: &str,
    ago: i64,
) -> Value {
    role_session_assumes(
        id,
        node_role,
        "i-0a1b2c3d4e5f60718",
        role,
        session,
        node_ip,
        ago,
    )
}

/// A session (`caller`) of the role `issuer` assuming `role` through the global endpoint, as
/// session `session`, from `source_ip`. A session named after an EC2 instance is an instance
/// profile's, which CloudTrail marks with `ec2RoleDelivery`.
fn role_session_assumes(
    id: &str,
    issuer: &str,
    caller: &str,
    role: &str,
    session: &str,
    source_ip: &str,
    ago: i64,
) -> Value {
    let account = issuer.split(':').nth(4).unwrap_or_default();
    let issuer_name = issuer.rsplit('/').next().unwrap_or_default();
    let mut context = json!({
        "sessionIssuer": {"type": "Role", "principalId": "AROAISSUERROLE", "arn": issuer,
            "accountId": account, "userName": issuer_name},
        "attributes": {"creationDate": at(ago + 600), "mfaAuthenticated": "false"},
    });
    if caller.starts_with("i-") {
        context["ec2RoleDelivery"] = json!("2.0");
    }
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "principalId": format!("AROAISSUERROLE:{caller}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{issuer_name}/{caller}"),
            "accountId": account, "sessionContext": context},
        "eventTime": at(ago), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
        "awsRegion": "us-east-1", "sourceIPAddress": source_ip, "userAgent": "aws-sdk-go/1.44.0",
        "requestParameters": {"roleArn": role, "roleSessionName": session, "durationSeconds": 900},
        "eventID": id, "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": account, "eventCategory": "Management",
    })
}

/// A pod of `subject`'s service account assuming `role` through the OIDC provider `provider`.
pub fn web_identity(id: &str, role: &str, subject: &str, provider: &str, ago: i64) -> Value {
    let subject = format!("system:serviceaccount:{subject}");
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "WebIdentityUser",
            "principalId": format!("{provider}:sts.amazonaws.com:{subject}"),
            "userName": subject, "identityProvider": provider},
        "eventTime": at(ago), "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithWebIdentity", "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.31.4", "userAgent": "Boto3/1.34.0",
        "requestParameters": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
            "roleSessionName": "botocore-session-1764755130"},
        "eventID": id, "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": ACCOUNT, "eventCategory": "Management",
    })
}

/// `aws cloudtrail lookup-events` of a region over the last week, with its window.
pub fn lookup_events(region: &str, records: &[Value]) -> Value {
    let events: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({"EventId": r["eventID"], "EventName": r["eventName"], "ReadOnly": "true",
                   "EventTime": r["eventTime"], "EventSource": "sts.amazonaws.com",
                   "Resources": [{"ResourceType": "AWS::IAM::Role", "ResourceName": r["requestParameters"]["roleArn"]}],
                   "CloudTrailEvent": r.to_string()})
        })
        .collect();
    json!({"Events": events, "LookupWindow": {"Region": region, "StartTime": at(7 * 86_400), "EndTime": at(0)}})
}
