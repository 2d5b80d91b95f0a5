//! Signing people in at an OpenID Connect provider (authorization code with PKCE), for the web
//! (`crate::http::signin`) and for kubectl (`atlantiplex-operator login`). Discovery, the token
//! exchange and the ID token's verification (signature by the provider's published keys, issuer,
//! audience, expiry, nonce) are openidconnect's; this module adds what the rest of the product
//! reads from a verified token: email, groups, `amr` and `auth_time`.

mod claims;
mod provider;

pub use claims::SignedIn;
pub use provider::{Begun, LoginOptions, MFA_ACR, Provider, ProviderSettings, SignInError};
