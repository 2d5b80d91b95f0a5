//! The role table (DESIGN.md §4), every "never" rule and the limit edges, without a cluster.

use super::*;
use crate::api::{Organization, Plan, Subscription, Team};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

fn yaml<T: DeserializeOwned>(text: &str) -> T {
    serde_yaml::from_str(text).unwrap()
}

struct World {
    orgs: Vec<Organization>,
    teams: Vec<Team>,
    subs: Vec<Subscription>,
    plans: Vec<Plan>,
    namespaces: Vec<ObjectMeta>,
}

impl Facts for World {
    fn organization(&self, name: &str) -> Option<Organization> {
        self.orgs.iter().find(|o| o.metadata.name.as_deref() == Some(name)).cloned()
    }
    fn each_organization(&self, visit: &mut dyn FnMut(&Organization)) {
        self.orgs.iter().for_each(visit)
    }
    fn teams_of(&self, org: &str) -> Vec<Team> {
        self.teams.iter().filter(|t| t.spec.organization == org).cloned().collect()
    }
    fn subscriptions_of(&self, org: &str) -> Vec<Subscription> {
        self.subs.iter().filter(|s| s.spec.organization == org).cloned().collect()
    }
    fn plan(&self, name: &str) -> Option<Plan> {
        self.plans.iter().find(|p| p.metadata.name.as_deref() == Some(name)).cloned()
    }
    fn namespace(&self, name: &str) -> Option<ObjectMeta> {
        self.namespaces.iter().find(|n| n.name.as_deref() == Some(name)).cloned()
    }
}

fn config() -> PolicyConfig {
    PolicyConfig {
        base_domain: "studio.test".into(),
        default_plan: "free".into(),
        signup: false,
        signup_max_free_organizations: 1,
        allowed_external_names: vec!["*.partner.example".into(), "api.stripe.com".into()],
    }
}

fn org(name: &str, extra: &str) -> Organization {
    yaml(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\nspec:\n  slug: {name}\n  displayName: {name}\n{extra}"
    ))
}

fn team(name: &str, parent: Option<&str>, members: &str) -> Team {
    let org = name.split('.').next().unwrap();
    let parent = parent.map(|p| format!("  parent: {p}\n")).unwrap_or_default();
    yaml(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {{name: {name}}}\nspec:\n  organization: {org}\n{parent}  members: {members}\n"
    ))
}

fn sub(name: &str, org: &str, plan: &str) -> Subscription {
    yaml(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\nspec: {{organization: {org}, plan: {plan}, billingEmail: billing@{org}.test}}\n"
    ))
}

const ACME: &str = "  owners: [{kind: User, name: alice}]\n  members:\n    - {kind: User, name: bob, role: Admin}\n    - {kind: User, name: carol, role: Member}\n    - {kind: User, name: dave, role: Viewer}\n";

/// acme (starter): alice Owner, bob Admin, carol Member, dave Viewer; teams video (erin
/// TeamAdmin, frank Member) and video.live under it (gina Viewer). tiny (free): at its limits.
fn world() -> World {
    let plans = include_str!("../../../examples/plans.yaml").split("\n---\n").map(yaml).collect();
    World {
        orgs: vec![
            org("acme", ACME),
            org(
                "tiny",
                "  owners: [{kind: User, name: tom}]\n  members: [{kind: User, name: u2, role: Member}, {kind: User, name: u3, role: Member}, {kind: User, name: u4, role: Member}, {kind: User, name: u5, role: Member}]\n",
            ),
            org("other", "  owners: [{kind: User, name: olga}]\n  ingress: {customDomains: [video.other.example]}\n"),
        ],
        teams: vec![
            team(
                "acme.video",
                None,
                "[{kind: User, name: erin, role: TeamAdmin}, {kind: User, name: frank, role: Member}]",
            ),
            team("acme.live", Some("acme.video"), "[{kind: User, name: gina, role: Viewer}]"),
            team("tiny.one", None, "[]"),
            team("tiny.two", None, "[]"),
        ],
        subs: vec![sub("acme", "acme", "starter")],
        plans,
        namespaces: vec![],
    }
}

fn user(name: &str) -> Requester {
    Requester { username: name.into(), groups: vec!["system:authenticated".into()], ..Default::default() }
}

fn admin() -> Requester {
    Requester {
        username: "root".into(),
        groups: vec!["system:masters".into()],
        platform_admin: true,
        ..Default::default()
    }
}

