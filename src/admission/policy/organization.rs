//! Organization rules: who may create, change and delete an organization, and what nobody may.

use super::{
    CREATED_BY_ANNOTATION, Decision, Facts, Operation, PolicyConfig, Request, Requester, check, name_of,
    organization_role, plan_of, role_name, sso_enabled,
};
use crate::api::{Organization, Role};
use crate::tenancy::claim::{Claim, Claimant, home_claim};
use crate::tenancy::labels::home_namespace;
use crate::tenancy::plan::user_count;
use serde_json::{Value, json};

pub fn organization(config: &PolicyConfig, facts: &dyn Facts, req: &Request<Organization>) -> Decision {
    match (req.operation, req.old, req.new) {
        (Operation::Create, _, Some(new)) => create(config, facts, req.requester, new),
        (Operation::Update, Some(old), Some(new)) => update(config, facts, req.requester, old, new),
        (Operation::Delete, Some(old), _) => delete(config, facts, req.requester, old),
        _ => Decision::allow("nothing to review"),
    }
}

fn create(config: &PolicyConfig, facts: &dyn Facts, who: &Requester, new: &Organization) -> Decision {
    if new.spec.owners.is_empty() {
        return Decision::deny("last-owner", "an organization needs at least one owner: list them in spec.owners");
    }
    check!(slug_free(facts, new));
    check!(hosts_free(config, facts, new, None));
    let (plan_name, plan) = plan_of(new, facts, config);
    if !who.platform_admin {
        if !config.signup {
            return Decision::deny(
                "signup-disabled",
                "only platform admins may create organizations (self-service sign-up is off): ask a platform admin",
            );
        }
        if !new.spec.owners.iter().any(|o| who.is_subject(o)) {
            return Decision::deny(
                "signup-owner",
                format!(
                    "with self-service sign-up you must be an owner of the organization: add {} to spec.owners",
                    who.username
                ),
            );
        }
        if plan_name != config.default_plan {
            return Decision::deny(
                "signup-plan",
                format!(
                    "sign-up creates organizations on plan {} only (a Subscription puts it on {plan_name}): remove the Subscription, create the organization, then subscribe as its Owner",
                    config.default_plan
                ),
            );
        }
        let mut mine = 0;
        facts.each_organization(&mut |org| {
            let created_by = org.metadata.annotations.as_ref().and_then(|a| a.get(CREATED_BY_ANNOTATION));
            let org_name = name_of(&org.metadata);
            if created_by == Some(&who.username)
                && org_name != name_of(&new.metadata)
                && facts.subscriptions_of(org_name).is_empty()
            {
                mine += 1;
            }
        });
        if mine >= config.signup_max_free_organizations {
            return Decision::deny(
                "signup-cap",
                format!(
                    "you already created {mine} organizations on plan {} (the limit per user is {}): delete one or subscribe one to a paid plan",
                    config.default_plan, config.signup_max_free_organizations
                ),
            );
        }
    }
    check!(within_user_limit(facts, &plan_name, plan.as_ref(), None, new));
    Decision::allow(if who.platform_admin { "platform admin" } else { "self-service sign-up" })
}

fn update(
    config: &PolicyConfig,
    facts: &dyn Facts,
    who: &Requester,
    old: &Organization,
    new: &Organization,
) -> Decision {
    let (plan_name, plan) = plan_of(old, facts, config);
    let sso = sso_enabled(plan.as_ref());
    let (before, after) = (organization_role(old, who, sso), organization_role(new, who, sso));
    let name = name_of(&old.metadata);
    let changes = Changes::between(old, new);
    if changes.is_empty() {
        return Decision::allow("no change to spec or metadata");
    }
    if !who.platform_admin {
        let Some(role) = before else {
            return Decision::deny(
                "not-a-member",
                format!("you are not a member of organization {name}: ask one of its owners or admins"),
            );
        };
        let required = |what: &str, needed: &[Role], rule: &'static str| -> Result<(), Decision> {
            if needed.contains(&role) {
                return Ok(());
            }
            let needed: Vec<String> = needed.iter().map(|r| format!("{r:?}")).collect();
            Err(Decision::deny(
                rule,
                format!(
                    "changing {what} of organization {name} needs role {} (you are {role:?}): ask an owner",
                    needed.join(" or ")
                ),
            ))
        };
        if changes.owners {
            check!(required("spec.owners", &[Role::Owner], "owners-only"));
        }
        if changes.members {
            check!(required("spec.members", &[Role::Owner, Role::Admin], "members-admins-only"));
        }
        if changes.settings {
            check!(required(
                "settings (displayName, ingress, security, branding)",
                &[Role::Owner, Role::Admin],
                "settings-admins-only"
            ));
        }
        if changes.owner_settings {
            check!(required("spec.deletionPolicy or spec.suspended", &[Role::Owner], "owners-only"));
        }
        if changes.labels {
            check!(required("labels or annotations", &[Role::Owner, Role::Admin], "metadata-admins-only"));
        }
        if changes.created_by {
            return Decision::deny(
                "created-by",
                format!(
                    "annotation {CREATED_BY_ANNOTATION} records who created the organization and only platform admins may change it"
                ),
            );
        }
        if changes.operator_fields {
            return Decision::deny(
                "operator-managed",
                "metadata.finalizers and metadata.ownerReferences are managed by the operator: leave them unchanged",
            );
        }
    }
    if new.spec.owners.is_empty() {
        return Decision::deny(
            "last-owner",
            format!("organization {name} must keep at least one owner: add another owner first"),
        );
    }
    if after.map(|r| r.rank()) > before.map(|r| r.rank()) {
        return Decision::deny(
            "self-escalation",
            format!(
                "you cannot raise your own role in organization {name} (from {} to {}): ask another owner or a platform admin",
                role_name(before),
                role_name(after)
            ),
        );
    }
    check!(within_user_limit(facts, &plan_name, plan.as_ref(), Some(old), new));
    check!(hosts_free(config, facts, new, Some(old)));
    Decision::allow(match before {
        _ if who.platform_admin => "platform admin".to_string(),
        Some(role) => format!("{role:?} of the organization"),
        None => String::new(),
    })
}

