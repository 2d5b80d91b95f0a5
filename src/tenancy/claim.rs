//! Who may provision into a tenant's namespace. Pure: the controller and the webhook feed it the
//! namespace's metadata (from a cache or a fresh read) and act on the answer.
//!
//! A slug is claimed by creating its home namespace `org-<slug>`: creation is atomic at the API
//! server, so of two Organizations with one slug exactly one creates it (the other gets 409 and
//! reads who holds it). The namespace then records its holder — the Organization's name, uid
//! and owners.
//!
//! A namespace kept by `deletionPolicy: Retain` still holds the deleted tenant's data, so it is
//! re-adopted only by an Organization **with the same name whose owners were all owners of the
//! retained one**:
//! - the name alone is not enough: once an Organization is deleted anyone may create one with
//!   its name (with `--signup`, any authenticated user);
//! - the uid alone is too much: every re-creation gets a new uid — a GitOps restore after an
//!   accidental deletion, or the CRDs removed and re-applied — and the data would be orphaned;
//! - the owners are the people the data belonged to, and sign-up forces the requester into
//!   `spec.owners`, so a stranger cannot pass.
//!
//! Anything else is refused until a platform admin releases the namespace to a named
//! Organization with the annotation [`RELEASE_TO`] (the webhook lets only platform admins change
//! a managed namespace's metadata) or deletes it.

use super::labels::{MANAGED, NAMESPACE_KIND, ORGANIZATION, ORGANIZATION_OBJECT, TEAM_OBJECT};
use crate::api::{Subject, SubjectKind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::BTreeSet;

/// The uid of the Organization holding a home namespace.
pub const ORGANIZATION_UID: &str = "atlantiplex.io/organization-uid";
/// The owners of the Organization holding a home namespace (a JSON list, see [`owners_value`]).
pub const OWNERS: &str = "atlantiplex.io/owners";
/// Set by a platform admin on a held namespace: the name of the Organization it is handed to.
pub const RELEASE_TO: &str = "atlantiplex.io/release-to";

/// The Organization asking for its home namespace.
#[derive(Clone, Debug)]
pub struct Claimant<'a> {
    pub name: &'a str,
    /// Empty before the object exists (an admission review of a create).
    pub uid: &'a str,
    pub created: Option<&'a Time>,
    pub owners: &'a [Subject],
}

