//! `--moto`: the live cost of `prepare` against moto, then of the Kubernetes phases against the
//! real control plane.

use std::path::Path;

use irsa_migrate::apply::Direction;
use irsa_migrate::apply::journal::Journal;
use irsa_migrate::inventory::snapshot::load_dir;
use irsa_migrate::plan::{Settings, plan};

use crate::cluster::{loaded_control_plane, seed_roles};
use crate::measure::{run_timed, timed_apply};
use crate::{generator, moto};

/// Pods of the cluster whose `prepare` runs against moto: 264 namespaces, 1,004 roles.
const MOTO_PODS: usize = 13_200;

/// The live cost of `prepare` for the 1,004 roles bound in a 264-namespace cluster, against moto
/// (`IRSA_MIGRATE_MOTO`, installed by scripts/test): wall time and IAM calls per role.
pub fn measure_prepare_against_moto(root: &Path) {
    use irsa_migrate::aws::{Aws, AwsArgs};
    use irsa_migrate::backend::Backend;
    use irsa_migrate::backend::live_iam::LiveIam;
    if std::env::var_os("IRSA_MIGRATE_MOTO").is_none() {
        println!(
            "\nprepare against moto: skipped (run scripts/test once, then IRSA_MIGRATE_MOTO=target/moto-venv/bin/moto_server cargo bench)"
        );
        return;
    }
    let dir = root.join(format!("pods-{MOTO_PODS}"));
    if !dir.join("cluster.json").exists() {
        generator::generate(&dir, MOTO_PODS).expect("snapshot generated");
    }
    let server = moto::Moto::start();
    for (key, value) in server.env() {
        // SAFETY: set before any other thread of this process reads the environment.
        unsafe { std::env::set_var(key, value) };
    }
    let aws = Aws::connect(&AwsArgs {
        endpoint_url: Some(server.endpoint.clone()),
        region: Some("eu-west-1".into()),
        ..AwsArgs::default()
    })
    .expect("aws");
    let details: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("iam.json")).unwrap()).unwrap();
    let iam = server.iam(&aws.runtime);
    aws.runtime.block_on(async {
        for role in details["RoleDetailList"].as_array().unwrap() {
            let name = role["RoleName"].as_str().unwrap();
            iam.create_role()
                .role_name(name)
                .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
                .send()
                .await
                .expect("role created");
        }
    });
    let hidden = irsa_migrate::progress::Silent;
    let inventory = load_dir(&dir, &hidden).expect("snapshot loads");
    let planned = plan(&inventory, "bench", &Settings::default()).expect("plans");
    let roles = planned
        .steps
        .iter()
        .filter(|s| s.kind == irsa_migrate::plan::StepKind::UpdateRoleTrust)
        .count();
    let mut backend = LiveIam::new(
        irsa_migrate::aws::AwsAccounts {
            default: aws,
            others: Default::default(),
        },
        1,
    );
    // The same 1,000 roles, one at a time and then eight at a time; rolled back in between so
    // the second run starts from the same IAM state.
    for concurrency in [1, 8] {
        backend.set_concurrency(concurrency);
        let work = root.join(format!("moto-journal-{concurrency}"));
        let _ = std::fs::remove_dir_all(&work);
        let mut journal = Journal::open(&work.join("journal.jsonl")).expect("journal");
        let calls_before = backend.calls().unwrap_or(0);
        let (summary, seconds) = timed_apply(
            &planned,
            &mut journal,
            &mut backend,
            vec![irsa_migrate::plan::Phase::Prepare],
            Direction::Apply,
        );
        let calls = backend.calls().unwrap_or(0) - calls_before;
        println!(
            "\nprepare against moto, {concurrency} at a time: {roles} roles ({} steps) in {seconds:.1} s ({:.0} steps/s); {calls} IAM calls = {:.2} per step (one read, one write)",
            summary.changed,
            summary.changed as f64 / seconds,
            calls as f64 / summary.changed.max(1) as f64
        );
        let (undone, seconds) = timed_apply(
            &planned,
            &mut journal,
            &mut backend,
            vec![irsa_migrate::plan::Phase::Prepare],
            Direction::Rollback,
        );
        println!(
            "rollback of the same, {concurrency} at a time: {} steps in {seconds:.1} s",
            undone.changed
        );
    }
    measure_kubernetes_phases(root, &server, &mut backend);
}

