//! Which authentication methods count as a second factor.

/// RFC 8176 method references that mean a second factor was used: one-time password, a generic
/// "multiple factors", hardware and software keys, and FIDO/WebAuthn as some providers spell it.
pub const DEFAULT_SECOND_FACTORS: [&str; 5] = ["otp", "mfa", "hwk", "swk", "fido"];

/// The accepted `amr` values (a setting: identity providers differ in what they send).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondFactors(Vec<String>);

impl Default for SecondFactors {
    fn default() -> Self {
        Self(DEFAULT_SECOND_FACTORS.iter().map(|s| s.to_string()).collect())
    }
}

impl SecondFactors {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        Self(values.into_iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
    }

    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// Whether a login with these `amr` values used a second factor.
    pub fn used_in(&self, amr: &[String]) -> bool {
        amr.iter().any(|m| self.0.contains(m))
    }
}
