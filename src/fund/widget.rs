//! The embeddable ticker as it is rendered: the page for an iframe, once per change of the
//! figures, and the script with its styles, once per process. `http::widget` serves them.

use std::sync::LazyLock;

use askama::Template;
use axum::body::Bytes;

use super::Representation;
use crate::domain::Progress;

const CSS: &str = include_str!("../../static/widget/fund.css");

/// The script with its styles inside; its tag is the version that makes its URL cacheable for ever.
pub static SCRIPT: LazyLock<Representation> = LazyLock::new(|| {
    let css = serde_json::to_string(CSS).unwrap_or_else(|_| "\"\"".to_owned());
    Representation::new(Bytes::from(include_str!("../../static/widget/fund.js").replace("__CSS__", &css)))
});

#[derive(Template)]
#[template(path = "widget/fund.html")]
struct WidgetPage<'a> {
    p: &'a Progress,
    donate_url: &'a str,
    percent: i64,
    css: &'static str,
    script: &'a str,
}

/// The widget page for these figures; `donate_url` is where its button goes.
pub fn page(progress: &Progress, donate_url: &str) -> Bytes {
    let page = WidgetPage { p: progress, donate_url, percent: progress.percent(), css: CSS, script: SCRIPT.text() };
    match page.render() {
        Ok(html) => Bytes::from(html),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the widget page");
            Bytes::from_static(b"<!doctype html><title>Fighting fund</title><a href=\"/\" target=\"_blank\">Donate</a>")
        }
    }
}
