//! Organization API keys, pure: the format, the scopes, and the keyed hash that is all the ledger stores.
//!
//! A key is `atp_live_` + 30 random base62 characters (178 bits) + the base62 CRC32 of those 30 characters
//! in 6 characters, the shape GitHub's secret scanning recognises offline: a scanner (or [`parse`]) rejects
//! a mistyped or truncated key without asking anyone. The ledger keeps only an HMAC-SHA256 of the whole key
//! under a server key from a Secret ([`Hasher`]): with 178 random bits a fast keyed hash is the right tool —
//! no key can be guessed, so a slow password hash would cost milliseconds per request for nothing, and the
//! server key means a copy of the ledger alone cannot even confirm a leaked key.

mod format;
mod scopes;

pub use format::{KeyError, PREFIX, display_prefix, generate, parse};
pub use scopes::{Scope, parse_scopes, scopes_text};

/// HMAC-SHA256 under the server key: the lookup key of an API key in the ledger (hex).
pub struct Hasher(ring::hmac::Key);

/// The server key must hold at least this many bytes (a shorter one is refused at start-up).
pub const MIN_SERVER_KEY_BYTES: usize = 32;

impl Hasher {
    pub fn new(server_key: &[u8]) -> Result<Self, String> {
        if server_key.len() < MIN_SERVER_KEY_BYTES {
            return Err(format!(
                "the API key hashing key has {} bytes; it needs at least {MIN_SERVER_KEY_BYTES} random bytes \
                 (e.g. `head -c 48 /dev/urandom | base64`)",
                server_key.len()
            ));
        }
        Ok(Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, server_key)))
    }

    /// Reads the server key from a file (a mounted Secret), naming the file and the fix on failure.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!("cannot read the API key hashing key {}: {e}; create it from a Secret", path.display())
        })?;
        // A trailing newline (echo > file, a Secret written by hand) is not part of the key.
        Self::new(bytes.trim_ascii_end()).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn hash(&self, key: &str) -> String {
        let tag = ring::hmac::sign(&self.0, key.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests;
