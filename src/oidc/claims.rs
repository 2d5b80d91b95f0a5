//! What a verified ID token says about the person.

use crate::identity::SecondFactors;
use base64::Engine;
use serde::Deserialize;

/// A person signed in at the identity provider.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedIn {
    pub subject: String,
    pub email: String,
    /// The provider's groups, unprefixed (`acme:owners`).
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub second_factor: bool,
    /// When they signed in at the provider (seconds since the epoch).
    pub auth_time: i64,
    /// When the ID token expires (seconds since the epoch).
    pub expires_at: i64,
    /// The ID token itself (kubectl sends it as the bearer token).
    pub id_token: String,
    /// The refresh token, when the provider gave one (scope `offline_access`).
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    auth_time: Option<i64>,
    exp: i64,
    iat: i64,
}

/// Reads the claims of an ID token that openidconnect has already verified (only the payload
/// segment is decoded here; nothing in it is trusted before that verification).
pub(super) fn read_verified(id_token: &str, factors: &SecondFactors) -> Result<SignedIn, String> {
    let payload = id_token.split('.').nth(1).ok_or("the ID token is not a JWS")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("the ID token's payload is not base64url: {e}"))?;
    let claims: Payload =
        serde_json::from_slice(&bytes).map_err(|e| format!("the ID token's claims are unreadable: {e}"))?;
    let email = claims.email.filter(|e| !e.is_empty()).ok_or(
        "the ID token has no email claim: the client must ask for the email scope, and the provider must send it",
    )?;
    Ok(SignedIn {
        subject: claims.sub,
        second_factor: factors.used_in(&claims.amr),
        email,
        groups: claims.groups,
        amr: claims.amr,
        auth_time: claims.auth_time.unwrap_or(claims.iat),
        expires_at: claims.exp,
        id_token: id_token.to_string(),
        refresh_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.sig", b64(br#"{"alg":"RS256"}"#), b64(claims.to_string().as_bytes()))
    }

    #[test]
    fn groups_amr_and_auth_time_are_read() {
        let t = token(serde_json::json!({
            "sub": "s1", "email": "alice@acme.example", "groups": ["acme:owners"], "amr": ["pwd", "otp"],
            "auth_time": 100, "iat": 120, "exp": 3720
        }));
        let signed = read_verified(&t, &SecondFactors::default()).unwrap();
        assert_eq!(signed.groups, ["acme:owners"]);
        assert!(signed.second_factor);
        assert_eq!((signed.auth_time, signed.expires_at), (100, 3720));
    }

    #[test]
    fn a_token_without_email_is_refused_with_the_fix() {
        let t = token(serde_json::json!({"sub": "s1", "iat": 1, "exp": 2}));
        assert!(read_verified(&t, &SecondFactors::default()).unwrap_err().contains("email scope"));
    }
}
