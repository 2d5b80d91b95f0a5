//! `application/x-www-form-urlencoded` as serde_qs writes it (`items[0][price]=...`), flat.

use std::collections::BTreeMap;

pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `name[0]`, `name[1]`, ... (or `name[]`) in order.
pub fn list(params: &BTreeMap<String, String>, name: &str) -> Vec<String> {
    params.iter().filter(|(k, _)| k.starts_with(&format!("{name}["))).map(|(_, v)| v.clone()).collect()
}

/// `metadata[key]=value` pairs.
pub fn map(params: &BTreeMap<String, String>, name: &str) -> serde_json::Map<String, serde_json::Value> {
    let prefix = format!("{name}[");
    params
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(&prefix)?.strip_suffix(']')?;
            (!key.contains('[')).then(|| (key.to_string(), serde_json::Value::String(v.clone())))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
