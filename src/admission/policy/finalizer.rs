//! The mutating webhook adds the operator's cleanup finalizer to new Organizations and Teams, so
//! the controller does not spend a write (and a wait for its echo) adding it afterwards.

use serde_json::{Value, json};

/// JSON Patch operations adding `finalizer` to the raw object, if it lacks it.
pub fn finalizer_ops(object: &Value, finalizer: &str) -> Vec<Value> {
    match object.pointer("/metadata/finalizers") {
        Some(Value::Array(present)) if present.iter().any(|f| f.as_str() == Some(finalizer)) => vec![],
        Some(Value::Array(_)) => vec![json!({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer})],
        _ => vec![json!({"op": "add", "path": "/metadata/finalizers", "value": [finalizer]})],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patched(object: Value) -> Value {
        let ops = finalizer_ops(&object, "atlantiplex.io/x");
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("a JSON patch");
        let mut doc = object;
        json_patch::patch(&mut doc, &patch).expect("applies");
        doc
    }

    #[test]
    fn adds_the_finalizer_once_and_keeps_others() {
        assert_eq!(patched(json!({"metadata": {}}))["metadata"]["finalizers"], json!(["atlantiplex.io/x"]));
        assert_eq!(
            patched(json!({"metadata": {"finalizers": ["other"]}}))["metadata"]["finalizers"],
            json!(["other", "atlantiplex.io/x"])
        );
        assert!(
            finalizer_ops(&json!({"metadata": {"finalizers": ["atlantiplex.io/x"]}}), "atlantiplex.io/x").is_empty()
        );
    }
}
