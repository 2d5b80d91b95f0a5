//! The admission webhook, registered with and called by the real API server: requests by
//! different users (client certificates minted per user) are allowed or denied exactly per the
//! role table, with messages that name the rule and the fix.

mod support;

use support::{User, assert_denied_by, cluster_with_operator, org_yaml};

fn member(name: &str, role: &str) -> String {
    format!(r#"[{{"op":"add","path":"/spec/members/-","value":{{"kind":"User","name":"{name}","role":"{role}"}}}}]"#)
}

fn patch_json(user: &User, target: &[&str], patch: &str) -> std::process::Output {
    let mut args = vec!["patch"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["--type=json", "-p", patch]);
    user.kubectl(&args, None)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn team_yaml(name: &str, org: &str, parent: Option<&str>, members: &str) -> String {
    let parent = parent.map(|p| format!("  parent: {p}\n")).unwrap_or_default();
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata:\n  name: {name}\nspec:\n  organization: {org}\n{parent}  members: {members}\n"
    )
}

#[tokio::test]
async fn the_role_table_decides_each_users_request() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml(
        "wh-acme",
        "wh-acme",
        "  members:\n    - { kind: User, name: bob, role: Admin }\n    - { kind: User, name: carol, role: Member }\n",
    ));
    h.apply_ok(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {name: wh-acme}\nspec: {organization: wh-acme, plan: starter, billingEmail: billing@acme.test}\n",
    );
    h.apply_ok(&team_yaml("wh-acme.video", "wh-acme", None, "[{kind: User, name: erin, role: TeamAdmin}]"));
    h.wait_ready("organization", "wh-acme");
    h.wait_ready("team", "wh-acme.video");
    let (alice, bob, carol, erin, mallory) = (
        h.user("wh-acme-owner", &[]),
        h.user("bob", &[]),
        h.user("carol", &[]),
        h.user("erin", &[]),
        h.user("mallory", &[]),
    );
    let org = ["organization", "wh-acme"];
    support::eventually("the organization's access role reaches its members", || async {
        carol.kubectl(&["get", "organization", "wh-acme"], None).status.success()
    })
    .await;

    // Members: Owners and Admins.
    let out = patch_json(&carol, &org, &member("zed", "Viewer"));
    assert_denied_by(
        &stderr(&out),
        "members-admins-only",
        "changing spec.members of organization wh-acme needs role Owner or Admin (you are Member)",
    );
    assert!(patch_json(&bob, &org, &member("zed", "Viewer")).status.success(), "an Admin changes members");
    // Owners and deletion: Owners only.
    let out = patch_json(&bob, &org, r#"[{"op":"add","path":"/spec/owners/-","value":{"kind":"User","name":"bob"}}]"#);
    assert_denied_by(&stderr(&out), "owners-only", "needs role Owner (you are Admin)");
    assert_denied_by(
        &bob.denied(&["delete", "organization", "wh-acme"]),
        "owners-only",
        "only an Owner may delete organization wh-acme",
    );
    // Plan and billing: Owners only.
    let sub = ["subscription", "wh-acme"];
    let to_pro = r#"[{"op":"replace","path":"/spec/plan","value":"professional"}]"#;
    assert_denied_by(&stderr(&patch_json(&bob, &sub, to_pro)), "billing-owners-only", "ask an owner");
    assert!(patch_json(&alice, &sub, to_pro).status.success(), "the Owner changes the plan");
    // Teams: Owners and Admins anywhere, a TeamAdmin below their own teams.
    let out = carol.create(&team_yaml("wh-acme.audio", "wh-acme", None, "[]"));
    assert_denied_by(&stderr(&out), "teams-admins-only", "creating a top-level team needs role Owner or Admin");
    let out = erin.create(&team_yaml("wh-acme.top", "wh-acme", None, "[]"));
    assert_denied_by(&stderr(&out), "teams-admins-only", "create it under a team you administer");
    let out = erin.create(&team_yaml("wh-acme.clips", "wh-acme", Some("wh-acme.video"), "[]"));
    assert!(out.status.success(), "a TeamAdmin creates a sub-team: {}", stderr(&out));
    assert!(patch_json(&erin, &["team", "wh-acme.video"], &member("frank", "Member")).status.success());
    let out = patch_json(&carol, &["team", "wh-acme.video"], &member("carol", "TeamAdmin"));
    assert!(!out.status.success(), "a Member of the organization does not manage team members");
    // Nobody else sees or touches the organization: RBAC names its objects.
    assert!(stderr(&mallory.kubectl(&["get", "organization", "wh-acme"], None)).contains("Forbidden"));
    let out = mallory.create(&team_yaml("wh-acme.intruders", "wh-acme", None, "[]"));
    assert_denied_by(&stderr(&out), "teams-admins-only", "(you are not a member)");
}

