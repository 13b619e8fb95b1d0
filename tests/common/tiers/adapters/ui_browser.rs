//! Helpers of the tests in tests/adapters/ui_browser.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;
pub use crate::common::browser::*;
pub use crate::common::dashboard::{UI_PASS, UI_USER};

use std::time::Duration;

use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use common::process::http;

pub async fn rows(c: &Client) -> usize {
    c.find_all(Locator::Css("#instances tbody tr"))
        .await
        .unwrap()
        .len()
}

pub async fn osb(url: String, body: Option<Value>, method: Method) -> (u16, Value) {
    http(method, url, body).await.expect("the broker answers")
}

/// Waits until the browser has navigated to a URL containing `needle`
/// (a form submit returns before the next page has loaded) and that page
/// has finished loading.
pub async fn wait_for_url(c: &Client, needle: &str) {
    for _ in 0..200 {
        let url = c.current_url().await.unwrap();
        let done = c
            .execute("return document.readyState", vec![])
            .await
            .unwrap();
        if url.as_str().contains(needle) && done == json!("complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser never reached a page with {needle} in its URL");
}