fn update_org(w: &World, who: &Requester, change: impl Fn(&mut Organization)) -> Decision {
    let old = w.organization("acme").unwrap();
    let mut new = old.clone();
    change(&mut new);
    organization(
        &config(),
        w,
        &Request { operation: Operation::Update, requester: who, old: Some(&old), new: Some(&new) },
    )
}

fn create_team(w: &World, who: &Requester, t: &Team) -> Decision {
    team::team(&config(), w, &Request { operation: Operation::Create, requester: who, old: None, new: Some(t) })
}

fn update_team(w: &World, who: &Requester, name: &str, change: impl Fn(&mut Team)) -> Decision {
    let old = w.teams.iter().find(|t| t.metadata.name.as_deref() == Some(name)).unwrap().clone();
    let mut new = old.clone();
    change(&mut new);
    team::team(
        &config(),
        w,
        &Request { operation: Operation::Update, requester: who, old: Some(&old), new: Some(&new) },
    )
}

fn delete_team(w: &World, who: &Requester, name: &str) -> Decision {
    let old = w.teams.iter().find(|t| t.metadata.name.as_deref() == Some(name)).unwrap().clone();
    team::team(&config(), w, &Request { operation: Operation::Delete, requester: who, old: Some(&old), new: None })
}

fn outcome(d: &Decision) -> &'static str {
    if d.allowed { "allowed" } else { d.rule }
}

#[test]
fn changing_organization_members_is_for_owners_and_admins() {
    let w = world();
    let add_member = |o: &mut Organization| o.spec.members.push(yaml("{kind: User, name: zed, role: Viewer}"));
    let table = [
        ("alice", "allowed"),
        ("bob", "allowed"),
        ("carol", "members-admins-only"),
        ("dave", "members-admins-only"),
        ("erin", "not-a-member"),
        ("mallory", "not-a-member"),
    ];
    for (who, expected) in table {
        assert_eq!(outcome(&update_org(&w, &user(who), add_member)), expected, "{who}");
    }
    assert!(update_org(&w, &admin(), add_member).allowed);
}

#[test]
fn owners_and_deletion_are_for_owners_only() {
    let w = world();
    let add_owner = |o: &mut Organization| o.spec.owners.push(yaml("{kind: User, name: zed}"));
    assert!(update_org(&w, &user("alice"), add_owner).allowed);
    let denied = update_org(&w, &user("bob"), add_owner);
    assert_eq!(denied.rule, "owners-only");
    assert!(denied.message.contains("needs role Owner (you are Admin)"), "{}", denied.message);
    assert_eq!(outcome(&update_org(&w, &user("bob"), |o| o.spec.suspended = true)), "owners-only");
    assert!(update_org(&w, &user("bob"), |o| o.spec.display_name = "ACME".into()).allowed);
    assert_eq!(
        outcome(&update_org(&w, &user("carol"), |o| o.spec.display_name = "ACME".into())),
        "settings-admins-only"
    );

    let acme = w.organization("acme").unwrap();
    let delete = |who: &Requester| {
        organization(
            &config(),
            &w,
            &Request { operation: Operation::Delete, requester: who, old: Some(&acme), new: None },
        )
    };
    assert!(delete(&user("alice")).allowed);
    assert_eq!(outcome(&delete(&user("bob"))), "owners-only");
    assert!(delete(&admin()).allowed);
}

#[test]
fn plan_and_billing_are_for_owners_only() {
    let w = world();
    let old = w.subs[0].clone();
    let mut new = old.clone();
    new.spec.plan = "professional".into();
    for (who, expected) in [("alice", "allowed"), ("bob", "billing-owners-only"), ("erin", "billing-owners-only")] {
        let d = subscription(
            &config(),
            &w,
            &Request { operation: Operation::Update, requester: &user(who), old: Some(&old), new: Some(&new) },
        );
        assert_eq!(outcome(&d), expected, "{who}");
    }
}