#[tokio::test]
async fn plan_limits_slugs_and_hosts_hold_for_everyone() {
    let h = cluster_with_operator();
    let members: String = (2..=5).map(|i| format!("    - {{ kind: User, name: tiny-u{i}, role: Member }}\n")).collect();
    h.apply_ok(&org_yaml("wh-tiny", "wh-tiny", &format!("  members:\n{members}")));
    let sixth = format!("{members}    - {{ kind: User, name: tiny-u6, role: Member }}\n");
    let err = h.apply_err(&org_yaml("wh-tiny", "wh-tiny", &format!("  members:\n{sixth}")));
    assert_denied_by(
        &err,
        "plan-users",
        "plan free allows 5 users and this would make 6 (owners, members and team members, each distinct subject once): remove 1 of them, or upgrade the plan",
    );
    // Team members are users too: a team cannot bring in people past the plan's limit.
    let err = h.apply_err(&team_yaml(
        "wh-tiny.side-door",
        "wh-tiny",
        None,
        "[{ kind: User, name: x1, role: Member }, { kind: User, name: x2, role: Member }]",
    ));
    assert_denied_by(&err, "plan-users", "plan free allows 5 users and this would make 7");
    // Someone who already has a role adds no user.
    h.apply_ok(&team_yaml("wh-tiny.one", "wh-tiny", None, "[{ kind: User, name: tiny-u2, role: Member }]"));
    h.wait_ready("team", "wh-tiny.one");
    support::eventually("status counts distinct users", || async {
        h.jsonpath(&["organization", "wh-tiny"], "{.status.usage.users}") == "5/5"
    })
    .await;
    h.apply_ok(&team_yaml("wh-tiny.two", "wh-tiny", None, "[]"));
    // The webhook counts from its caches, which trail a write by milliseconds (two creates inside
    // that window both pass, and the controller's limit check, oldest first, is the backstop).
    h.wait_ready("team", "wh-tiny.two");
    let err = h.apply_err(&team_yaml("wh-tiny.three", "wh-tiny", None, "[]"));
    assert_denied_by(
        &err,
        "plan-teams",
        "plan free allows 2 teams and organization wh-tiny has 2: delete a team or upgrade the plan",
    );

    // A downgrade waits until usage fits, and says what to remove.
    h.apply_ok(&org_yaml("wh-big", "wh-big", ""));
    h.apply_ok(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {name: wh-big}\nspec: {organization: wh-big, plan: starter, billingEmail: billing@big.test}\n",
    );
    for t in ["a", "b", "c"] {
        h.apply_ok(&team_yaml(&format!("wh-big.{t}"), "wh-big", None, "[]"));
    }
    h.wait_ready("organization", "wh-big");
    let owner = h.user("wh-big-owner", &[]);
    support::eventually("the owner reaches the subscription", || async {
        owner.kubectl(&["get", "subscription", "wh-big"], None).status.success()
    })
    .await;
    let out =
        patch_json(&owner, &["subscription", "wh-big"], r#"[{"op":"replace","path":"/spec/plan","value":"free"}]"#);
    assert_denied_by(&stderr(&out), "downgrade", "delete 1 of its 3 teams (limit 2) first");
    assert_eq!(h.jsonpath(&["subscription", "wh-big"], "{.spec.plan}"), "starter", "nothing changed");

    // Custom domains are nobody else's.
    h.apply_ok(&org_yaml("wh-shop", "wh-shop", "  ingress: { customDomains: [shop.example.com] }\n"));
    let err = h.apply_err(&org_yaml("wh-copy", "wh-copy", "  ingress: { customDomains: [shop.example.com] }\n"));
    assert_denied_by(&err, "host-in-use", "custom domain shop.example.com is already served for organization wh-shop");
    let err =
        h.apply_err(&org_yaml("wh-copy", "wh-copy", "  ingress: { customDomains: [wh-shop.atlantiplex.local] }\n"));
    assert_denied_by(&err, "host-in-use", "under the platform's base domain");
}

#[tokio::test]
async fn tenant_namespaces_keep_the_operators_objects_and_only_their_own_hosts() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml("wh-ns", "wh-ns", ""));
    h.wait_ready("organization", "wh-ns");
    let owner = h.user("wh-ns-owner", &[]);
    let ns = "org-wh-ns";
    assert_denied_by(
        &owner.denied(&["delete", "rolebinding", "atlantiplex-owner", "-n", ns]),
        "managed-object",
        "RoleBinding org-wh-ns/atlantiplex-owner is managed by atlantiplex-operator",
    );
    assert_denied_by(
        &owner.denied(&["label", "networkpolicy", "atlantiplex-isolation", "-n", ns, "tampered=yes"]),
        "managed-object",
        "change the Organization or Team instead",
    );
    let forged = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: forged, namespace: {ns}, labels: {{atlantiplex.io/managed: 'true'}}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}\nsubjects: [{{kind: User, name: friend, apiGroup: rbac.authorization.k8s.io}}]\n"
    );
    assert_denied_by(
        &stderr(&owner.create(&forged)),
        "managed-object",
        "only atlantiplex-operator creates objects labelled atlantiplex.io/managed=true",
    );
    owner.ok(&["create", "configmap", "settings", "-n", ns, "--from-literal=a=b"]);

    let ingress = |name: &str, host: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  rules:\n    - host: {host}\n      http:\n        paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]\n"
        )
    };
    let out = owner.create(&ingress("api", "api.wh-ns.atlantiplex.local"));
    assert!(out.status.success(), "a host under the tenant's subdomain: {}", stderr(&out));
    let out = owner.create(&ingress("steal", "wh-acme.atlantiplex.local"));
    assert_denied_by(
        &stderr(&out),
        "ingress-host",
        "host wh-acme.atlantiplex.local is not one of organization wh-ns's hosts",
    );

    // Nothing a tenant's Ingress or Service carries may reach past its boundary.
    let aliased = ingress("alias", "alias.wh-ns.atlantiplex.local").replace(
        "metadata: {name: alias, namespace: org-wh-ns}",
        "metadata: {name: alias, namespace: org-wh-ns, annotations: {nginx.ingress.kubernetes.io/server-alias: '*.atlantiplex.local'}}",
    );
    assert_denied_by(
        &stderr(&owner.create(&aliased)),
        "ingress-annotation",
        "annotation nginx.ingress.kubernetes.io/server-alias is not allowed on a tenant's Ingress",
    );
    let snippet =
        aliased.replace("server-alias: '*.atlantiplex.local'", "configuration-snippet: 'proxy_pass http://x;'");
    assert_denied_by(&stderr(&owner.create(&snippet)), "ingress-annotation", "configuration-snippet");
    let tuned = aliased.replace("server-alias: '*.atlantiplex.local'", "proxy-body-size: 8m");
    let out = owner.create(&tuned);
    assert!(out.status.success(), "an allowed annotation: {}", stderr(&out));
    let service = |name: &str, spec: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n")
    };
    assert_denied_by(
        &stderr(
            &owner
                .create(&service("proxy", "{type: ExternalName, externalName: studio.org-wh-acme.svc.cluster.local}")),
        ),
        "external-name",
        "names a cluster-internal service or an address",
    );
    assert_denied_by(
        &stderr(&owner.create(&service("out", "{type: ExternalName, externalName: api.partner.example}"))),
        "external-name",
        "is not an allowed external name (the platform allows none)",
    );
    assert_denied_by(
        &stderr(&owner.create(&service("mitm", "{externalIPs: [10.96.0.1], ports: [{port: 443}]}"))),
        "service-external-ips",
        "captures traffic to those addresses",
    );
    let out = owner.create(&service("web", "{selector: {app: web}, ports: [{port: 80}]}"));
    assert!(out.status.success(), "a plain Service: {}", stderr(&out));
    // Hand-written endpoints would do what ExternalName does: Kubernetes' admin role grants none.
    for resource in ["endpoints", "endpointslices.discovery.k8s.io"] {
        assert!(!h.can_i("wh-ns-owner", "create", resource, ns), "an owner cannot write {resource}");
    }

    // Namespaces stay with their organization.
    let err = h.kubectl(&["label", "namespace", ns, "atlantiplex.io/organization=wh-acme", "--overwrite"]);
    assert_denied_by(&String::from_utf8_lossy(&err.stderr), "namespace-move", "cannot be moved to wh-acme");
    h.kubectl_ok(&[
        "create",
        "clusterrole",
        "wh-namespace-maker",
        "--verb=create,update,patch,get",
        "--resource=namespaces",
    ]);
    h.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "wh-namespace-maker",
        "--clusterrole=wh-namespace-maker",
        "--user=ns-maker",
    ]);
    let maker = h.user("ns-maker", &[]);
    let claim =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: wh-claim, labels: {atlantiplex.io/organization: wh-ns}}\n";
    assert_denied_by(
        &stderr(&maker.create(claim)),
        "namespace-ownership",
        "only the operator and platform admins set them",
    );
    maker.ok(&["create", "namespace", "wh-plain"]);
}

