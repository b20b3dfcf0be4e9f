//! The live backend: IAM targets go to AWS, Kubernetes targets to the API server.

use std::time::Duration;

use serde_json::Value;

use super::live_iam::LiveIam;
use super::live_kube::LiveKube;
use super::{Backend, BackendError, Rollout, TrailReading};
use crate::iam::arn::RoleArn;
use crate::plan::{Step, Target};

pub struct Live {
    pub iam: LiveIam,
    pub kube: LiveKube,
}

impl Live {
    fn for_target(&mut self, target: &Target) -> &mut dyn Backend {
        if target.is_iam() {
            &mut self.iam
        } else {
            &mut self.kube
        }
    }
}

impl Backend for Live {
    fn describe(&self) -> String {
        format!("{} and {}", self.iam.describe(), self.kube.describe())
    }

    fn conditional_writes(&self, target: &Target) -> bool {
        if target.is_iam() {
            self.iam.conditional_writes(target)
        } else {
            self.kube.conditional_writes(target)
        }
    }

    fn calls(&self) -> Option<usize> {
        Some(self.iam.calls().unwrap_or(0) + self.kube.calls().unwrap_or(0))
    }

    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        self.for_target(&step.target).read(step)
    }

    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
        self.for_target(&step.target).write(step, from, to)
    }

    fn concurrency(&self) -> usize {
        self.iam.concurrency()
    }

    fn read_many(&mut self, steps: &[&Step]) -> Vec<Result<Value, BackendError>> {
        dispatch(
            steps,
            |step| step.target.is_iam(),
            |iam_steps| self.iam.read_many(iam_steps),
            |step| self.kube.read(step),
        )
    }

    fn write_many(&mut self, moves: &[(&Step, &Value, &Value)]) -> Vec<Result<(), BackendError>> {
        dispatch(
            moves,
            |(step, _, _)| step.target.is_iam(),
            |iam_moves| self.iam.write_many(iam_moves),
            |(step, from, to)| self.kube.write(step, from, to),
        )
    }

    /// CloudTrail as IAM's side reads it, and the cluster's pods as they run now.
    fn trail(
        &mut self,
        regions: &[String],
        start: i64,
        roles: &[RoleArn],
    ) -> Result<TrailReading, BackendError> {
        let mut reading = self.iam.trail(regions, start, roles)?;
        reading.pods = self.kube.running_pods()?;
        Ok(reading)
    }

    fn ready_to_restart(
        &mut self,
        rollout: &Rollout,
        timeout: Duration,
    ) -> Result<Option<String>, BackendError> {
        self.kube.ready_to_restart(rollout, timeout)
    }

    fn observes_rollouts(&self) -> bool {
        true
    }

    fn verify_rollout(
        &mut self,
        wave: &[Rollout],
        timeout: Duration,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, BackendError> {
        self.kube.verify_rollout(wave, timeout, progress)
    }
}

/// IAM items go to `iam` together (it bounds its own concurrency), the others to `kube` one by
/// one; results in the order of `items`.
fn dispatch<T: Copy, R>(
    items: &[T],
    for_iam: impl Fn(&T) -> bool,
    iam: impl FnOnce(&[T]) -> Vec<R>,
    mut kube: impl FnMut(T) -> R,
) -> Vec<R> {
    let mut iam_items = Vec::new();
    let mut kube_items = Vec::new();
    for (index, item) in items.iter().copied().enumerate() {
        if for_iam(&item) {
            iam_items.push((index, item));
        } else {
            kube_items.push((index, item));
        }
    }
    let batch: Vec<T> = iam_items.iter().map(|(_, item)| *item).collect();
    let mut results: Vec<(usize, R)> = iam_items
        .into_iter()
        .map(|(index, _)| index)
        .zip(iam(&batch))
        .collect();
    results.extend(
        kube_items
            .into_iter()
            .map(|(index, item)| (index, kube(item))),
    );
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}
