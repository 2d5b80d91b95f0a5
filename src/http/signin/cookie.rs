//! The session cookie on requests and responses.

use super::SESSION_COOKIE;
use axum::http::{HeaderMap, HeaderValue, header};

/// The session id the browser sent, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// `Set-Cookie` for a new session: HttpOnly (no script reads it), Secure, SameSite=Lax (sent on
/// top-level navigation, such as the provider's redirect back, never on cross-site subrequests).
pub fn set(id: &str, max_age_seconds: i64) -> HeaderValue {
    let value = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_seconds}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes it.
pub fn clear() -> HeaderValue {
    HeaderValue::from_static("__Host-atlantiplex-session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others_and_set_with_every_attribute() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-atlantiplex-session=abc; b=2"));
        assert_eq!(session_id(&headers).as_deref(), Some("abc"));
        let set = set("abc", 60);
        let text = set.to_str().unwrap();
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(text.contains(attribute), "{text}");
        }
        assert!(clear().to_str().unwrap().contains("Max-Age=0"));
    }
}
