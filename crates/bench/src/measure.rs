//! Figures: latency percentiles, a process's CPU time and memory, requests in the audit log.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// (user+system CPU seconds, peak RSS in MiB) of a live process, from /proc.
pub fn process_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu / ticks, hwm_kib / 1024.0)
}

/// Requests by verb that `user` sent, from the audit log, with the line count read so far
/// (to measure a later window from there).
pub fn requests_by_verb(audit_log: &Path, user: &str, from_line: usize) -> (BTreeMap<String, u64>, usize) {
    let text = std::fs::read_to_string(audit_log).unwrap_or_default();
    let mut by_verb = BTreeMap::new();
    let mut lines = 0;
    for (n, line) in text.lines().enumerate() {
        lines = n + 1;
        if n < from_line {
            continue;
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if event["user"]["username"] == user
            && let Some(verb) = event["verb"].as_str()
        {
            *by_verb.entry(verb.to_string()).or_insert(0) += 1;
        }
    }
    (by_verb, lines)
}

/// Writes by `verb resource[/subresource]` that `user` sent, to see where the writes go.
pub fn writes_by_resource(audit_log: &Path, user: &str) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(audit_log).unwrap_or_default();
    let mut by_resource = BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let verb = event["verb"].as_str().unwrap_or_default();
        if event["user"]["username"] != user || !WRITE_VERBS.contains(&verb) {
            continue;
        }
        let object = &event["objectRef"];
        let mut resource = object["resource"].as_str().unwrap_or_default().to_string();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        *by_resource.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }
    by_resource
}

const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

pub fn writes(by_verb: &BTreeMap<String, u64>) -> u64 {
    WRITE_VERBS.iter().map(|v| by_verb.get(*v).copied().unwrap_or(0)).sum()
}