#[test]
fn teams_are_created_by_owners_admins_and_team_admins_below_their_teams() {
    let w = world();
    let top = team("acme.audio", None, "[]");
    let under_video = team("acme.clips", Some("acme.video"), "[]");
    let under_live = team("acme.replays", Some("acme.live"), "[]");
    let table = [
        ("alice", &top, "allowed"),
        ("bob", &top, "allowed"),
        ("erin", &top, "teams-admins-only"),
        ("erin", &under_video, "allowed"),
        ("erin", &under_live, "allowed"),
        ("frank", &under_video, "teams-admins-only"),
        ("carol", &under_video, "teams-admins-only"),
        ("gina", &under_live, "teams-admins-only"),
    ];
    for (who, t, expected) in table {
        assert_eq!(outcome(&create_team(&w, &user(who), t)), expected, "{who} creating {:?}", t.metadata.name);
    }
    let stranger = create_team(&w, &user("mallory"), &top);
    assert_eq!(stranger.rule, "teams-admins-only");
}

#[test]
fn team_members_are_changed_by_owners_admins_and_team_admins_above() {
    let w = world();
    let add = |t: &mut Team| t.spec.members.push(yaml("{kind: User, name: zed, role: Member}"));
    for (who, expected) in [
        ("alice", "allowed"),
        ("bob", "allowed"),
        ("erin", "allowed"),
        ("frank", "team-members-admins-only"),
        ("gina", "team-members-admins-only"),
        ("carol", "team-members-admins-only"),
    ] {
        assert_eq!(outcome(&update_team(&w, &user(who), "acme.live", add)), expected, "{who}");
    }
    // The quota share is the organization's budget.
    assert_eq!(
        outcome(&update_team(&w, &user("erin"), "acme.live", |t| t.spec.quota_share = Some(50))),
        "teams-admins-only"
    );
    assert!(update_team(&w, &user("bob"), "acme.live", |t| t.spec.quota_share = Some(50)).allowed);
}

#[test]
fn teams_are_deleted_by_owners_admins_and_team_admins_of_a_team_above() {
    let w = world();
    assert!(delete_team(&w, &user("erin"), "acme.live").allowed);
    assert_eq!(outcome(&delete_team(&w, &user("erin"), "acme.video")), "teams-admins-only");
    assert_eq!(outcome(&delete_team(&w, &user("gina"), "acme.live")), "teams-admins-only");
    assert!(delete_team(&w, &user("bob"), "acme.video").allowed);
}

#[test]
fn nobody_removes_the_last_owner() {
    let w = world();
    let d = update_org(&w, &admin(), |o| o.spec.owners.clear());
    assert_eq!(d.rule, "last-owner");
    assert!(d.message.contains("add another owner first"));
}

#[test]
fn nobody_raises_their_own_role() {
    let w = world();
    let mut root_owner = admin();
    root_owner.username = "root".into();
    let d = update_org(&w, &root_owner, |o| o.spec.owners.push(yaml("{kind: User, name: root}")));
    assert_eq!(d.rule, "self-escalation");
    assert!(d.message.contains("from not a member to Owner"), "{}", d.message);
    // Through a group the requester is in, too.
    let mut bob = user("bob");
    bob.groups.push("acme-leads".into());
    let d =
        update_org(&w, &user("alice"), |o| o.spec.members.push(yaml("{kind: Group, name: acme-leads, role: Admin}")));
    assert!(d.allowed, "alice is Owner already: {d:?}");
    let d = update_team(&w, &admin(), "acme.live", |t| {
        t.spec.members.push(yaml("{kind: User, name: root, role: TeamAdmin}"))
    });
    assert_eq!(d.rule, "self-escalation");
    // A TeamAdmin granting themselves TeamAdmin lower down gains nothing: allowed.
    assert!(
        update_team(&w, &user("erin"), "acme.live", |t| t
            .spec
            .members
            .push(yaml("{kind: User, name: erin, role: TeamAdmin}")))
        .allowed
    );
}

#[test]
fn the_plans_user_limit_holds_at_the_edge_and_shrinking_is_always_allowed() {
    let w = world();
    let tiny = w.organization("tiny").unwrap(); // 5 users on free (limit 5)
    let mut six = tiny.clone();
    six.spec.members.push(yaml("{kind: User, name: u6, role: Viewer}"));
    let req = |old: &Organization, new: &Organization| {
        let r = Request { operation: Operation::Update, requester: &admin(), old: Some(old), new: Some(new) };
        organization(&config(), &w, &r)
    };
    let d = req(&tiny, &six);
    assert_eq!(d.rule, "plan-users");
    assert!(
        d.message.contains("plan free allows 5 users and this would make 6 (owners, members and team members"),
        "{}",
        d.message
    );
    let mut five = tiny.clone();
    five.spec.members[0].name = "u2-renamed".into();
    assert!(req(&tiny, &five).allowed, "exactly at the limit");
    let mut four = six.clone();
    four.spec.members.truncate(2);
    assert!(req(&six, &four).allowed, "shrinking while over the limit");
}

