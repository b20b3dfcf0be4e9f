//! The verdicts: the plan's decommission steps judged against the trail.

use std::collections::BTreeMap;

use super::{
    Evidence, GrantEvidence, IamLastUsed, Judgement, Pods, RegionRead, RoleEvidence,
    ServiceAccountSeen, Usage, Verdict,
};
use crate::findings::{Code, Finding, Subject};
use crate::iam::arn::RoleArn;
use crate::iam::policy::PolicyDocument;
use crate::inventory::trail::{
    ASSUME_ROLE, ASSUME_ROLE_WITH_WEB_IDENTITY, Caller, Trail, TrailEvent,
};
use crate::plan::{Plan, Step, StepKind, Target};

/// A reading counts as reaching "now" when it ended at most this long before the instant
/// judged at (a live reading takes a while; CloudTrail itself delivers within about 15 minutes).
const READING_SLACK: i64 = 15 * 60;

/// Session names shown per usage: enough to find the caller.
const SESSIONS_SHOWN: usize = 3;

/// Judges every decommission step of `plan` against `trail`; `pods`, this cluster's, tell its
/// legacy sessions from another's (none known: every legacy use is taken for this cluster's).
pub fn assess(plan: &Plan, trail: &Trail, judgement: Judgement, pods: &Pods) -> Evidence {
    let since = judgement.as_of - judgement.since;
    let quiet_since = judgement.as_of - judgement.quiet_for;
    let regions: Vec<RegionRead> = super::regions(&plan.cluster.region)
        .into_iter()
        .map(|region| {
            let covered = trail.windows.iter().any(|w| {
                w.region == region
                    && w.start <= quiet_since
                    && w.end >= judgement.as_of - READING_SLACK
            });
            RegionRead { region, covered }
        })
        .collect();
    let uncovered: Vec<&str> = regions
        .iter()
        .filter(|r| !r.covered)
        .map(|r| r.region.as_str())
        .collect();
    let in_window: Vec<&TrailEvent> = trail
        .events
        .values()
        .filter(|e| e.time >= since && e.time <= judgement.as_of)
        .collect();
    let context = Context {
        plan,
        pods,
        trail,
        since,
        events: &in_window,
        quiet_since,
        uncovered: &uncovered,
    };
    let roles: Vec<RoleEvidence> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::RemoveLegacyTrust)
        .filter_map(|step| context.role(step))
        .collect();
    let grants = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::RemoveAssumeRoleGrant)
        .filter_map(|step| context.grant(step, &roles))
        .collect();
    let findings = roles
        .iter()
        .filter(|r| r.verdict == Verdict::UsedElsewhere)
        .map(|r| {
            Finding::new(
                Code::LegacyUsedElsewhere,
                Subject::new(None, "Role", r.role.as_str()),
                format!(
                    "{} still assume(s) it through the legacy path from outside this cluster ({} time(s) in the window, last {}: {}); its trust statement stays, and decommission holds {}",
                    r.legacy_principals.join(", "),
                    r.elsewhere.count,
                    r.elsewhere.last.as_deref().unwrap_or("?"),
                    r.elsewhere.sessions.join(", "),
                    r.step
                ),
            )
        })
        .collect();
    Evidence {
        as_of: crate::time::format(judgement.as_of),
        since: crate::time::format(since),
        quiet_since: crate::time::format(quiet_since),
        regions,
        roles,
        grants,
        findings,
    }
}

struct Context<'a> {
    plan: &'a Plan,
    pods: &'a Pods,
    trail: &'a Trail,
    since: i64,
    events: &'a [&'a TrailEvent],
    quiet_since: i64,
    uncovered: &'a [&'a str],
}

