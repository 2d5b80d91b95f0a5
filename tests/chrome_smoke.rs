//! The browser harness itself (tests/support/chrome.rs): headless Chromium loads a page this test
//! serves on loopback, runs its script, fills and submits a form, keeps cookies per session, and
//! saves a screenshot.

#[path = "support/chrome.rs"]
mod chrome;

use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse};
use chrome::Chrome;
use std::collections::HashMap;

const PAGE: &str = "<!doctype html><meta charset=utf-8><title>Smoke</title>\
    <h1 id=greeting>Hello from the smoke test</h1><p id=scripted>not yet</p>\
    <form id=who method=post action=/echo><input name=name><button>Send</button></form>\
    <script>document.getElementById('scripted').textContent = 'rendered by ' + 'script';</script>";

/// Serves the test pages on a free loopback port; returns its base URL.
async fn serve() -> String {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { Html(PAGE) }))
        .route(
            "/echo",
            axum::routing::post(|body: String| async move {
                let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
                let name = form.get("name").cloned().unwrap_or_default().replace('<', "&lt;");
                Html(format!("<!doctype html><title>Echo</title><p id=echo>Hello, {name}!</p>"))
            }),
        )
        .route(
            "/tall",
            axum::routing::get(|| async {
                Html("<!doctype html><title>Tall</title><div style=\"height:2500px\">top</div><p id=bottom>bottom</p>")
            }),
        )
        .route(
            "/cookie",
            axum::routing::get(|headers: HeaderMap| async move {
                let cookie = headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
                ([("set-cookie", "smoke=set-before; Path=/")], Html(format!("<p id=cookie>{cookie}</p>")))
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{address}")
}

#[tokio::test]
async fn loads_a_page_submits_a_form_and_takes_a_screenshot() {
    let base = serve().await;
    let page = Chrome::session().await;
    page.goto(&format!("{base}/")).await;
    assert_eq!(page.text("#greeting").await, "Hello from the smoke test");
    assert_eq!(page.wait_for_text("#scripted", "rendered").await, "rendered by script");
    assert_eq!(page.title().await, "Smoke");
    assert!(page.html().await.contains("id=\"greeting\""));

    let shot = page.screenshot("chrome-smoke").await;
    assert_eq!(shot, chrome::screenshot_dir().join("chrome-smoke.png"));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {} bytes", png.len());

    page.fill("#who input[name=name]", "Olivia <admin>").await;
    page.submit("#who").await;
    assert_eq!(page.text("#echo").await, "Hello, Olivia <admin>!");
    assert_eq!(page.current_url().await, format!("{base}/echo"));
    assert_eq!(page.texts("p").await, ["Hello, Olivia <admin>!"]);

    // A long page is taken whole: the window grows to the page's height for the screenshot.
    page.goto(&format!("{base}/tall")).await;
    let png = std::fs::read(page.screenshot("chrome-smoke-tall").await).expect("screenshot written");
    let height = u32::from_be_bytes(png[20..24].try_into().expect("PNG header"));
    assert!(height >= 2500, "the screenshot of a 2500 px page is {height} px tall");
    page.close().await;
}

#[tokio::test]
async fn sessions_do_not_share_cookies() {
    let base = serve().await;
    let first = Chrome::session().await;
    first.goto(&format!("{base}/cookie")).await;
    assert_eq!(first.text("#cookie").await, "none");
    first.goto(&format!("{base}/cookie")).await;
    assert_eq!(first.text("#cookie").await, "smoke=set-before");

    let second = Chrome::session().await;
    second.goto(&format!("{base}/cookie")).await;
    assert_eq!(second.text("#cookie").await, "none", "a new session starts without the first one's cookies");
    first.close().await;
    second.close().await;
}