#[test]
fn the_plans_team_limit_applies_to_everyone() {
    let w = world();
    let d = create_team(&w, &admin(), &team("tiny.three", None, "[]"));
    assert_eq!(d.rule, "plan-teams");
    assert!(d.message.contains("plan free allows 2 teams and organization tiny has 2"), "{}", d.message);
    let mut w = world();
    w.teams.retain(|t| t.metadata.name.as_deref() != Some("tiny.two"));
    assert!(create_team(&w, &user("tom"), &team("tiny.two", None, "[]")).allowed);
}

#[test]
fn slugs_and_hosts_are_never_reused() {
    let w = world();
    let mut dup: Organization = org("acme-2", "  owners: [{kind: User, name: x}]\n");
    dup.spec.slug = "acme".into();
    let create = |o: &Organization| {
        organization(
            &config(),
            &w,
            &Request { operation: Operation::Create, requester: &admin(), old: None, new: Some(o) },
        )
    };
    let d = create(&dup);
    assert_eq!(d.rule, "slug-in-use");
    assert!(d.message.contains("already used by organization acme"));

    let taken = org("newco", "  owners: [{kind: User, name: x}]\n  ingress: {customDomains: [video.other.example]}\n");
    let d = create(&taken);
    assert_eq!(d.rule, "host-in-use");
    assert!(d.message.contains("already served for organization other"), "{}", d.message);
    let squatting = org("newco", "  owners: [{kind: User, name: x}]\n  ingress: {customDomains: [acme.studio.test]}\n");
    assert_eq!(create(&squatting).rule, "host-in-use");
    let own = org(
        "newco",
        "  owners: [{kind: User, name: x}]\n  ingress: {customDomains: [www.newco.studio.test, newco.example]}\n",
    );
    assert!(create(&own).allowed);
}

#[test]
fn a_downgrade_is_refused_until_usage_fits_and_says_what_to_remove() {
    let mut w = world();
    w.teams.push(team("acme.audio", None, "[]")); // 3 teams: over free's 2
    let old = w.subs[0].clone();
    let mut new = old.clone();
    new.spec.plan = "free".into();
    let alice = user("alice");
    let d = subscription(
        &config(),
        &w,
        &Request { operation: Operation::Update, requester: &alice, old: Some(&old), new: Some(&new) },
    );
    assert_eq!(d.rule, "downgrade");
    assert!(d.message.contains("delete 1 of its 3 teams (limit 2)"), "{}", d.message);
    let d = subscription(
        &config(),
        &w,
        &Request { operation: Operation::Delete, requester: &alice, old: Some(&old), new: None },
    );
    assert_eq!(d.rule, "downgrade", "deleting the Subscription falls back to free");
    new.spec.plan = "professional".into();
    assert!(
        subscription(
            &config(),
            &w,
            &Request { operation: Operation::Update, requester: &alice, old: Some(&old), new: Some(&new) }
        )
        .allowed
    );
    new.spec.plan = "admin".into();
    let d = subscription(
        &config(),
        &w,
        &Request { operation: Operation::Update, requester: &alice, old: Some(&old), new: Some(&new) },
    );
    assert_eq!(d.rule, "internal-plan");
    new.spec.plan = "platinum".into();
    assert_eq!(
        subscription(
            &config(),
            &w,
            &Request { operation: Operation::Update, requester: &alice, old: Some(&old), new: Some(&new) }
        )
        .rule,
        "unknown-plan"
    );
    let second = sub("acme-2", "acme", "professional");
    let d = subscription(
        &config(),
        &w,
        &Request { operation: Operation::Create, requester: &alice, old: None, new: Some(&second) },
    );
    assert_eq!(d.rule, "subscription-exists");
}

fn meta(yaml_text: &str) -> ObjectMeta {
    yaml(yaml_text)
}

