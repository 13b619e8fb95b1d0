//! Helpers of the tests in tests/edge/osb_catalog.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::http::{Method, StatusCode, header};
use common::*;
use serde_json::Value;

/// Every object key anywhere in a JSON tree, with its path.
pub fn keys(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push((k.clone(), format!("{path}.{k}")));
                keys(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                keys(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub async fn etag_of(b: &TestBroker) -> String {
    let r = b.get("/v2/catalog").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.headers
        .get(header::ETAG)
        .expect("the catalog carries an ETag")
        .to_str()
        .unwrap()
        .to_string()
}

pub async fn get_with_if_none_match(b: &TestBroker, value: &str) -> Resp {
    let mut req = req(Method::GET, "/v2/catalog", None);
    req.headers_mut()
        .insert(header::IF_NONE_MATCH, value.parse().unwrap());
    b.send(req).await
}
