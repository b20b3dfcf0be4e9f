//! The live backend: IAM targets go to AWS, Kubernetes targets to the API server.

use std::time::Duration;

use serde_json::Value;

use super::live_iam::LiveIam;
use super::live_kube::LiveKube;
use super::{Backend, BackendError, Rollout};
use crate::plan::{Step, Target};

pub struct Live {
    pub iam: LiveIam,
    pub kube: LiveKube,
}

impl Live {
    fn for_target(&mut self, target: &Target) -> &mut dyn Backend {
        if target.account().is_some() {
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

    fn calls(&self) -> Option<usize> {
        Some(self.iam.calls().unwrap_or(0) + self.kube.calls())
    }

    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        self.for_target(&step.target).read(step)
    }

    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
        self.for_target(&step.target).write(step, from, to)
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
