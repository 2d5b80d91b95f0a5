//! The console's static files, embedded in the binary (no CDN, nothing fetched or built at run time).
//! htmx 2.0.8 (BSD Zero-Clause) is vendored as published on npm (`htmx.org/dist/htmx.min.js`).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("assets/console.css")),
    ("htmx-2.0.8.min.js", "text/javascript; charset=utf-8", include_bytes!("assets/htmx-2.0.8.min.js")),
    ("logo.svg", "image/svg+xml", include_bytes!("assets/logo.svg")),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = (*bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // htmx's name carries its version; the stylesheet changes with releases, so it is kept briefly.
    let cache = if file.contains("2.0.8") { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
