//! Events as Stripe sends them: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`.

use super::Fake;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &message);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// POSTs a webhook; returns the HTTP status (0 when nobody answered) and the body.
pub async fn post_webhook(port: u16, path: &str, signature: &str, body: &[u8]) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return (0, String::new()) };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nStripe-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body).await.is_err() {
        return (0, String::new());
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply).await;
    let status = reply.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, reply.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// Sends events to the operator, signed with the current wall clock (the operator checks it).
pub async fn deliver(fake: &Arc<Fake>, events: Vec<serde_json::Value>) {
    let target = fake.webhook_target.lock().unwrap().clone();
    let Some((port, path)) = target else { return };
    for event in events {
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let (status, _) = post_webhook(port, &path, &sign(&fake.webhook_secret, now, &body), &body).await;
        fake.world.lock().unwrap().count(&format!("webhook {status}"));
    }
}