#[tokio::test]
async fn decisions_and_tenant_changes_are_recorded_in_the_audit_log() {
    let h = cluster_with_operator();
    h.apply_ok(&org_yaml("wh-audit", "wh-audit", "  members:\n    - { kind: User, name: auditor, role: Viewer }\n"));
    h.wait_ready("organization", "wh-audit");
    let auditor = h.user("auditor", &[]);
    support::eventually("the viewer reaches the organization", || async {
        auditor.kubectl(&["get", "organization", "wh-audit"], None).status.success()
    })
    .await;
    let out = patch_json(&auditor, &["organization", "wh-audit"], &member("friend", "Admin"));
    assert_denied_by(&stderr(&out), "members-admins-only", "(you are Viewer)");

    let database = h.plane.dir.join("ledger.db");
    let query = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"))
            .args(["audit", "--org", "wh-audit", "--output", "json", "--database-url"])
            .arg(&database)
            .output()
            .expect("audit command runs");
        assert!(out.status.success(), "audit query failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("JSON records")
    };
    let has = |records: &[serde_json::Value], actor: &str, action: &str, result: &str| {
        records.iter().any(|r| r["actor"] == actor && r["action"] == action && r["result"] == result)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let records = query();
        let complete = has(&records, "auditor", "update", "denied")
            && records
                .iter()
                .any(|r| r["action"] == "create" && r["result"] == "allowed" && r["kind"] == "Organization")
            && has(&records, "atlantiplex-operator", "Provisioned", "succeeded");
        if complete {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "audit records incomplete: {records:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let denial = query().into_iter().find(|r| r["actor"] == "auditor").expect("denial recorded");
    assert_eq!(denial["organization"], "wh-audit");
    assert!(denial["reason"].as_str().unwrap_or_default().starts_with("members-admins-only:"), "{denial}");
}
