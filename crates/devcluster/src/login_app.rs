//! The development login and consent page for Hydra (`make run`): people from a users file
//! (`hack/dev-users.yaml`) sign in with a password and, for a second factor, their one-time code.
//! Development only: plain HTTP on loopback, passwords in a file. Tests play Hydra's login through
//! its admin API instead (`crate::idp`).

use crate::idp::{Idp, Person};
use anyhow::{Context, Result};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(serde::Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct DevUser {
    pub email: String,
    pub password: String,
    pub one_time_code: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(serde::Deserialize)]
struct UsersFile {
    users: Vec<DevUser>,
}

pub fn read_users(path: &std::path::Path) -> Result<Vec<DevUser>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_yaml::from_str::<UsersFile>(&text).with_context(|| format!("parsing {}", path.display()))?.users)
}

struct App {
    idp: Idp,
    users: Vec<DevUser>,
}

/// Serves the page until the process ends.
pub async fn serve(idp: Idp, users: Vec<DevUser>, bind: SocketAddr) -> Result<()> {
    let app = Arc::new(App { idp, users });
    let router = axum::Router::new()
        .route("/login", axum::routing::get(login_page).post(login_submit))
        .route("/consent", axum::routing::get(consent))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
    axum::serve(listener, router).await?;
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(challenge: &str, mfa_asked: bool, error: &str) -> Html<String> {
    let note = if mfa_asked { "<p><b>A second factor is required: enter your one-time code.</b></p>" } else { "" };
    let error = if error.is_empty() { String::new() } else { format!("<p style=\"color:#b00\">{}</p>", escape(error)) };
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Sign in (development)</title>\
         <body style=\"font-family:sans-serif;max-width:28em;margin:4em auto\"><h1>Sign in</h1>\
         <p>Development identity provider: the people of <code>hack/dev-users.yaml</code>.</p>{note}{error}\
         <form method=post action=/login><input type=hidden name=challenge value=\"{}\">\
         <p><label>Email<br><input name=email autofocus size=32></label></p>\
         <p><label>Password<br><input name=password type=password size=32></label></p>\
         <p><label>One-time code (second factor)<br><input name=code size=8 autocomplete=one-time-code></label></p>\
         <p><button>Sign in</button></p></form>",
        escape(challenge)
    ))
}

async fn mfa_asked(app: &App, challenge: &str) -> bool {
    app.idp.login_request(challenge).await.ok().is_some_and(|request| {
        request["oidc_context"]["acr_values"]
            .as_array()
            .is_some_and(|values| values.iter().any(|v| v == "urn:atlantiplex:mfa"))
    })
}

async fn login_page(State(app): State<Arc<App>>, Query(query): Query<HashMap<String, String>>) -> Html<String> {
    let challenge = query.get("login_challenge").cloned().unwrap_or_default();
    let asked = mfa_asked(&app, &challenge).await;
    page(&challenge, asked, "")
}

async fn login_submit(State(app): State<Arc<App>>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |name: &str| form.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
    let (challenge, email, code) = (field("challenge"), field("email"), field("code"));
    let asked = mfa_asked(&app, &challenge).await;
    let Some(user) = app.users.iter().find(|u| u.email == email && u.password == field("password")) else {
        return page(&challenge, asked, "Unknown email or wrong password.").into_response();
    };
    let second = !code.is_empty();
    if second && code != user.one_time_code {
        return page(&challenge, asked, "Wrong one-time code.").into_response();
    }
    if asked && !second {
        return page(&challenge, asked, "This sign-in needs your one-time code.").into_response();
    }
    let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
    let person = if second {
        Person::with_second_factor(&user.email, &groups)
    } else {
        Person::password_only(&user.email, &groups)
    };
    match app.idp.accept_login(&challenge, &person).await {
        Ok(next) => Redirect::to(&next).into_response(),
        Err(err) => page(&challenge, asked, &format!("The identity provider refused: {err}")).into_response(),
    }
}

async fn consent(State(app): State<Arc<App>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let challenge = query.get("consent_challenge").cloned().unwrap_or_default();
    let answer = async {
        let request = app.idp.consent_request(&challenge).await?;
        let subject = request["subject"].as_str().unwrap_or_default().to_string();
        let user = app.users.iter().find(|u| u.email == subject).context("unknown subject")?;
        let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
        // The console and kubectl are the platform's own clients: consent is implied.
        app.idp.accept_consent_request(&challenge, &request, &Person::password_only(&user.email, &groups)).await
    };
    match answer.await {
        Ok(next) => Redirect::to(&next).into_response(),
        Err(err) => Html(format!("<p>Consent failed: {}</p>", escape(&format!("{err:#}")))).into_response(),
    }
}