#[test]
fn managed_objects_are_the_operators() {
    let quota = meta("{name: atlantiplex-quota, namespace: org-acme, labels: {atlantiplex.io/managed: 'true'}}");
    let mut edited = quota.clone();
    edited.labels = None; // stripping the label does not escape the rule
    let tenant = user("alice");
    let d = managed_object(
        "ResourceQuota",
        &Request { operation: Operation::Update, requester: &tenant, old: Some(&quota), new: Some(&edited) },
    );
    assert_eq!(d.rule, "managed-object");
    assert!(d.message.contains("ResourceQuota org-acme/atlantiplex-quota is managed by atlantiplex-operator"));
    let forged = managed_object(
        "RoleBinding",
        &Request { operation: Operation::Create, requester: &tenant, old: None, new: Some(&quota) },
    );
    assert_eq!(forged.rule, "managed-object");
    let own = meta("{name: mine, namespace: org-acme}");
    assert!(
        managed_object(
            "RoleBinding",
            &Request { operation: Operation::Create, requester: &tenant, old: None, new: Some(&own) }
        )
        .allowed
    );
    assert!(
        managed_object(
            "ResourceQuota",
            &Request { operation: Operation::Delete, requester: &admin(), old: Some(&quota), new: None }
        )
        .allowed
    );
}

#[test]
fn namespaces_never_move_between_organizations() {
    let acme = meta("{name: org-acme, labels: {atlantiplex.io/organization: acme, atlantiplex.io/managed: 'true'}}");
    let mut moved = acme.clone();
    moved.labels.as_mut().unwrap().insert("atlantiplex.io/organization".into(), "other".into());
    let d =
        namespace(&Request { operation: Operation::Update, requester: &admin(), old: Some(&acme), new: Some(&moved) });
    assert_eq!(d.rule, "namespace-move");
    let plain = meta("{name: scratch}");
    let claimed = meta("{name: scratch, labels: {atlantiplex.io/organization: acme}}");
    let tenant = user("alice");
    let d = namespace(&Request {
        operation: Operation::Update,
        requester: &tenant,
        old: Some(&plain),
        new: Some(&claimed),
    });
    assert_eq!(d.rule, "namespace-ownership");
    assert_eq!(
        namespace(&Request { operation: Operation::Create, requester: &tenant, old: None, new: Some(&claimed) }).rule,
        "namespace-ownership"
    );
    assert!(
        namespace(&Request {
            operation: Operation::Update,
            requester: &admin(),
            old: Some(&plain),
            new: Some(&claimed)
        })
        .allowed
    );
    let mut owned = acme.clone();
    owned.owner_references = Some(vec![yaml("{apiVersion: v1, kind: ConfigMap, name: x, uid: '1'}")]);
    assert_eq!(
        namespace(&Request { operation: Operation::Update, requester: &tenant, old: Some(&acme), new: Some(&owned) })
            .rule,
        "namespace-ownership"
    );
}

fn ingress(hosts: &[&str]) -> Ingress {
    let rules: Vec<String> = hosts
        .iter()
        .map(|h| if h.is_empty() { "{http: {paths: []}}".to_string() } else { format!("{{host: '{h}'}}") })
        .collect();
    yaml(&format!("metadata: {{name: web, namespace: org-acme}}\nspec: {{rules: [{}]}}", rules.join(", ")))
}

#[test]
fn tenant_ingresses_use_only_their_own_hosts() {
    let w = world();
    let acme = w.organization("acme").unwrap();
    let tenant = user("alice");
    let check = |i: &Ingress| {
        tenant_ingress(
            &config(),
            Some(&acme),
            &Request { operation: Operation::Create, requester: &tenant, old: None, new: Some(i) },
        )
    };
    assert!(check(&ingress(&["acme.studio.test"])).allowed);
    assert!(check(&ingress(&["api.acme.studio.test", "*.acme.studio.test"])).allowed);
    let d = check(&ingress(&["other.studio.test"]));
    assert_eq!(d.rule, "ingress-host");
    assert!(d.message.contains("host other.studio.test is not one of organization acme's hosts"), "{}", d.message);
    assert_eq!(check(&ingress(&["evilacme.studio.test"])).rule, "ingress-host");
    assert_eq!(check(&ingress(&[""])).rule, "ingress-host", "a rule without a host catches everyone's traffic");
    let mut managed = ingress(&["acme.studio.test"]);
    managed.metadata.labels = Some([("atlantiplex.io/managed".to_string(), "true".to_string())].into());
    assert_eq!(check(&managed).rule, "managed-object");
}