/// What the claimant may do with the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It does not exist: create it, create-only (409: someone else was first; read again).
    Create,
    /// It is the claimant's.
    Ours,
    /// Retained data of this tenant, or released to it by a platform admin: take it over.
    Adopt { why: &'static str, clear_release: bool },
    /// Someone else's.
    Refused(Refusal),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The condition reason: `SlugConflict` (a live Organization holds it), `SlugHeld` (retained
    /// data of a deleted one), `NamespaceTaken` (a namespace the operator does not manage).
    pub reason: &'static str,
    pub message: String,
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn subject_key(s: &Subject) -> String {
    match (s.kind, &s.namespace) {
        (SubjectKind::ServiceAccount, Some(ns)) => format!("ServiceAccount:{ns}/{}", s.name),
        (kind, _) => format!("{kind:?}:{}", s.name),
    }
}

/// The [`OWNERS`] annotation's value: sorted subjects as a JSON list (user names may hold commas).
pub fn owners_value(owners: &[Subject]) -> String {
    let keys: BTreeSet<String> = owners.iter().map(subject_key).collect();
    serde_json::to_string(&keys).unwrap_or_default()
}

fn recorded_owners(meta: &ObjectMeta) -> BTreeSet<String> {
    annotation(meta, OWNERS).and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default()
}

fn release_hint(namespace: &str, claimant: &str) -> String {
    format!("`kubectl annotate namespace {namespace} {RELEASE_TO}={claimant}` (or delete the namespace)")
}

/// Whether `claimant` may provision into home namespace `namespace` (None: it does not exist).
/// `live_uid` answers with the uid of a live Organization of that name.
pub fn home_claim(
    claimant: &Claimant,
    slug: &str,
    namespace: &str,
    meta: Option<&ObjectMeta>,
    live_uid: impl Fn(&str) -> Option<String>,
) -> Claim {
    let Some(meta) = meta else { return Claim::Create };
    let released = annotation(meta, RELEASE_TO) == Some(claimant.name);
    if released {
        return Claim::Adopt { why: "released to it by a platform admin", clear_release: true };
    }
    if label(meta, MANAGED) != Some("true") {
        return Claim::Refused(Refusal {
            reason: "NamespaceTaken",
            message: format!(
                "namespace {namespace} (the home of spec.slug {slug:?}) already exists and is not managed by atlantiplex-operator: choose another slug, or ask a platform admin to hand it over with {}",
                release_hint(namespace, claimant.name)
            ),
        });
    }
    let holder = label(meta, ORGANIZATION_OBJECT).unwrap_or_default();
    let holder_uid = annotation(meta, ORGANIZATION_UID);
    if !claimant.uid.is_empty() && holder_uid == Some(claimant.uid) {
        return Claim::Ours;
    }
    let holder_live = live_uid(holder);
    if holder != claimant.name && holder_live.is_some() {
        return Claim::Refused(Refusal {
            reason: "SlugConflict",
            message: format!(
                "spec.slug {slug:?} is already used by Organization {holder}: choose another slug (slugs are unique and immutable)"
            ),
        });
    }
    if holder == claimant.name && holder_uid.is_none() {
        // Written before namespaces recorded their holder's uid: it is this Organization's if it
        // was created for it — not before the Organization existed.
        let created_for_it =
            matches!((meta.creation_timestamp.as_ref(), claimant.created), (Some(ns), Some(org)) if ns.0 >= org.0);
        if created_for_it {
            return Claim::Adopt { why: "created for it (before uids were recorded)", clear_release: false };
        }
    }
    // Retained: its holder is gone, or was an earlier Organization of the same name.
    let recorded = recorded_owners(meta);
    let wanted: BTreeSet<String> = claimant.owners.iter().map(subject_key).collect();
    if holder == claimant.name && !wanted.is_empty() && wanted.is_subset(&recorded) {
        return Claim::Adopt { why: "retained data of an Organization with its name and owners", clear_release: false };
    }
    Claim::Refused(Refusal {
        reason: "SlugHeld",
        message: format!(
            "spec.slug {slug:?} is held by data retained from deleted Organization {holder} (namespace {namespace}, deletionPolicy Retain): only an Organization named {holder} whose owners were all its owners re-adopts it. Choose another slug, or ask a platform admin to release the data with {}",
            release_hint(namespace, claimant.name)
        ),
    })
}

/// Whether a team namespace may be provisioned for team `team` of the organization holding
/// `slug`. The organization's claim on the slug vouches for its team namespaces (retained ones
/// included); a namespace the operator does not manage, or another tenant's, is refused.
pub fn team_claim(team: &str, slug: &str, namespace: &str, meta: Option<&ObjectMeta>) -> Claim {
    let Some(meta) = meta else { return Claim::Create };
    if annotation(meta, RELEASE_TO) == Some(team) {
        return Claim::Adopt { why: "released to it by a platform admin", clear_release: true };
    }
    let managed = label(meta, MANAGED) == Some("true");
    let same_tenant = label(meta, ORGANIZATION) == Some(slug) && label(meta, NAMESPACE_KIND) == Some("team");
    let same_team = label(meta, TEAM_OBJECT).is_none_or(|t| t == team);
    if managed && same_tenant && same_team {
        return Claim::Ours;
    }
    Claim::Refused(Refusal {
        reason: "NamespaceTaken",
        message: format!(
            "namespace {namespace} already exists and does not belong to this team: rename the team, or ask a platform admin to hand it over with {}",
            release_hint(namespace, team)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn user(name: &str) -> Subject {
        Subject { kind: SubjectKind::User, name: name.into(), namespace: None }
    }

    fn time(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    fn home(holder: &str, uid: Option<&str>, owners: &[Subject], created: &str) -> ObjectMeta {
        let mut annotations = BTreeMap::from([(OWNERS.to_string(), owners_value(owners))]);
        if let Some(uid) = uid {
            annotations.insert(ORGANIZATION_UID.into(), uid.into());
        }
        ObjectMeta {
            name: Some("org-acme".into()),
            labels: Some(BTreeMap::from([
                (MANAGED.into(), "true".into()),
                (ORGANIZATION.into(), "acme".into()),
                (ORGANIZATION_OBJECT.into(), holder.into()),
            ])),
            annotations: Some(annotations),
            creation_timestamp: Some(time(created)),
            ..Default::default()
        }
    }

    fn claim(name: &str, uid: &str, owners: &[Subject], meta: Option<&ObjectMeta>, live: &[(&str, &str)]) -> Claim {
        let created = time("2026-06-01T00:00:00Z");
        let claimant = Claimant { name, uid, created: Some(&created), owners };
        home_claim(&claimant, "acme", "org-acme", meta, |n| {
            live.iter().find(|(name, _)| *name == n).map(|(_, uid)| uid.to_string())
        })
    }

    fn reason(c: &Claim) -> &'static str {
        match c {
            Claim::Refused(r) => r.reason,
            _ => "not refused",
        }
    }

    #[test]
    fn an_absent_namespace_is_created_and_a_recorded_uid_is_ours() {
        let alice = [user("alice")];
        assert_eq!(claim("acme", "u1", &alice, None, &[]), Claim::Create);
        let ns = home("acme", Some("u1"), &alice, "2026-06-01T00:00:01Z");
        assert_eq!(claim("acme", "u1", &alice, Some(&ns), &[("acme", "u1")]), Claim::Ours);
    }

    #[test]
    fn a_live_holder_keeps_its_slug_against_any_other_organization() {
        let ns = home("acme", Some("u1"), &[user("alice")], "2026-06-01T00:00:01Z");
        let other = claim("acme-2", "u2", &[user("alice")], Some(&ns), &[("acme", "u1")]);
        assert_eq!(reason(&other), "SlugConflict");
        // The loser of a concurrent create reads the winner's namespace the same way.
        let loser = claim("evil", "u3", &[user("mallory")], Some(&ns), &[("acme", "u1"), ("evil", "u3")]);
        assert_eq!(reason(&loser), "SlugConflict");
    }

    #[test]
    fn retained_data_is_refused_to_another_organization_with_the_slug() {
        let ns = home("acme", Some("u1"), &[user("alice")], "2026-06-01T00:00:01Z");
        let c = claim("intruder", "u2", &[user("mallory")], Some(&ns), &[]);
        assert_eq!(reason(&c), "SlugHeld");
        let Claim::Refused(r) = c else { unreachable!() };
        assert!(r.message.contains("retained from deleted Organization acme"), "{}", r.message);
        assert!(r.message.contains("kubectl annotate namespace org-acme atlantiplex.io/release-to=intruder"));
    }

    #[test]
    fn retained_data_is_refused_to_the_same_name_with_a_stranger_among_its_owners() {
        let ns = home("acme", Some("u1"), &[user("alice")], "2026-06-01T00:00:01Z");
        let c = claim("acme", "u2", &[user("alice"), user("mallory")], Some(&ns), &[("acme", "u2")]);
        assert_eq!(reason(&c), "SlugHeld");
    }

    #[test]
    fn retained_data_returns_to_the_same_name_and_owners() {
        let ns = home("acme", Some("u1"), &[user("alice"), user("bob")], "2026-06-01T00:00:01Z");
        let c = claim("acme", "u2", &[user("alice")], Some(&ns), &[("acme", "u2")]);
        assert!(matches!(c, Claim::Adopt { clear_release: false, .. }), "{c:?}");
    }

    #[test]
    fn a_platform_admin_releases_held_data_to_a_named_organization() {
        let mut ns = home("acme", Some("u1"), &[user("alice")], "2026-06-01T00:00:01Z");
        ns.annotations.get_or_insert_with(Default::default).insert(RELEASE_TO.into(), "newco".into());
        let c = claim("newco", "u9", &[user("carol")], Some(&ns), &[]);
        assert_eq!(c, Claim::Adopt { why: "released to it by a platform admin", clear_release: true });
        assert_eq!(reason(&claim("other", "u8", &[user("carol")], Some(&ns), &[])), "SlugHeld");
    }

    #[test]
    fn a_namespace_without_a_recorded_uid_is_ours_only_if_created_after_the_organization() {
        let after = home("acme", None, &[], "2026-06-01T00:00:05Z");
        assert!(matches!(claim("acme", "u1", &[user("a")], Some(&after), &[("acme", "u1")]), Claim::Adopt { .. }));
        let before = home("acme", None, &[], "2026-05-01T00:00:00Z");
        assert_eq!(reason(&claim("acme", "u1", &[user("a")], Some(&before), &[("acme", "u1")])), "SlugHeld");
    }

    #[test]
    fn an_unmanaged_namespace_is_never_taken_over() {
        let ns = ObjectMeta { name: Some("org-acme".into()), ..Default::default() };
        assert_eq!(reason(&claim("acme", "u1", &[user("a")], Some(&ns), &[])), "NamespaceTaken");
    }

    #[test]
    fn a_review_of_a_create_has_no_uid_and_is_never_ours() {
        let ns = home("acme", Some("u1"), &[user("alice")], "2026-06-01T00:00:01Z");
        assert_eq!(reason(&claim("intruder", "", &[user("mallory")], Some(&ns), &[])), "SlugHeld");
        assert!(matches!(claim("acme", "", &[user("alice")], Some(&ns), &[]), Claim::Adopt { .. }));
    }

    #[test]
    fn team_namespaces_follow_the_slug_and_refuse_foreign_ones() {
        let mut meta = home("acme", Some("u1"), &[], "2026-06-01T00:00:01Z");
        let labels = meta.labels.get_or_insert_with(Default::default);
        labels.insert(NAMESPACE_KIND.into(), "team".into());
        labels.insert(TEAM_OBJECT.into(), "acme.video".into());
        assert_eq!(team_claim("acme.video", "acme", "acme--video", Some(&meta)), Claim::Ours);
        assert_eq!(team_claim("acme.video", "acme", "acme--video", None), Claim::Create);
        let foreign = ObjectMeta { name: Some("acme--video".into()), ..Default::default() };
        assert!(matches!(team_claim("acme.video", "acme", "acme--video", Some(&foreign)), Claim::Refused(_)));
        assert!(matches!(team_claim("acme.video", "other", "acme--video", Some(&meta)), Claim::Refused(_)));
    }
}
