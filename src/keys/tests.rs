use super::*;

#[test]
fn generated_keys_have_the_scanner_format_and_pass_their_own_check() {
    let a = generate().unwrap();
    let b = generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), format::KEY_LEN);
    assert!(a.starts_with("atp_live_"));
    assert!(a[PREFIX.len()..].bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(parse(&a), Ok(a.as_str()));
    assert_eq!(display_prefix(&a).len(), PREFIX.len() + 4);
}

#[test]
fn a_changed_character_or_a_cut_key_is_refused_before_any_lookup() {
    let key = generate().unwrap();
    let mut typo = key.clone().into_bytes();
    let i = PREFIX.len() + 3;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    assert_eq!(parse(std::str::from_utf8(&typo).unwrap()), Err(KeyError::Checksum));
    assert_eq!(parse(&key[..key.len() - 1]), Err(KeyError::Malformed));
    assert_eq!(parse(&key.replace("atp_live_", "atp_test_")), Err(KeyError::Malformed));
    assert_eq!(parse("atp_live_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"), Err(KeyError::Malformed));
    assert!(KeyError::Checksum.to_string().contains("copy the key again"));
}

#[test]
fn the_checksum_is_the_base62_crc32_of_the_random_part() {
    let random = "0".repeat(30);
    let mut value = crc32fast::hash(random.as_bytes()) as u64;
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    for _ in 0..6 {
        digits.push(alphabet[(value % 62) as usize] as char);
        value /= 62;
    }
    let sum: String = digits.into_iter().rev().collect();
    assert_eq!(parse(&format!("atp_live_{random}{sum}")).map(|_| ()), Ok(()));
}

#[test]
fn the_hash_is_keyed_and_a_short_server_key_is_refused() {
    let hasher = Hasher::new(&[7u8; 32]).unwrap();
    let other = Hasher::new(&[8u8; 32]).unwrap();
    let key = generate().unwrap();
    assert_eq!(hasher.hash(&key).len(), 64);
    assert_eq!(hasher.hash(&key), hasher.hash(&key));
    assert_ne!(hasher.hash(&key), other.hash(&key));
    let err = Hasher::new(b"short").err().unwrap();
    assert!(err.contains("at least 32"), "{err}");
}

#[test]
fn scopes_round_trip_and_unknown_ones_name_the_known() {
    let scopes = parse_scopes("usage:write read read").unwrap();
    assert_eq!(scopes, vec![Scope::Read, Scope::UsageWrite]);
    assert_eq!(scopes_text(&scopes), "read usage:write");
    let err = parse_scopes("read admin").unwrap_err();
    assert!(err.contains("\"admin\"") && err.contains("keys:write"), "{err}");
}
