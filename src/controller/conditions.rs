//! Conditions that keep their transition time while their status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub fn new(type_: &str, ok: bool, reason: &str, message: impl Into<String>, generation: Option<i64>) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// `desired` with each condition's lastTransitionTime taken from `previous` when its status
/// is unchanged, so an unchanged status compares equal and is not written again; conditions
/// `desired` does not decide keep their last value.
pub fn merge(previous: &[Condition], desired: Vec<Condition>) -> Vec<Condition> {
    let kept: Vec<Condition> =
        previous.iter().filter(|old| !desired.iter().any(|c| c.type_ == old.type_)).cloned().collect();
    desired
        .into_iter()
        .map(|mut c| {
            if let Some(old) = previous.iter().find(|o| o.type_ == c.type_ && o.status == c.status) {
                c.last_transition_time = old.last_transition_time.clone();
            }
            c
        })
        .chain(kept)
        .collect()
}
