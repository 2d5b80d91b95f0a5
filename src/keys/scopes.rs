//! What a key may do. A key acts for its organization, never as a person: `read` the organization's
//! data, `usage:write` report usage, `keys:write` create and revoke keys (never with more scopes than
//! its own). Member changes are not a key scope: the tenant API holds no write right to the cluster,
//! and members are changed in the Organization itself, where the admission webhook judges them.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
pub enum Scope {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "usage:write")]
    UsageWrite,
    #[serde(rename = "keys:write")]
    KeysWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::UsageWrite, Scope::KeysWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::UsageWrite => "usage:write",
            Scope::KeysWrite => "keys:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The stored form: scopes separated by spaces (OAuth's convention), sorted.
pub fn scopes_text(scopes: &[Scope]) -> String {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// The stored form back; an unknown word is an error naming the known ones.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for word in text.split_whitespace() {
        let scope = Scope::parse(word).ok_or_else(|| {
            let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown scope {word:?}: use {}", known.join(", "))
        })?;
        scopes.push(scope);
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}
