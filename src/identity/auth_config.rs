//! The kube-apiserver `AuthenticationConfiguration` that trusts the identity provider with the
//! naming contract of this module (`atlantiplex-operator authentication-config` prints it).

use super::{EXTRA_AMR, EXTRA_AUTH_TIME, GROUP_PREFIX, MFA_SUFFIX, SecondFactors};
use serde_json::json;

/// What the API server needs to know about the identity provider.
pub struct AuthenticationConfig<'a> {
    /// The issuer URL (https), exactly as in the ID tokens' `iss`.
    pub issuer: &'a str,
    /// The client ids whose ID tokens kubectl may present.
    pub audiences: &'a [String],
    /// PEM of the CA that signed the issuer's certificate, when it is not a public one.
    pub certificate_authority: Option<&'a str>,
    pub second_factors: &'a SecondFactors,
}

/// Renders the configuration as YAML.
pub fn authentication_config(config: &AuthenticationConfig) -> String {
    let factors: Vec<String> = config.second_factors.values().iter().map(|f| format!("'{}'", cel_quote(f))).collect();
    let mfa = format!("dyn(claims.?amr.orValue([])).exists(m, m in [{}])", factors.join(", "));
    // `dyn(...)`: the optional's type is `any`, which CEL refuses as the range of a comprehension.
    let groups = format!(
        "dyn(claims.?groups.orValue([])).map(g, '{GROUP_PREFIX}' + g) + ({mfa} ? \
         dyn(claims.?groups.orValue([])).map(g, '{GROUP_PREFIX}' + g + '{MFA_SUFFIX}') + \
         [string(claims.email) + '{MFA_SUFFIX}'] : [])"
    );
    let mut issuer = json!({ "url": config.issuer, "audiences": config.audiences });
    if config.audiences.len() > 1 {
        issuer["audienceMatchPolicy"] = json!("MatchAny");
    }
    if let Some(ca) = config.certificate_authority {
        issuer["certificateAuthority"] = json!(ca);
    }
    let document = json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": issuer,
            "claimValidationRules": [{
                "expression": "has(claims.email) && claims.email != ''",
                "message": "the ID token has no email claim: ask for the email scope",
            }],
            "claimMappings": {
                "username": { "claim": "email", "prefix": "" },
                "groups": { "expression": groups },
                "uid": { "claim": "sub" },
                "extra": [
                    { "key": EXTRA_AMR, "valueExpression": "dyn(claims.?amr.orValue([]))" },
                    {
                        "key": EXTRA_AUTH_TIME,
                        "valueExpression": "has(claims.auth_time) ? string(int(claims.auth_time)) : ''",
                    },
                ],
            },
            "userValidationRules": [{
                "expression": "!user.username.startsWith('system:')",
                "message": "user names starting with system: are reserved for Kubernetes",
            }],
        }],
    });
    serde_yaml::to_string(&document).unwrap_or_default()
}

fn cel_quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}