fn delete(config: &PolicyConfig, facts: &dyn Facts, who: &Requester, old: &Organization) -> Decision {
    if who.platform_admin {
        return Decision::allow("platform admin");
    }
    let (_, plan) = plan_of(old, facts, config);
    match organization_role(old, who, sso_enabled(plan.as_ref())) {
        Some(Role::Owner) => Decision::allow("Owner of the organization"),
        role => Decision::deny(
            "owners-only",
            format!(
                "only an Owner may delete organization {} (you are {}): ask an owner",
                name_of(&old.metadata),
                role_name(role)
            ),
        ),
    }
}

/// What an update changes, in the groups the role table distinguishes.
#[derive(Default)]
struct Changes {
    owners: bool,
    members: bool,
    settings: bool,
    owner_settings: bool,
    labels: bool,
    created_by: bool,
    operator_fields: bool,
}

impl Changes {
    fn between(old: &Organization, new: &Organization) -> Self {
        let (o, n) = (&old.spec, &new.spec);
        let created_by =
            |org: &Organization| org.metadata.annotations.as_ref().and_then(|a| a.get(CREATED_BY_ANNOTATION)).cloned();
        let without_created_by = |org: &Organization| {
            let mut a = org.metadata.annotations.clone().unwrap_or_default();
            a.remove(CREATED_BY_ANNOTATION);
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a
        };
        Self {
            owners: o.owners != n.owners,
            members: o.members != n.members,
            settings: o.display_name != n.display_name
                || o.ingress != n.ingress
                || o.security != n.security
                || o.branding != n.branding,
            owner_settings: o.deletion_policy != n.deletion_policy || o.suspended != n.suspended,
            labels: old.metadata.labels.clone().unwrap_or_default() != new.metadata.labels.clone().unwrap_or_default()
                || without_created_by(old) != without_created_by(new),
            created_by: created_by(old) != created_by(new),
            operator_fields: old.metadata.finalizers.clone().unwrap_or_default()
                != new.metadata.finalizers.clone().unwrap_or_default()
                || old.metadata.owner_references != new.metadata.owner_references,
        }
    }

    fn is_empty(&self) -> bool {
        !(self.owners
            || self.members
            || self.settings
            || self.owner_settings
            || self.labels
            || self.created_by
            || self.operator_fields)
    }
}

fn slug_free(facts: &dyn Facts, new: &Organization) -> Result<(), Decision> {
    let mut holder = None;
    facts.each_organization(&mut |org| {
        if org.spec.slug == new.spec.slug && org.metadata.name != new.metadata.name {
            holder = org.metadata.name.clone();
        }
    });
    if let Some(other) = holder {
        return Err(Decision::deny(
            "slug-in-use",
            format!("slug {} is already used by organization {other}: choose another spec.slug", new.spec.slug),
        ));
    }
    // The slug's namespace may hold a deleted tenant's retained data (the controller's own rule).
    let home = home_namespace(&new.spec.slug);
    let claimant = Claimant { name: name_of(&new.metadata), uid: "", created: None, owners: &new.spec.owners };
    let live_uid = |n: &str| facts.organization(n).and_then(|o| o.metadata.uid);
    match home_claim(&claimant, &new.spec.slug, &home, facts.namespace(&home).as_ref(), live_uid) {
        Claim::Refused(refusal) => {
            let rule = match refusal.reason {
                "SlugHeld" => "slug-held",
                "NamespaceTaken" => "namespace-taken",
                _ => "slug-in-use",
            };
            Err(Decision::deny(rule, refusal.message))
        }
        _ => Ok(()),
    }
}