impl Context<'_> {
    fn role(&self, step: &Step) -> Option<RoleEvidence> {
        let Target::Role { arn, .. } = &step.target else {
            return None;
        };
        let before = aws_principals(&PolicyDocument(step.before.value()));
        let after = aws_principals(&PolicyDocument(step.after.value()));
        let legacy_principals: Vec<String> =
            before.into_iter().filter(|p| !after.contains(p)).collect();
        let legacy_uses: Vec<&TrailEvent> = self
            .events
            .iter()
            .copied()
            .filter(|e| {
                e.name == ASSUME_ROLE
                    && same_role(&e.role_arn, arn)
                    && matches!(&e.caller, Caller::RoleSession { issuer }
                        if legacy_principals.iter().any(|p| same_arn(issuer, p)))
            })
            .collect();
        let used_lately = legacy_uses.iter().any(|e| e.time >= self.quiet_since);
        let elsewhere = match self.pods.known() {
            true => self.usage(
                legacy_uses
                    .iter()
                    .copied()
                    .filter(|e| self.pods.named_by(e).is_none()),
            ),
            false => Usage::default(),
        };
        let legacy = self.usage(legacy_uses.into_iter());
        let service_accounts: Vec<ServiceAccountSeen> = self
            .plan
            .bindings
            .iter()
            .filter(|b| same_role(b.role_arn.as_str(), arn))
            .map(|binding| {
                let subject = format!(
                    "system:serviceaccount:{}:{}",
                    binding.namespace, binding.service_account
                );
                let web_identity = self.usage(self.events.iter().copied().filter(|e| {
                    e.name == ASSUME_ROLE_WITH_WEB_IDENTITY
                        && same_role(&e.role_arn, arn)
                        && matches!(&e.caller, Caller::WebIdentity { subject: s, provider }
                            if *s == subject && self.is_this_clusters(provider))
                }));
                ServiceAccountSeen {
                    namespace: binding.namespace.clone(),
                    name: binding.service_account.clone(),
                    web_identity,
                }
            })
            .collect();
        let last_used = self
            .trail
            .last_used
            .iter()
            .find(|(role, _)| same_role(role, arn))
            .map(|(_, used)| used);
        let iam_last_used = last_used.map(|used| IamLastUsed {
            date: crate::time::format(used.time),
            region: used.region.clone(),
        });
        // The coarse second signal: a role whose credentials were used in the window though no
        // assumption of it was read is assumed where this reading does not look.
        let unread_use = match last_used {
            Some(used)
                if used.time >= self.since
                    && legacy.count == 0
                    && service_accounts.iter().all(|s| s.web_identity.count == 0) =>
            {
                format!(
                    "; yet IAM last saw it used {}{}, so it is assumed where this reading does not look (an STS endpoint of another region, a caller of another account)",
                    crate::time::format(used.time),
                    used.region
                        .as_deref()
                        .map(|r| format!(" in {r}"))
                        .unwrap_or_default()
                )
            }
            Some(used) if used.time < self.since => format!(
                "; IAM last saw it used {}, before the window: nothing uses it now",
                crate::time::format(used.time)
            ),
            _ => String::new(),
        };
        let unseen: Vec<String> = service_accounts
            .iter()
            .filter(|s| s.web_identity.count == 0)
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect();
        let (verdict, reason) = if !elsewhere.is_none() {
            (
                Verdict::UsedElsewhere,
                format!(
                    "assumed through the legacy path {} time(s) in the window by sessions no pod of this cluster explains, last {} by {}: another cluster or a host still needs this trust (through a NAT gateway STS sees no pod addresses: then these are this cluster's once no pod of it makes them)",
                    elsewhere.count,
                    elsewhere.last.as_deref().unwrap_or("?"),
                    elsewhere.sessions.join(", ")
                ),
            )
        } else if used_lately {
            (
                Verdict::LegacyInUse,
                format!(
                    "assumed through the legacy path {} time(s) in the window, last {} by {}",
                    legacy.count,
                    legacy.last.as_deref().unwrap_or("?"),
                    legacy.sessions.join(", ")
                ),
            )
        } else if !self.uncovered.is_empty() {
            (
                Verdict::Unproven,
                format!(
                    "the CloudTrail of {} was not read over the window, so silence proves nothing",
                    self.uncovered.join(" and ")
                ),
            )
        } else if service_accounts.is_empty() {
            (
                Verdict::Unproven,
                format!(
                    "no service account of the plan assumes it through web identity{unread_use}"
                ),
            )
        } else if !unseen.is_empty() {
            (
                Verdict::Unproven,
                format!(
                    "never assumed through web identity by {} (their pods are not on IRSA yet, or their SDK is too old for web identity and fell back){unread_use}",
                    unseen.join(", ")
                ),
            )
        } else {
            (
                Verdict::Ready,
                format!(
                    "no legacy use since {}; every planned service account assumes it through web identity",
                    crate::time::format(self.quiet_since)
                ),
            )
        };
        Some(RoleEvidence {
            role: arn.clone(),
            step: step.id.clone(),
            verdict,
            reason,
            legacy_principals,
            legacy,
            elsewhere,
            service_accounts,
            iam_last_used,
        })
    }

    fn grant(&self, step: &Step, roles: &[RoleEvidence]) -> Option<GrantEvidence> {
        let Target::InlinePolicy { role_arn, .. } = &step.target else {
            return None;
        };
        let before = PolicyDocument(step.before.value()).allowed_resources("sts:AssumeRole");
        let after = PolicyDocument(step.after.value()).allowed_resources("sts:AssumeRole");
        let served: Vec<&String> = before.iter().filter(|r| !after.contains(r)).collect();
        let waiting_for: Vec<String> = roles
            .iter()
            .filter(|r| r.verdict != Verdict::Ready)
            .filter(|r| served.iter().any(|s| same_arn(s, r.role.as_str())))
            .map(|r| r.role.to_string())
            .collect();
        let planned: Vec<&RoleArn> = self.plan.bindings.iter().map(|b| &b.role_arn).collect();
        let mut outside: BTreeMap<&str, Vec<&TrailEvent>> = BTreeMap::new();
        for event in self.events.iter().copied().filter(|e| {
            e.name == ASSUME_ROLE
                && matches!(&e.caller, Caller::RoleSession { issuer } if same_arn(issuer, role_arn.as_str()))
                && !planned.iter().any(|p| same_role(&e.role_arn, p))
        }) {
            outside.entry(&event.role_arn).or_default().push(event);
        }
        let outside_plan: Vec<(String, Usage)> = outside
            .into_iter()
            .map(|(role, events)| (role.to_string(), self.usage(events.into_iter())))
            .collect();
        let (ready, reason) = if !self.uncovered.is_empty() {
            (
                false,
                format!(
                    "the CloudTrail of {} was not read over the window",
                    self.uncovered.join(" and ")
                ),
            )
        } else if !outside_plan.is_empty() {
            (
                false,
                format!(
                    "{role_arn} also assumed {} role(s) the plan does not move: {}",
                    outside_plan.len(),
                    outside_plan
                        .iter()
                        .map(|(role, _)| role.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else if !waiting_for.is_empty() {
            (
                false,
                format!("roles it served are not ready: {}", waiting_for.join(", ")),
            )
        } else {
            (
                true,
                "every role it served is ready and it assumed no other".to_string(),
            )
        };
        Some(GrantEvidence {
            principal: role_arn.clone(),
            step: step.id.clone(),
            ready,
            reason,
            waiting_for,
            outside_plan,
        })
    }

    /// Whether a web identity came through this cluster's OIDC provider (CloudTrail writes the
    /// provider's ARN, or its host and path), not another cluster's with the same service account.
    fn is_this_clusters(&self, provider: &str) -> bool {
        let arn = &self.plan.cluster.oidc_provider_arn;
        provider == arn
            || arn
                .split_once(":oidc-provider/")
                .is_some_and(|(_, host_path)| provider == host_path)
    }

    /// Count, last time and the last few distinct sessions of `events`, each with the pod it
    /// came from when known.
    fn usage<'e>(&self, events: impl Iterator<Item = &'e TrailEvent>) -> Usage {
        let mut events: Vec<&TrailEvent> = events.collect();
        events.sort_by(|a, b| b.time.cmp(&a.time).then(a.id.cmp(&b.id)));
        let mut sessions: Vec<String> = Vec::new();
        for event in &events {
            let mut session = event.session_name.clone();
            if let Some(pod) = self.pods.named_by(event) {
                session.push_str(&format!(" ({pod})"));
            }
            if !event.source_ip.is_empty() {
                session.push_str(&format!(" from {}", event.source_ip));
            }
            if !sessions.contains(&session) && sessions.len() < SESSIONS_SHOWN {
                sessions.push(session);
            }
        }
        Usage {
            count: events.len(),
            last: events.first().map(|e| crate::time::format(e.time)),
            sessions,
        }
    }
}

/// The `AWS` principals of a trust policy's statements.
fn aws_principals(document: &PolicyDocument) -> Vec<String> {
    let mut principals: Vec<String> = document
        .statements()
        .iter()
        .flat_map(|s| s.principals("AWS"))
        .map(str::to_string)
        .collect();
    principals.sort();
    principals.dedup();
    principals
}

/// Whether `text` names `role` (its account and name; CloudTrail and trust policies may differ
/// in whether they write the path).
fn same_role(text: &str, role: &RoleArn) -> bool {
    RoleArn::parse(text).is_ok_and(|r| r.account() == role.account() && r.name() == role.name())
}

/// Whether two ARNs name the same role, or are the same text.
fn same_arn(a: &str, b: &str) -> bool {
    a == b || RoleArn::parse(b).is_ok_and(|b| same_role(a, &b))
}

#[cfg(test)]
mod tests;
