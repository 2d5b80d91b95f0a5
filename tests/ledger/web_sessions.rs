//! Web sign-in state on both backends: a sign-in in flight is taken once, a session is found by the
//! hash of its id, touched forward only, and removed at logout or when too old.

use super::TestDb;
use atlantiplex_operator::ledger::{SessionTokens, WebLogin, WebSession};
use jiff::{SignedDuration, Timestamp};

fn session(hash: &str, created_at: Timestamp) -> WebSession {
    WebSession {
        id_hash: hash.into(),
        subject: "sub-1".into(),
        email: "alice@acme.example".into(),
        idp_groups: vec!["acme:owners".into(), "acme:video".into()],
        amr: vec!["pwd".into(), "otp".into()],
        second_factor: true,
        auth_time: created_at,
        csrf_token: "csrf-1".into(),
        created_at,
        last_seen_at: created_at,
        tokens: SessionTokens {
            id_token: "eyJ.id.token".into(),
            id_token_expires_at: created_at + SignedDuration::from_hours(1),
            refresh_token: "refresh-1".into(),
        },
    }
}

pub async fn sign_ins_are_taken_once_and_sessions_found_by_hash(db: TestDb) {
    let ledger = db.ledger().await;
    let login = WebLogin {
        state: "state-1".into(),
        nonce: "nonce-1".into(),
        pkce_verifier: "verifier-1".into(),
        return_to: "/v1/session".into(),
    };
    ledger.insert_web_login(&login).await.unwrap();
    assert_eq!(ledger.take_web_login("state-1").await.unwrap(), Some(login.clone()));
    assert_eq!(ledger.take_web_login("state-1").await.unwrap(), None, "a replayed callback finds nothing");
    assert_eq!(ledger.take_web_login("never-started").await.unwrap(), None);

    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    ledger.insert_web_session(&session("hash-1", now)).await.unwrap();
    let stored = ledger.web_session("hash-1").await.unwrap().expect("stored");
    assert_eq!(stored, session("hash-1", now), "groups, amr and the second factor round-trip");
    assert_eq!(ledger.web_session("hash-2").await.unwrap(), None);

    let later = now + SignedDuration::from_mins(5);
    ledger.touch_web_session("hash-1", later).await.unwrap();
    ledger.touch_web_session("hash-1", now).await.unwrap();
    assert_eq!(ledger.web_session("hash-1").await.unwrap().unwrap().last_seen_at, later, "never goes back");

    let renewed = SessionTokens {
        id_token: "eyJ.renewed".into(),
        id_token_expires_at: later + SignedDuration::from_hours(1),
        refresh_token: "refresh-2".into(),
    };
    assert!(ledger.update_web_session_tokens("hash-1", &renewed).await.unwrap());
    assert_eq!(ledger.web_session("hash-1").await.unwrap().unwrap().tokens, renewed, "a refresh replaces the tokens");
    assert!(!ledger.update_web_session_tokens("hash-gone", &renewed).await.unwrap(), "an ended session stays ended");
    assert!(!format!("{renewed:?}").contains("refresh-2"), "tokens are never printed");

    let old = now - SignedDuration::from_hours(13);
    ledger.insert_web_session(&session("hash-old", old)).await.unwrap();
    assert_eq!(ledger.delete_web_sessions_created_before(now - SignedDuration::from_hours(12)).await.unwrap(), 1);
    assert!(ledger.delete_web_session("hash-1").await.unwrap());
    assert!(!ledger.delete_web_session("hash-1").await.unwrap(), "logout twice");
}