/// Pods of the cluster whose Kubernetes phases run against the real control plane: 20 namespaces
/// (kwok runs every pod, and the rollout and cleanup restart most of them, on 2 cores).
const KUBE_PODS: usize = 1_000;

/// The live cost of the Kubernetes phases (identity, rollout with verification, cleanup) against
/// a real control plane loaded with a generated cluster: snapshot, plan, `prepare` against moto,
/// then the three phases; API calls per step and per migrated workload.
fn measure_kubernetes_phases(
    root: &Path,
    server: &moto::Moto,
    iam: &mut irsa_migrate::backend::live_iam::LiveIam,
) {
    use irsa_migrate::backend::Backend;
    use irsa_migrate::backend::live_kube::LiveKube;
    use irsa_migrate::plan::Phase;
    // Not the offline pods-1000: generated anew, with jobs the API server accepts.
    let dir = root.join(format!("kube-pods-{KUBE_PODS}"));
    if !dir.join("cluster.json").exists() {
        generator::generate(&dir, KUBE_PODS).expect("snapshot generated");
    }
    seed_roles(server, &dir);
    server.create_cluster("bench");
    let cluster = loaded_control_plane(&dir, KUBE_PODS / 200 + 2);
    let work = root.join("kube-journal");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work directory");
    let kubeconfig = cluster.admin_kubeconfig();
    let snapshot = work.join("snapshot");
    let mut envs = server.env();
    envs.push(("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()));
    let (output, seconds, _) = run_timed(
        Path::new(env!("CARGO_BIN_EXE_irsa-migrate")),
        &[
            "snapshot",
            "--out",
            snapshot.to_str().unwrap(),
            "--cluster",
            "bench",
        ],
        &envs,
        None,
    );
    eprintln!(
        "snapshot of the live cluster in {seconds:.1} s: {}",
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
    );
    let hidden = irsa_migrate::progress::Silent;
    let inventory = load_dir(&snapshot, &hidden).expect("snapshot loads");
    let planned = plan(&inventory, "bench", &Settings::default()).expect("plans");
    let mut journal = Journal::open(&work.join("journal.jsonl")).expect("journal");
    iam.set_concurrency(8);
    timed_apply(
        &planned,
        &mut journal,
        iam,
        vec![Phase::Prepare],
        Direction::Apply,
    );
    let mut kube = LiveKube::new(irsa_migrate::kubernetes::KubeArgs {
        kubeconfig: Some(kubeconfig),
        context: None,
        page_size: 500,
    });
    let workloads: usize = planned.bindings.iter().map(|b| b.workloads.len()).sum();
    println!(
        "\nKubernetes phases against the real control plane ({} pods, {} namespaces, kwok):",
        inventory.pods.len(),
        inventory.namespaces.len()
    );
    for phase in [Phase::Identity, Phase::Rollout, Phase::Cleanup] {
        let before = kube.calls().unwrap_or(0);
        let (summary, seconds) = timed_apply(
            &planned,
            &mut journal,
            &mut kube,
            vec![phase],
            Direction::Apply,
        );
        let calls = kube.calls().unwrap_or(0) - before;
        println!(
            "{phase}: {} steps in {seconds:.1} s; {calls} API calls = {:.2} per step, {:.2} per migrated workload ({workloads})",
            summary.changed,
            calls as f64 / summary.changed.max(1) as f64,
            calls as f64 / workloads.max(1) as f64,
        );
    }
}
