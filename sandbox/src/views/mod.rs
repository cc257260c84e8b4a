//! askama views, one module per page as `loco generate` lays them out: the
//! page `/` ([`home`]) and the dashboard `/_cacheback` ([`dashboard`]), both
//! on `templates/base.html`, which holds the nav and the stylesheet.
//!
//! The stylesheet is an inline `<style>` block of the base template rather
//! than a file under `assets/`: loco serves files only through its `static`
//! middleware, which every environment's config would have to turn on (with
//! a folder and a fallback), for twenty lines that ride along with each page
//! at no extra request.

use askama::Template;
use loco_rs::prelude::*;

use self::home::View;

pub mod dashboard;
pub mod home;

/// A link of the nav.
struct Link {
    href: &'static str,
    label: &'static str,
    current: bool,
}

/// The nav: every view, then the dashboard.
fn nav(current: Option<View>) -> Vec<Link> {
    View::ALL
        .iter()
        .map(|&view| Link { href: view.href(), label: view.label(), current: current == Some(view) })
        .chain([Link { href: "/_cacheback", label: "dashboard", current: current.is_none() }])
        .collect()
}

/// A page's HTML.
fn render(page: &impl Template) -> Result<String> {
    page.render().map_err(|e| Error::Message(format!("template: {e}")))
}