#[test]
fn signup_makes_the_requester_owner_on_the_free_plan_up_to_the_cap() {
    let mut w = world();
    let mut cfg = config();
    let raw = serde_json::json!({"apiVersion": "atlantiplex.io/v1alpha1", "kind": "Organization", "metadata": {"name": "zed"}, "spec": {"slug": "zed", "displayName": "Zed"}});
    let zed = user("zed");
    let ops = signup_defaults(&cfg, &zed, &raw);
    assert_eq!(ops.len(), 1, "sign-up off: only the created-by annotation");
    cfg.signup = true;
    let ops = signup_defaults(&cfg, &zed, &raw);
    let mut patched = raw.clone();
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops)).unwrap();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(patched["spec"]["owners"], serde_json::json!([{"kind": "User", "name": "zed"}]));
    assert_eq!(patched["metadata"]["annotations"][CREATED_BY_ANNOTATION], "zed");
    let new: Organization = serde_json::from_value(patched).unwrap();

    let create = |w: &World, cfg: &PolicyConfig, o: &Organization| {
        organization(cfg, w, &Request { operation: Operation::Create, requester: &zed, old: None, new: Some(o) })
    };
    assert_eq!(create(&w, &config(), &new).rule, "signup-disabled");
    assert!(create(&w, &cfg, &new).allowed);
    let mut first = org("zed-first", "  owners: [{kind: User, name: zed}]\n");
    first.metadata.annotations = Some([(CREATED_BY_ANNOTATION.to_string(), "zed".to_string())].into());
    w.orgs.push(first);
    let d = create(&w, &cfg, &new);
    assert_eq!(d.rule, "signup-cap");
    assert!(d.message.contains("the limit per user is 1"), "{}", d.message);
    w.subs.push(sub("zed", "zed", "starter"));
    w.orgs.pop();
    assert_eq!(create(&w, &cfg, &new).rule, "signup-plan");
}

#[test]
fn owners_cannot_forge_who_created_an_organization_or_touch_finalizers() {
    let w = world();
    let d = update_org(&w, &user("alice"), |o| {
        o.metadata.annotations = Some([(CREATED_BY_ANNOTATION.to_string(), "someone".to_string())].into())
    });
    assert_eq!(d.rule, "created-by");
    let d = update_org(&w, &user("alice"), |o| o.metadata.finalizers = Some(vec!["example.com/hold".into()]));
    assert_eq!(d.rule, "operator-managed");
    assert!(
        update_org(&w, &user("alice"), |o| o.metadata.labels = Some([("env".to_string(), "prod".to_string())].into()))
            .allowed
    );
}

#[test]
fn team_members_count_as_users_of_the_plan() {
    let w = world(); // tiny: 5 users on free (limit 5), teams tiny.one and tiny.two without members
    let newcomer = team("tiny.three-people", None, "[{kind: User, name: x1, role: Member}]");
    let mut w2 = world();
    w2.teams.retain(|t| t.metadata.name.as_deref() != Some("tiny.two"));
    let d = create_team(&w2, &user("tom"), &newcomer);
    assert_eq!(d.rule, "plan-users", "{d:?}");
    assert!(d.message.contains("would make 6"), "{}", d.message);
    // Adding people to an existing team counts the same, for everyone.
    let add = |t: &mut Team| t.spec.members.push(yaml("{kind: User, name: x1, role: Member}"));
    assert_eq!(outcome(&update_team(&w, &admin(), "tiny.one", add)), "plan-users");
    // Someone who already has a role adds no user.
    let existing = |t: &mut Team| t.spec.members.push(yaml("{kind: User, name: u2, role: Member}"));
    assert!(update_team(&w, &user("tom"), "tiny.one", existing).allowed);
    assert_eq!(crate::tenancy::plan::user_count(&w.organization("acme").unwrap(), &w.teams), 7);
}

#[test]
fn a_parent_change_that_forms_a_cycle_is_refused_for_everyone() {
    let w = world(); // acme.live's parent is acme.video
    let d = update_team(&w, &admin(), "acme.video", |t| t.spec.parent = Some("acme.live".into()));
    assert_eq!(d.rule, "team-cycle", "{d:?}");
    assert!(d.message.contains("acme.video -> acme.live -> acme.video"), "{}", d.message);
    assert_eq!(
        outcome(&update_team(&w, &user("alice"), "acme.video", |t| t.spec.parent = Some("acme.video".into()))),
        "team-cycle"
    );
    // A parent that does not exist yet is not a cycle (GitOps applies in any order).
    assert!(update_team(&w, &admin(), "acme.live", |t| t.spec.parent = Some("acme.later".into())).allowed);
}

