use serde_json::json;

use super::*;
use crate::inventory::trail::TrailWindow;

const NOW: i64 = 1_796_290_000;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const KIAM: &str = "arn:aws:iam::111122223333:role/kiam-server";
const NODE: &str = "arn:aws:iam::111122223333:role/eks-node";
const WORKER: &str = "arn:aws:iam::111122223333:role/payments-worker";
const PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/5E1D2C8A4F0B9C7D6E3A2B1C0D9E8F7A";

fn plan() -> Plan {
    let inventory = crate::inventory::demo::inventory().expect("the demo");
    crate::plan::plan(&inventory, "demo", &Default::default()).expect("the demo plans")
}

fn judgement() -> Judgement {
    Judgement {
        as_of: NOW,
        since: 7 * DAY,
        quiet_for: DAY,
    }
}

/// A trail that read both regions over the last 7 days, with `events`.
fn read(events: Vec<TrailEvent>) -> Trail {
    let mut trail = Trail::default();
    for region in ["eu-west-1", "us-east-1"] {
        trail.windows.push(TrailWindow {
            region: region.into(),
            start: NOW - 7 * DAY,
            end: NOW,
        });
    }
    for event in events {
        trail.events.insert(event.id.clone(), event);
    }
    trail
}

fn legacy(id: &str, role: &str, by: &str, ago: i64) -> TrailEvent {
    TrailEvent {
        id: id.into(),
        name: ASSUME_ROLE.into(),
        time: NOW - ago,
        region: "us-east-1".into(),
        role_arn: role.into(),
        session_name: "kiam-kiam".into(),
        source_ip: "10.0.12.7".into(),
        caller: Caller::RoleSession { issuer: by.into() },
    }
}

fn web_identity(id: &str, role: &str, subject: &str, provider: &str) -> TrailEvent {
    TrailEvent {
        id: id.into(),
        name: ASSUME_ROLE_WITH_WEB_IDENTITY.into(),
        time: NOW - HOUR,
        region: "eu-west-1".into(),
        role_arn: role.into(),
        session_name: "botocore-session-1764755130".into(),
        source_ip: String::new(),
        caller: Caller::WebIdentity {
            subject: subject.into(),
            provider: provider.into(),
        },
    }
}

fn verdict_of(evidence: &Evidence, role: &str) -> (Verdict, String) {
    let found = evidence
        .roles
        .iter()
        .find(|r| r.role.as_str() == role)
        .unwrap_or_else(|| panic!("{role} is judged: {evidence:?}"));
    (found.verdict, found.reason.clone())
}

#[test]
fn without_a_reading_of_both_regions_nothing_is_ready() {
    let plan = plan();
    let mut trail = read(vec![web_identity(
        "w",
        WORKER,
        "system:serviceaccount:payments:default-payments-worker",
        PROVIDER,
    )]);
    trail.windows.retain(|w| w.region == "eu-west-1");
    let evidence = assess(&plan, &trail, judgement(), &Default::default());
    assert_eq!(evidence.roles.len(), 5, "{evidence:?}");
    let (verdict, reason) = verdict_of(&evidence, WORKER);
    assert_eq!(verdict, Verdict::Unproven);
    assert!(reason.contains("us-east-1"), "{reason}");
    assert_eq!(evidence.held_steps().len(), 5);
}

