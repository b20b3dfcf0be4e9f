//! The binding rules: which usages move, and to which service account. Only usages that work
//! today move; a service account is annotated in place only when every workload using it has that
//! same role today; other users get dedicated service accounts; an annotated account is never
//! overwritten.

use std::collections::{BTreeMap, BTreeSet};

use super::assemble::Planner;
use super::document::{Binding, ServiceAccountAction, Skipped, WorkloadRef};
use super::naming;
use crate::findings::{Code, Finding, Subject};
use crate::iam::arn::RoleArn;
use crate::iam::written_arn::WrittenRoleArn;
use crate::inventory::WorkloadKind;
use crate::scan::{IRSA_ANNOTATION, RoleSource, ScannedWorkload, Status, Trust, Usage};

enum Decision {
    /// To this role, its ARN checked.
    Migrate(RoleArn),
    Skip(Code, String),
}

/// The users of one service account that move to one role.
struct Moving<'w> {
    role: RoleArn,
    users: Vec<&'w ScannedWorkload>,
}

impl Planner<'_> {
    /// The role a workload has today through the legacy path, if it really works (a role that
    /// works is one the scan could read, so its ARN is valid).
    pub(super) fn role_today(usage: &Usage) -> Option<&RoleArn> {
        usage
            .legacy
            .as_ref()
            .filter(|_| usage.works_today)
            .and_then(|l| l.arn.as_ref())
            .and_then(|arn| arn.role().ok())
    }

    fn decide(kind: WorkloadKind, usage: &Usage) -> Decision {
        let Some(legacy) = &usage.legacy else {
            return Decision::Skip(
                Code::AlreadyIrsa,
                "uses IRSA only; nothing to migrate".into(),
            );
        };
        // An account annotated with the legacy role already gives it through IRSA: migrating
        // only restarts the workload and removes the legacy annotation. Another role is never
        // overwritten.
        if usage.status == Status::Both && usage.irsa_role_arn != legacy.arn {
            return Decision::Skip(
                Code::AlreadyIrsa,
                format!(
                    "its service account already carries {}, another role than the legacy path's, and is never overwritten",
                    usage
                        .irsa_role_arn
                        .as_ref()
                        .map_or("", WrittenRoleArn::as_str)
                ),
            );
        }
        if usage.host_network {
            return Decision::Skip(
                Code::HostNetwork,
                "hostNetwork: uses the node role today, not the annotated role".into(),
            );
        }
        if let Some(invalid) = &legacy.verdict.invalid {
            return Decision::Skip(
                Code::InvalidAnnotation,
                format!("{}: {invalid}", legacy.verdict.rule),
            );
        }
        let Some(arn) = &legacy.arn else {
            return Decision::Skip(Code::LegacyAgentConfig, legacy.verdict.rule.clone());
        };
        let Ok(role) = arn.role().cloned() else {
            return Decision::Skip(Code::InvalidAnnotation, format!("{arn} is not a role ARN"));
        };
        if !legacy.verdict.permitted {
            return Decision::Skip(Code::NamespaceNotPermitted, legacy.verdict.rule.clone());
        }
        match &legacy.trust {
            Trust::RoleNotFound => {
                return Decision::Skip(Code::RoleNotFound, format!("{arn} does not exist"));
            }
            Trust::Missing => {
                return Decision::Skip(
                    Code::LegacyTrustMissing,
                    format!("{arn} does not trust the legacy principal"),
                );
            }
            Trust::Unknown { reason } => return Decision::Skip(Code::RoleUnknown, reason.clone()),
            Trust::Trusted { .. } => {}
        }
        if legacy.source == RoleSource::DefaultRole {
            return Decision::Skip(
                Code::DefaultRole,
                "gets kube2iam's default role without asking for it; give it a role annotation if it needs one".into(),
            );
        }
        if let Some(hold) = usage.rollout_hold {
            return Decision::Skip(
                Code::RolloutHeld,
                format!(
                    "{}; release the hold, take a new snapshot and plan again",
                    hold.explain(kind)
                ),
            );
        }
        match kind {
            WorkloadKind::Pod => Decision::Skip(
                Code::BarePod,
                "a bare pod must be re-created by hand".into(),
            ),
            WorkloadKind::Job => Decision::Skip(
                Code::JobImmutable,
                "a Job's template cannot change; re-create it".into(),
            ),
            _ => Decision::Migrate(role),
        }
    }

    pub(super) fn skip(
        &mut self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        reason: Code,
        message: String,
    ) {
        self.skipped.push(Skipped {
            namespace: namespace.to_string(),
            kind,
            name: name.to_string(),
            reason,
            message,
        });
    }

    /// Groups workloads by service account and decides, per account, reuse or dedicated accounts.
    pub(super) fn bind(&mut self) {
        let mut by_account: BTreeMap<(&str, &str), Vec<&ScannedWorkload>> = BTreeMap::new();
        for workload in &self.scan.workloads {
            by_account
                .entry((&workload.namespace, &workload.service_account))
                .or_default()
                .push(workload);
        }
        let mut taken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (namespace, name) in self.inventory.service_accounts.keys() {
            taken
                .entry(namespace.clone())
                .or_default()
                .insert(name.clone());
        }
        for ((namespace, account), users) in by_account {
            if !self.inventory.namespaces.contains_key(namespace) {
                for user in &users {
                    if user.usage.is_some() {
                        self.skip(
                            namespace,
                            user.kind,
                            &user.name,
                            Code::NamespaceNotCaptured,
                            format!("namespace {namespace} is not in the source"),
                        );
                    }
                }
                continue;
            }
            // By the role's ARN as written: the order dedicated names are handed out in.
            let mut migrating: BTreeMap<RoleArn, Moving<'_>> = BTreeMap::new();
            let mut roles_today = BTreeSet::new();
            for user in &users {
                let usage = user.usage.as_ref();
                roles_today.insert(usage.and_then(Self::role_today));
                let Some(usage) = usage else { continue };
                match Self::decide(user.kind, usage) {
                    Decision::Migrate(role) => migrating
                        .entry(role.clone())
                        .or_insert_with(|| Moving {
                            role,
                            users: Vec::new(),
                        })
                        .users
                        .push(user),
                    Decision::Skip(code, message) => {
                        self.skip(namespace, user.kind, &user.name, code, message)
                    }
                }
            }
            if migrating.is_empty() {
                continue;
            }
            let inventory = self.inventory;
            let Some(service_account) = inventory
                .service_accounts
                .get(&(namespace.to_string(), account.to_string()))
            else {
                for user in migrating.values().flat_map(|moving| &moving.users) {
                    self.skip(
                        namespace,
                        user.kind,
                        &user.name,
                        Code::ServiceAccountMissing,
                        format!("service account {account} is not in the source"),
                    );
                }
                self.findings.push(Finding::new(
                    Code::ServiceAccountMissing,
                    Subject::new(Some(namespace), "ServiceAccount", account),
                    "workloads run as this service account, but it is not in the source; capture service accounts and re-plan",
                ));
                continue;
            };
            if let Some(annotated) = service_account.metadata.annotations.get(IRSA_ANNOTATION) {
                // Every user of an annotated account already has its role through IRSA, so its
                // users migrating (legacy role = that role, as `decide` ensures) keep the account
                // as it is: nothing on it changes, so unlike annotating, this needs no agreement
                // from its other users.
                for (role, Moving { users, .. }) in migrating {
                    if role.as_str() == annotated {
                        self.bindings.push(Binding {
                            namespace: namespace.to_string(),
                            service_account: account.to_string(),
                            role_arn: role,
                            service_account_action: ServiceAccountAction::Keep,
                            from_service_account: account.to_string(),
                            workloads: refs(&users),
                        });
                    } else {
                        for user in users {
                            self.skip(
                                namespace,
                                user.kind,
                                &user.name,
                                Code::AlreadyIrsa,
                                format!("its service account {account} carries {annotated}, not its legacy role {role}"),
                            );
                        }
                    }
                }
                continue;
            }
            // Reuse only when every user of the account has exactly this role today.
            let only_role = (migrating.len() == 1 && roles_today.len() == 1)
                .then(|| migrating.keys().next().cloned())
                .flatten()
                .filter(|role| roles_today.contains(&Some(role)));
            if let Some(role) = only_role {
                let workloads = refs(&migrating[&role].users);
                self.bindings.push(Binding {
                    namespace: namespace.to_string(),
                    service_account: account.to_string(),
                    role_arn: role,
                    service_account_action: ServiceAccountAction::Reuse,
                    from_service_account: account.to_string(),
                    workloads,
                });
                continue;
            }
            for (role, Moving { role: arn, users }) in migrating {
                let taken_here = taken.entry(namespace.to_string()).or_default();
                let name = naming::unique_name(
                    &[account, arn.name()],
                    &format!("{namespace}/{account}/{role}"),
                    taken_here,
                );
                taken_here.insert(name.clone());
                self.findings.push(Finding::new(
                    Code::DedicatedServiceAccount,
                    Subject::new(Some(namespace), "ServiceAccount", &name),
                    format!(
                        "created for {} (role {role}), which shared service account {account} with workloads of other roles; it copies {account}'s pull secrets, automount setting and RBAC bindings",
                        users.iter().map(|u| format!("{}/{}", u.kind, u.name)).collect::<Vec<_>>().join(", ")
                    ),
                ));
                self.bindings.push(Binding {
                    namespace: namespace.to_string(),
                    service_account: name,
                    role_arn: role,
                    service_account_action: ServiceAccountAction::Create,
                    from_service_account: account.to_string(),
                    workloads: refs(&users),
                });
            }
        }
    }
}

fn refs(users: &[&ScannedWorkload]) -> Vec<WorkloadRef> {
    let mut refs: Vec<WorkloadRef> = users
        .iter()
        .map(|u| WorkloadRef {
            kind: u.kind,
            name: u.name.clone(),
        })
        .collect();
    refs.sort();
    refs
}