#[test]
fn a_slug_held_by_retained_data_is_refused_at_creation() {
    use crate::tenancy::claim::{ORGANIZATION_UID, OWNERS};
    let mut w = world();
    w.namespaces.push(meta(&format!(
        "{{name: org-gone, labels: {{atlantiplex.io/managed: 'true', atlantiplex.io/organization: gone, atlantiplex.io/organization-object: gone}}, annotations: {{{ORGANIZATION_UID}: u-old, {OWNERS}: '[\"User:alice\"]'}}}}"
    )));
    let create = |o: &Organization| {
        organization(
            &config(),
            &w,
            &Request { operation: Operation::Create, requester: &admin(), old: None, new: Some(o) },
        )
    };
    let mut intruder = org("intruder", "  owners: [{kind: User, name: mallory}]\n");
    intruder.spec.slug = "gone".into();
    let d = create(&intruder);
    assert_eq!(d.rule, "slug-held", "{d:?}");
    assert!(d.message.contains("retained from deleted Organization gone"), "{}", d.message);
    let back = org("gone", "  owners: [{kind: User, name: alice}]\n");
    assert!(create(&back).allowed, "the same name and owners re-adopt it");
}

#[test]
fn tenant_ingresses_carry_no_annotation_the_host_rule_cannot_check() {
    let w = world();
    let acme = w.organization("acme").unwrap();
    let tenant = user("alice");
    let with = |key: &str| {
        let mut i = ingress(&["acme.studio.test"]);
        i.metadata.annotations = Some([(key.to_string(), "x".to_string())].into());
        tenant_ingress(
            &config(),
            Some(&acme),
            &Request { operation: Operation::Create, requester: &tenant, old: None, new: Some(&i) },
        )
    };
    for refused in [
        "nginx.ingress.kubernetes.io/server-alias",
        "nginx.ingress.kubernetes.io/configuration-snippet",
        "nginx.ingress.kubernetes.io/server-snippet",
        "nginx.ingress.kubernetes.io/auth-url",
        "nginx.ingress.kubernetes.io/upstream-vhost",
        "traefik.ingress.kubernetes.io/router.middlewares",
        "example.com/custom-snippet",
    ] {
        let d = with(refused);
        assert_eq!(d.rule, "ingress-annotation", "{refused}");
        assert!(d.message.contains(refused), "{}", d.message);
    }
    for allowed in ["nginx.ingress.kubernetes.io/rewrite-target", "cert-manager.io/cluster-issuer", "example.com/owner"]
    {
        assert!(with(allowed).allowed, "{allowed}");
    }
}

#[test]
fn tenant_services_point_nowhere_past_the_tenant() {
    use k8s_openapi::api::core::v1::Service;
    let check = |spec: &str| {
        let s: Service = yaml(&format!("metadata: {{name: s, namespace: org-acme}}\nspec: {spec}"));
        tenant_service(
            &config(),
            &Request { operation: Operation::Create, requester: &user("alice"), old: None, new: Some(&s) },
        )
    };
    for internal in [
        "studio.org-other.svc.cluster.local",
        "studio.org-other.svc",
        "studio",
        "10.0.0.7",
        "kubernetes.default.svc.cluster.local.",
    ] {
        let d = check(&format!("{{type: ExternalName, externalName: '{internal}'}}"));
        assert_eq!(d.rule, "external-name", "{internal}");
    }
    let d = check("{type: ExternalName, externalName: evil.example.org}");
    assert_eq!(d.rule, "external-name");
    assert!(
        d.message.contains("not an allowed external name (allowed: *.partner.example, api.stripe.com)"),
        "{}",
        d.message
    );
    assert!(check("{type: ExternalName, externalName: api.stripe.com}").allowed);
    assert!(check("{type: ExternalName, externalName: eu.api.partner.example}").allowed);
    assert_eq!(check("{externalIPs: [1.2.3.4], ports: [{port: 80}]}").rule, "service-external-ips");
    assert!(check("{selector: {app: web}, ports: [{port: 80}]}").allowed);
}
