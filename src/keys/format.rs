//! `atp_live_<30 base62><6 base62 CRC32>`: generated from the operating system's random source, checked
//! offline by its checksum.

/// Every key starts with this (secret scanners match on it).
pub const PREFIX: &str = "atp_live_";
const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a presented key is not one (said before any lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not `atp_live_` followed by 36 base62 characters.
    Malformed,
    /// The last 6 characters are not the CRC32 of the 30 before: a typo or a truncated copy.
    Checksum,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Malformed => write!(
                f,
                "not an Atlantiplex API key: a key is {PREFIX} followed by {} letters and digits; copy it whole",
                RANDOM_LEN + CHECKSUM_LEN
            ),
            KeyError::Checksum => {
                write!(f, "the API key's checksum does not match (mistyped or cut short?): copy the key again")
            }
        }
    }
}

fn checksum(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// A new key. `Err` only if the operating system has no random source.
pub fn generate() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    let rng = ring::rand::SystemRandom::new();
    let mut random = [0u8; RANDOM_LEN];
    let mut byte = [0u8; 1];
    // Rejection sampling (bytes ≥ 248 are drawn again) keeps every character equally likely.
    for slot in random.iter_mut() {
        loop {
            rng.fill(&mut byte)?;
            if byte[0] < 248 {
                *slot = ALPHABET[(byte[0] % 62) as usize];
                break;
            }
        }
    }
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(PREFIX);
    key.extend(random.iter().chain(checksum(&random).iter()).map(|&b| b as char));
    Ok(key)
}

/// Checks a presented key's shape and checksum (no I/O: a malformed key costs no lookup).
pub fn parse(presented: &str) -> Result<&str, KeyError> {
    let rest = presented.strip_prefix(PREFIX).ok_or(KeyError::Malformed)?;
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyError::Malformed);
    }
    let (random, sum) = rest.as_bytes().split_at(RANDOM_LEN);
    if checksum(random) != sum {
        return Err(KeyError::Checksum);
    }
    Ok(presented)
}

/// What lists show to tell keys apart: the prefix and the first 4 random characters (never enough to use).
pub fn display_prefix(key: &str) -> String {
    key.chars().take(PREFIX.len() + 4).collect()
}
