//! What every page's frame shows: the product (or the organization's white-label name and logo), the
//! navigation, who is signed in, and the CSRF token the page's forms send.

use crate::api::Organization;
use crate::http::caller::Call;
use crate::http::signin::LiveSession;

pub struct Layout {
    /// The document's title.
    pub title: String,
    pub product: String,
    pub logo_url: Option<String>,
    /// `--brand` and `--brand-2` for the stylesheet: the organization's colours, else the product's.
    pub brand_style: String,
    /// The organization of the page, for its navigation.
    pub org: Option<String>,
    pub org_display: String,
    /// Which navigation entry is this page.
    pub active: &'static str,
    pub email: String,
    pub second_factor: bool,
    pub platform_admin: bool,
    /// Whether the person may read billing here (the navigation hides what would be refused).
    pub billing_nav: bool,
    pub csrf: String,
}

pub const PRODUCT: &str = "Atlantiplex";
const BRAND: &str = "#2563eb";
const BRAND_2: &str = "#0f766e";

/// `#rrggbb` only: the value goes into a stylesheet.
pub fn colour(value: Option<&str>) -> Option<&str> {
    value.filter(|v| v.len() == 7 && v.starts_with('#') && v[1..].bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The organization's branding, on plans with white-label: (product name, logo, style).
pub fn branding(organization: &Organization, white_label: bool) -> (String, Option<String>, String) {
    let branding = organization.spec.branding.as_ref().filter(|_| white_label);
    let primary = colour(branding.and_then(|b| b.primary_color.as_deref())).unwrap_or(BRAND);
    let secondary = colour(branding.and_then(|b| b.secondary_color.as_deref())).unwrap_or(BRAND_2);
    let logo = branding.and_then(|b| b.logo_url.clone()).filter(|u| u.starts_with("https://"));
    let product = if branding.is_some() { organization.spec.display_name.clone() } else { PRODUCT.to_string() };
    (product, logo, format!(":root{{--brand:{primary};--brand-2:{secondary}}}"))
}

impl Layout {
    /// A platform page (no organization).
    pub fn platform(live: &LiveSession, title: &str, active: &'static str) -> Self {
        Layout {
            title: format!("{title} · {PRODUCT}"),
            product: PRODUCT.to_string(),
            logo_url: None,
            brand_style: format!(":root{{--brand:{BRAND};--brand-2:{BRAND_2}}}"),
            org: None,
            org_display: String::new(),
            active,
            email: live.session.email.clone(),
            second_factor: live.session.second_factor,
            platform_admin: live.requester.platform_admin,
            billing_nav: false,
            csrf: live.session.csrf_token.clone(),
        }
    }

    /// A page of the call's organization.
    pub fn organization(live: &LiveSession, call: &Call, title: &str, active: &'static str) -> Self {
        let white_label = call.plan.as_ref().is_some_and(|p| p.spec.features.white_label);
        let (product, logo_url, brand_style) = branding(&call.organization, white_label);
        let display = &call.organization.spec.display_name;
        Layout {
            title: if &product == display {
                format!("{title} · {display}")
            } else {
                format!("{title} · {display} · {product}")
            },
            product,
            logo_url,
            brand_style,
            org: Some(call.org_name.clone()),
            org_display: call.organization.spec.display_name.clone(),
            active,
            billing_nav: call.authorize(crate::http::access::Action::ReadBilling).is_ok(),
            ..Layout::platform(live, title, active)
        }
    }
}