#[test]
fn a_role_is_ready_once_its_legacy_path_is_quiet_and_its_service_accounts_use_web_identity() {
    let plan = plan();
    let subject = "system:serviceaccount:payments:default-payments-worker";
    let checkout = "arn:aws:iam::111122223333:role/checkout-web";
    let trail = read(vec![
        // Used through kiam three days ago: quiet for longer than a day.
        legacy("1", WORKER, KIAM, 3 * DAY),
        web_identity("2", WORKER, subject, PROVIDER),
        // checkout-web: kiam still hands it out.
        legacy("3", checkout, KIAM, 2 * HOUR),
        legacy("4", checkout, KIAM, 5 * HOUR),
        // prometheus's service account, but through another cluster's provider.
        web_identity(
            "5",
            "arn:aws:iam::111122223333:role/prometheus",
            "system:serviceaccount:monitoring:prometheus",
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0THER",
        ),
    ]);
    let evidence = assess(&plan, &trail, judgement(), &Default::default());
    assert_eq!(verdict_of(&evidence, WORKER).0, Verdict::Ready);
    let worker = evidence
        .roles
        .iter()
        .find(|r| r.role.as_str() == WORKER)
        .unwrap();
    assert_eq!(worker.legacy.count, 1);
    assert_eq!(worker.legacy_principals, vec![KIAM.to_string()]);
    let (verdict, reason) = verdict_of(&evidence, checkout);
    assert_eq!(verdict, Verdict::LegacyInUse);
    assert!(
        reason.contains("2 time(s)") && reason.contains("kiam-kiam from 10.0.12.7"),
        "{reason}"
    );
    let (verdict, reason) = verdict_of(&evidence, "arn:aws:iam::111122223333:role/prometheus");
    assert_eq!(
        verdict,
        Verdict::Unproven,
        "another cluster's use proves nothing here"
    );
    assert!(reason.contains("monitoring/prometheus"), "{reason}");
    let held: Vec<&str> = evidence
        .held_steps()
        .iter()
        .map(|(step, _)| *step)
        .collect();
    assert!(!held.contains(&format!("remove-legacy-trust:{WORKER}").as_str()));
    assert_eq!(held.len(), 4);
}

#[test]
fn a_grant_waits_for_the_roles_it_served_and_for_what_else_its_principal_assumes() {
    let mut plan = plan();
    let grant: Step = serde_json::from_value(json!({
        "id": format!("remove-assume-role-grant:{NODE}/kiam-assume"),
        "phase": "decommission", "kind": "remove-assume-role-grant",
        "target": {"type": "inline-policy", "account": "111122223333", "role_arn": NODE, "policy_name": "kiam-assume"},
        "description": "remove the grant",
        "before": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [WORKER]}]},
        "after": null,
    }))
    .expect("a step");
    plan.steps.push(grant);
    let subject = "system:serviceaccount:payments:default-payments-worker";
    let quiet = read(vec![web_identity("1", WORKER, subject, PROVIDER)]);
    let evidence = assess(&plan, &quiet, judgement(), &Default::default());
    let [grant] = &evidence.grants[..] else {
        panic!("one grant: {evidence:?}")
    };
    assert!(grant.ready, "{grant:?}");

    // The node role also hands out a role nobody planned (a hostNetwork pod, node software).
    let elsewhere = "arn:aws:iam::111122223333:role/node-exporter";
    let busy = read(vec![
        web_identity("1", WORKER, subject, PROVIDER),
        legacy("2", elsewhere, NODE, HOUR),
    ]);
    let evidence = assess(&plan, &busy, judgement(), &Default::default());
    let grant = &evidence.grants[0];
    assert!(!grant.ready);
    assert_eq!(grant.outside_plan[0].0, elsewhere);
    assert!(grant.reason.contains(elsewhere), "{}", grant.reason);

    // And it waits for the roles it served.
    let unproven = read(Vec::new());
    let grant = &assess(&plan, &unproven, judgement(), &Default::default()).grants[0];
    assert_eq!(grant.waiting_for, vec![WORKER.to_string()]);
}

#[test]
fn a_kube2iam_session_is_traced_to_the_pod_whose_address_it_hashes() {
    let plan = plan();
    let mut session = legacy("1", WORKER, NODE, HOUR);
    // kube2iam: `%x` of FNV-1a over the pod's IP, then the role's name.
    session.session_name = "3caf57bb-payments-worker".into();
    let mut plan = plan;
    for step in plan.steps.iter_mut().filter(|s| s.id.ends_with(WORKER)) {
        let before = step.before.value().to_string().replace(KIAM, NODE);
        step.before = crate::json::CompactJson::new(&serde_json::from_str(&before).unwrap());
    }
    let pods = Pods::new([(
        "10.1.7.23".to_string(),
        "payments/payments-worker-5d8c-x2".to_string(),
    )]);
    let evidence = assess(&plan, &read(vec![session]), judgement(), &pods);
    let worker = evidence
        .roles
        .iter()
        .find(|r| r.role.as_str() == WORKER)
        .unwrap();
    assert_eq!(worker.verdict, Verdict::LegacyInUse);
    assert_eq!(
        worker.legacy.sessions,
        [
            "3caf57bb-payments-worker (pod payments/payments-worker-5d8c-x2 at 10.1.7.23) from 10.0.12.7"
        ]
    );
}

