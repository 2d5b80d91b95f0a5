//! A slug is claimed once, atomically, and a retained tenant's data goes back only to the
//! Organization it was retained for (tenancy::claim): never to a second organization with the
//! same slug, never to a sign-up user who names a deleted tenant's slug.

mod support;

use support::{Harness, OperatorProcess, assert_denied_by, cluster, org_yaml};

/// Each test runs its own operator on the binary's one control plane: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn reason(h: &Harness, org: &str) -> String {
    h.jsonpath(&["organization", org], "{.status.conditions[?(@.type==\"Ready\")].reason}")
}

async fn wait_reason(h: &Harness, org: &str, wanted: &str) {
    support::eventually(&format!("{org} Ready reason {wanted}"), || async { reason(h, org) == wanted }).await;
}

/// Touches an Organization so the operator reconciles it now, not at its next re-check.
fn poke(h: &Harness, org: &str, n: u32) {
    h.kubectl_ok(&["annotate", "--overwrite", "organization", org, &format!("test/poke={n}")]);
}

fn events_with_reason(h: &Harness, reason: &str) -> Vec<String> {
    let out = h.kubectl_ok(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        &format!("reason={reason}"),
        "-o",
        "jsonpath={range .items[*]}{.involvedObject.name}{\"\\n\"}{end}",
    ]);
    out.lines().map(String::from).collect()
}

#[tokio::test]
async fn two_organizations_race_for_a_slug_and_the_loser_never_gets_the_retained_data() {
    let _serial = SERIAL.lock().await;
    let h = cluster();
    // Both Organizations exist before any reconcile: the webhook's cached slug check cannot
    // separate them (as with two creates inside its cache's lag), only the controller's claim.
    h.kubectl_ok(&["delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "--all"]);
    h.apply_ok(&org_yaml("race-a", "race", ""));
    h.apply_ok(&org_yaml("race-b", "race", "").replace("race-owner", "intruder"));
    let _operator = OperatorProcess::start_ready(&h, "operator-race.log");

    support::eventually("one of them provisioned", || async {
        [reason(&h, "race-a"), reason(&h, "race-b")].contains(&"Provisioned".to_string())
    })
    .await;
    let (winner, loser) =
        if reason(&h, "race-a") == "Provisioned" { ("race-a", "race-b") } else { ("race-b", "race-a") };
    wait_reason(&h, loser, "SlugConflict").await;
    let labelled = h.jsonpath(&["namespace", "org-race"], "{.metadata.labels.atlantiplex\\.io/organization-object}");
    assert_eq!(labelled, winner, "the namespace belongs to the winner only");
    let provisioned = events_with_reason(&h, "Provisioned");
    assert_eq!(
        provisioned.iter().filter(|n| n.starts_with("race-")).count(),
        1,
        "one Provisioned event: {provisioned:?}"
    );
    let loser_owner = if loser == "race-b" { "intruder" } else { "race-owner" };
    let winner_owner = if loser == "race-b" { "race-owner" } else { "intruder" };
    assert!(!h.can_i(loser_owner, "list", "configmaps", "org-race"), "the loser's owner has no access");

    // The winner is deleted with deletionPolicy Retain: its data stays, and stays its own.
    h.kubectl_ok(&["create", "configmap", "recordings", "-n", "org-race", "--from-literal=take=1"]);
    h.kubectl_ok(&["delete", "organization", winner, "--timeout=60s"]);
    poke(&h, loser, 1);
    wait_reason(&h, loser, "SlugHeld").await;
    let message = h.jsonpath(&["organization", loser], "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(message.contains(&format!("retained from deleted Organization {winner}")), "{message}");
    assert!(
        message.contains(&format!("kubectl annotate namespace org-race atlantiplex.io/release-to={loser}")),
        "{message}"
    );
    assert!(!h.can_i(loser_owner, "list", "configmaps", "org-race"), "retained data stays out of reach");
    assert_eq!(
        h.jsonpath(&["namespace", "org-race"], "{.metadata.labels.atlantiplex\\.io/organization-object}"),
        winner
    );
    // Deleting the refused organization (Delete policy) must not take the retained data with it.
    h.kubectl_ok(&["patch", "organization", loser, "--type=merge", "-p", "{\"spec\":{\"deletionPolicy\":\"Delete\"}}"]);
    h.kubectl_ok(&["delete", "organization", loser, "--timeout=60s"]);
    assert_eq!(h.jsonpath(&["namespace", "org-race"], "{.status.phase}"), "Active");

    // The same name with a stranger among its owners is refused; with its owners, it comes home.
    let stranger = org_yaml(winner, "race", "").replace(
        &format!("    - {{ kind: User, name: {winner_owner} }}\n"),
        &format!("    - {{ kind: User, name: {winner_owner} }}\n    - {{ kind: User, name: mallory }}\n"),
    );
    assert_denied_by(&h.apply_err(&stranger), "slug-held", "whose owners were all its owners");
    let original = if winner == "race-a" {
        org_yaml("race-a", "race", "")
    } else {
        org_yaml("race-b", "race", "").replace("race-owner", "intruder")
    };
    h.apply_ok(&original);
    h.wait_ready("organization", winner);
    assert_eq!(h.kubectl_ok(&["get", "configmap", "recordings", "-n", "org-race", "-o", "jsonpath={.data.take}"]), "1");
    assert!(h.can_i(winner_owner, "list", "configmaps", "org-race"), "the owners have their data back");
}

#[tokio::test]
async fn a_platform_admin_releases_retained_data_to_a_named_organization() {
    let _serial = SERIAL.lock().await;
    let h = cluster();
    let _operator = OperatorProcess::start_with(&h, "operator-release.log", &["--signup"]);
    h.wait_operator_ready();
    h.apply_ok(&org_yaml("oldco", "handover", ""));
    h.wait_ready("organization", "oldco");
    h.kubectl_ok(&["create", "configmap", "archive", "-n", "org-handover", "--from-literal=a=1"]);
    h.kubectl_ok(&["delete", "organization", "oldco", "--timeout=60s"]);

    // With sign-up on, any authenticated user may create organizations: not on a retained slug.
    let mallory = h.user("mallory", &[]);
    let grab = "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {name: oldco}\nspec: {slug: handover, displayName: mine}\n";
    let out = mallory.create(grab);
    assert_denied_by(&String::from_utf8_lossy(&out.stderr), "slug-held", "retained from deleted Organization oldco");
    let out = mallory.create(&grab.replace("name: oldco", "name: other"));
    assert_denied_by(&String::from_utf8_lossy(&out.stderr), "slug-held", "release-to=other");

    // A platform admin hands it to newco; the release is used once, then gone.
    h.kubectl_ok(&["annotate", "namespace", "org-handover", "atlantiplex.io/release-to=newco"]);
    support::eventually("the webhook sees the release", || async {
        h.apply(&org_yaml("newco", "handover", "")).status.success()
    })
    .await;
    h.wait_ready("organization", "newco");
    assert!(h.can_i("handover-owner", "get", "configmaps", "org-handover"));
    assert_eq!(
        h.jsonpath(&["namespace", "org-handover"], "{.metadata.labels.atlantiplex\\.io/organization-object}"),
        "newco"
    );
    assert_eq!(h.jsonpath(&["namespace", "org-handover"], "{.metadata.annotations.atlantiplex\\.io/release-to}"), "");
}
