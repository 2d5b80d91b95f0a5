//! Audit records as a table for people (`--output table`).

use super::audit::AuditEntry;

const HEADERS: [&str; 8] = ["TIME", "ORGANIZATION", "ACTOR", "KIND", "OBJECT", "ACTION", "RESULT", "REASON"];

/// Columns padded to their widest cell, two spaces apart, like `kubectl get`. Times are UTC to the second.
pub fn audit_table(entries: &[AuditEntry]) -> String {
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            let r = &e.record;
            [
                r.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                dash(&r.organization),
                dash(&r.actor),
                dash(&r.kind),
                dash(&r.object),
                dash(&r.action),
                r.result.as_str().to_string(),
                // One line per record, whatever the reason holds.
                dash(&r.reason.replace(['\n', '\r', '\t'], " ")),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&HEADERS);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".to_string() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AuditRecord, AuditResult};

    fn entry(org: &str, actor: &str, result: AuditResult, reason: &str) -> AuditEntry {
        let mut record = AuditRecord::new(actor, org, "Organization", org, "update", result).with_reason(reason);
        record.at = "2026-03-10T12:34:56.789Z".parse().unwrap();
        AuditEntry { id: "x".into(), record }
    }

    #[test]
    fn aligned_columns() {
        let table = audit_table(&[
            entry("acme", "alice@acme.example", AuditResult::Allowed, ""),
            entry("globex", "system:serviceaccount:x:y", AuditResult::Denied, "6 users but plan free\nallows 5"),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("TIME                  ORGANIZATION  ACTOR"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "2026-03-10T12:34:56Z  acme          alice@acme.example         Organization  acme    update  allowed  -"
        );
        assert!(lines[2].ends_with("denied   6 users but plan free allows 5"), "{}", lines[2]);
        let col = |l: &str, word: &str| l.find(word).unwrap();
        assert_eq!(col(lines[0], "RESULT"), col(lines[1], "allowed"));
        assert_eq!(col(lines[0], "RESULT"), col(lines[2], "denied"));
    }

    #[test]
    fn empty_table_has_headers() {
        assert_eq!(audit_table(&[]), "TIME  ORGANIZATION  ACTOR  KIND  OBJECT  ACTION  RESULT  REASON\n");
    }
}