/// New custom domains must be nobody else's host, and not under the base domain (every
/// `<slug>.<baseDomain>` belongs to the organization with that slug).
fn hosts_free(
    config: &PolicyConfig,
    facts: &dyn Facts,
    new: &Organization,
    old: Option<&Organization>,
) -> Result<(), Decision> {
    let domains = |org: &Organization| org.spec.ingress.as_ref().map(|i| i.custom_domains.clone()).unwrap_or_default();
    let before = old.map(domains).unwrap_or_default();
    let added: Vec<String> = domains(new).into_iter().filter(|d| !before.contains(d)).collect();
    if added.is_empty() {
        return Ok(());
    }
    let own_subdomain = format!("{}.{}", new.spec.slug, config.base_domain);
    let base_suffix = format!(".{}", config.base_domain);
    for domain in &added {
        let own = domain == &own_subdomain || domain.ends_with(&format!(".{own_subdomain}"));
        if !own && (domain == &config.base_domain || domain.ends_with(&base_suffix)) {
            return Err(Decision::deny(
                "host-in-use",
                format!(
                    "custom domain {domain} is under the platform's base domain {}, whose subdomains belong to other organizations: use a domain you own",
                    config.base_domain
                ),
            ));
        }
    }
    let mut conflict = None;
    facts.each_organization(&mut |org| {
        if org.metadata.name == new.metadata.name || conflict.is_some() {
            return;
        }
        if let Some(d) = added.iter().find(|d| domains(org).contains(d)) {
            conflict = Some((d.clone(), org.metadata.name.clone().unwrap_or_default()));
        }
    });
    match conflict {
        Some((domain, other)) => Err(Decision::deny(
            "host-in-use",
            format!(
                "custom domain {domain} is already served for organization {other}: remove it from spec.ingress.customDomains"
            ),
        )),
        None => Ok(()),
    }
}

fn within_user_limit(
    facts: &dyn Facts,
    plan_name: &str,
    plan: Option<&crate::api::Plan>,
    old: Option<&Organization>,
    new: &Organization,
) -> Result<(), Decision> {
    let teams = facts.teams_of(name_of(&new.metadata));
    let after = user_count(new, &teams);
    let before = old.map(|o| user_count(o, &teams)).unwrap_or(0);
    users_within_limit(plan_name, plan, before, after)
}

/// Refuses a change that raises the user count (`tenancy::plan::user_count`) beyond the plan's
/// limit. Shrinking is always allowed, even while over the limit (after a downgrade by Stripe).
pub(super) fn users_within_limit(
    plan_name: &str,
    plan: Option<&crate::api::Plan>,
    before: i32,
    after: i32,
) -> Result<(), Decision> {
    let Some(limit) = plan.and_then(|p| p.spec.limits.users) else { return Ok(()) };
    if after > limit && after > before {
        return Err(Decision::deny(
            "plan-users",
            format!(
                "plan {plan_name} allows {limit} users and this would make {after} (owners, members and team members, each distinct subject once): remove {} of them, or upgrade the plan",
                after - limit
            ),
        ));
    }
    Ok(())
}

/// The mutating half of sign-up, on the raw object (owners may be missing, which the typed
/// object cannot express): record who created it, and make a sign-up requester an owner.
pub fn signup_defaults(config: &PolicyConfig, who: &Requester, object: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    match object.pointer("/metadata/annotations") {
        Some(Value::Object(_)) => ops.push(json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", CREATED_BY_ANNOTATION.replace('~', "~0").replace('/', "~1")),
            "value": who.username,
        })),
        _ => ops.push(
            json!({"op": "add", "path": "/metadata/annotations", "value": {CREATED_BY_ANNOTATION: who.username}}),
        ),
    }
    if who.platform_admin || !config.signup {
        return ops;
    }
    let me = requester_subject(who);
    match object.pointer("/spec/owners") {
        Some(Value::Array(owners)) => {
            let listed = owners
                .iter()
                .any(|o| serde_json::from_value::<crate::api::Subject>(o.clone()).is_ok_and(|s| who.is_subject(&s)));
            if !listed {
                ops.push(json!({"op": "add", "path": "/spec/owners/-", "value": me}));
            }
        }
        _ if object.get("spec").is_some_and(Value::is_object) => {
            ops.push(json!({"op": "add", "path": "/spec/owners", "value": [me]}))
        }
        _ => {}
    }
    ops
}

fn requester_subject(who: &Requester) -> Value {
    match who.username.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')) {
        Some((namespace, name)) => json!({"kind": "ServiceAccount", "name": name, "namespace": namespace}),
        None => json!({"kind": "User", "name": who.username}),
    }
}
