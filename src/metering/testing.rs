//! Helpers for the metering unit tests.

use crate::api::{Plan, PlanSpec};
use jiff::Timestamp;

pub(crate) fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A plan shipped in examples/plans.yaml, so tests check what users get.
pub(crate) fn shipped(name: &str) -> PlanSpec {
    serde_yaml::Deserializer::from_str(include_str!("../../examples/plans.yaml"))
        .map(|d| <Plan as serde::Deserialize>::deserialize(d).unwrap())
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap()
        .spec
}