#[test]
fn a_legacy_use_no_pod_of_this_cluster_explains_keeps_the_trust_with_a_finding() {
    let plan = plan();
    // The kiam server of this cluster runs at 10.0.12.7; another cluster's shares its role.
    let pods = Pods::new([(
        "10.0.12.7".to_string(),
        "kube-system/kiam-server-6f7d".to_string(),
    )]);
    let ours = legacy("1", WORKER, KIAM, 2 * HOUR);
    let mut theirs = legacy("2", WORKER, KIAM, 3 * DAY);
    theirs.source_ip = "10.200.4.9".into();
    let subject = "system:serviceaccount:payments:default-payments-worker";
    let seen = web_identity("3", WORKER, subject, PROVIDER);

    // Only this cluster's kiam, and long enough ago: ready.
    let mut quiet = ours.clone();
    quiet.time = NOW - 3 * DAY;
    let evidence = assess(&plan, &read(vec![quiet, seen.clone()]), judgement(), &pods);
    assert_eq!(verdict_of(&evidence, WORKER).0, Verdict::Ready);
    assert!(evidence.findings.is_empty(), "{:?}", evidence.findings);

    // Another cluster's use three days ago, quiet as it is, keeps the trust.
    let evidence = assess(
        &plan,
        &read(vec![ours.clone(), theirs.clone(), seen.clone()]),
        judgement(),
        &pods,
    );
    let worker = evidence
        .roles
        .iter()
        .find(|r| r.role.as_str() == WORKER)
        .unwrap();
    assert_eq!(worker.verdict, Verdict::UsedElsewhere, "{}", worker.reason);
    assert_eq!(worker.legacy.count, 2);
    assert_eq!(worker.elsewhere.count, 1);
    assert_eq!(worker.elsewhere.sessions, ["kiam-kiam from 10.200.4.9"]);
    assert!(
        evidence
            .held_steps()
            .iter()
            .any(|(step, _)| *step == worker.step),
        "held: {:?}",
        evidence.held_steps()
    );
    let [finding] = &evidence.findings[..] else {
        panic!("one finding: {:?}", evidence.findings)
    };
    assert_eq!(finding.code, Code::LegacyUsedElsewhere);
    assert_eq!(finding.subject.name, WORKER);
    assert!(finding.message.contains(KIAM), "{}", finding.message);
    assert!(
        finding.message.contains("10.200.4.9"),
        "{}",
        finding.message
    );

    // Without this cluster's pods nobody can tell: the recent use holds it, as this cluster's.
    let unknown = assess(
        &plan,
        &read(vec![ours, theirs, seen]),
        judgement(),
        &Pods::default(),
    );
    assert_eq!(verdict_of(&unknown, WORKER).0, Verdict::LegacyInUse);
    assert!(unknown.findings.is_empty());
}

#[test]
fn iam_role_last_used_explains_an_unproven_role_and_never_clears_one() {
    let plan = plan();
    let mut trail = read(Vec::new());
    trail.last_used.insert(
        WORKER.into(),
        crate::inventory::trail::LastUsed {
            time: NOW - 2 * HOUR,
            region: Some("us-west-2".into()),
        },
    );
    let (verdict, reason) = verdict_of(
        &assess(&plan, &trail, judgement(), &Pods::default()),
        WORKER,
    );
    assert_eq!(verdict, Verdict::Unproven);
    assert!(
        reason.contains("where this reading does not look") && reason.contains("us-west-2"),
        "{reason}"
    );
    // Last used before the window: nothing uses the role at all.
    trail.last_used.get_mut(WORKER).unwrap().time = NOW - 30 * DAY;
    let evidence = assess(&plan, &trail, judgement(), &Pods::default());
    let (verdict, reason) = verdict_of(&evidence, WORKER);
    assert_eq!(verdict, Verdict::Unproven);
    assert!(reason.contains("before the window"), "{reason}");
    let worker = evidence
        .roles
        .iter()
        .find(|r| r.role.as_str() == WORKER)
        .unwrap();
    assert_eq!(
        worker.iam_last_used.as_ref().map(|u| u.date.as_str()),
        Some(crate::time::format(NOW - 30 * DAY).as_str())
    );
}
