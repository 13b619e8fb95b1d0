//! How a record is laid out as a Secret: its name, labels and annotations,
//! and reading them back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::api::core::v1::Secret;
use ring::digest::{SHA256, digest};

use super::VERSION_ANNOTATION;
use super::{INSTANCE_LABEL, KEY_ANNOTATION, OWNER_LABEL, TABLE_LABEL, TOMBSTONE_LABEL};
use crate::broker::ports::{Table, Tags};
use crate::cluster::MANAGED_BY;

/// First 40 hex digits of sha256(`s`): label-value and name safe.
pub(super) fn hash40(s: &str) -> String {
    let d = digest(&SHA256, s.as_bytes());
    let mut out = String::with_capacity(40);
    for b in &d.as_ref()[..20] {
        write!(out, "{b:02x}").expect("writing to a String");
    }
    out
}

/// The Secret holding `key` of `table`.
pub fn secret_name(table: Table, key: &str) -> String {
    format!("cbs-{}-{}", table.name(), hash40(key))
}

pub(super) fn aad(table: Table, key: &str) -> String {
    format!("{}/{key}", table.name())
}

pub(super) fn status_code(e: &::kube::Error) -> Option<u16> {
    match e {
        ::kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// `owner` as a label value: itself when it is one, else a hash.
pub(crate) fn owner_label(owner: &str) -> String {
    let valid = !owner.is_empty()
        && owner.len() <= 63
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && owner.starts_with(|c: char| c.is_ascii_alphanumeric())
        && owner.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        owner.to_string()
    } else {
        format!("h{}", hash40(owner))
    }
}

pub(super) fn labels(table: Table, key: &str, tags: &Tags) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (TABLE_LABEL.to_string(), table.name().to_string()),
    ]);
    if table == Table::Bindings
        && let Some((instance, _)) = key.split_once('\0')
    {
        l.insert(INSTANCE_LABEL.to_string(), hash40(instance));
    }
    if let Some(owner) = &tags.owner {
        l.insert(OWNER_LABEL.to_string(), owner_label(owner));
    }
    if tags.tombstone {
        l.insert(TOMBSTONE_LABEL.to_string(), "true".to_string());
    }
    l
}

fn annotation<'a>(s: &'a Secret, name: &str) -> Option<&'a str> {
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(name))
        .map(String::as_str)
}

pub(super) fn version_of(s: &Secret) -> Option<u64> {
    annotation(s, VERSION_ANNOTATION).and_then(|v| v.parse().ok())
}

pub(super) fn key_of(s: &Secret) -> Option<String> {
    let raw = B64.decode(annotation(s, KEY_ANNOTATION)?).ok()?;
    String::from_utf8(raw).ok()
}

pub(super) fn terminating(s: &Secret) -> bool {
    s.metadata.deletion_timestamp.is_some()
}

pub(super) fn name_of(s: &Secret) -> &str {
    s.metadata.name.as_deref().unwrap_or("<unnamed>")
}
