//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`) into the JSON the store keeps.
//!
//! helm's release storage uses client-go's typed clientset, which sends
//! Secrets (POST, PUT) and the DELETE options as protobuf; Helm 3 creates the
//! namespace of `--create-namespace` the same way, and the ConfigMap storage
//! driver would send ConfigMaps. So those kinds are decoded; any other kind
//! is answered with 415, as a server that can't decode a body would. The
//! envelope is the 4-byte magic `k8s\0` followed by a `runtime.Unknown`
//! whose `typeMeta` names the kind and whose `raw` holds the object.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// A protobuf body as client-go sends it: the magic, then a
/// `runtime.Unknown` naming the kind around `raw` (the encoded object). For
/// tests that send what helm sends.
pub fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// The protobuf body of a helm release record as helm POSTs it: Secret
/// `name` labelled `owner: helm`, of type `helm.sh/release.v1`, holding
/// `release` (raw bytes) under `release`.
pub fn release_secret(name: &str, release: &[u8]) -> Vec<u8> {
    let secret = k8s_pb::api::core::v1::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some(name.into()),
            labels: [("owner".to_string(), "helm".to_string())].into(),
            ..Default::default()
        }),
        data: [("release".to_string(), release.to_vec())].into(),
        r#type: Some("helm.sh/release.v1".into()),
        ..Default::default()
    };
    envelope("v1", "Secret", secret.encode_to_vec())
}

/// Decodes a protobuf body into a JSON object (with `apiVersion` and `kind`).
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("protobuf body does not start with the k8s magic")?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
        .map_err(|e| format!("decoding runtime.Unknown: {e}"))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let err = |e: prost::DecodeError| format!("decoding {kind}: {e}");
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => {
            let s = k8s_pb::api::core::v1::Secret::decode(raw.as_slice()).map_err(err)?;
            fields([
                ("metadata", s.metadata.map(object_meta)),
                ("immutable", s.immutable.map(Value::Bool)),
                ("data", bytes_map(s.data)),
                ("stringData", string_map(s.string_data)),
                ("type", s.r#type.map(Value::String)),
            ])
        }
        ("v1", "ConfigMap") => {
            let c = k8s_pb::api::core::v1::ConfigMap::decode(raw.as_slice()).map_err(err)?;
            fields([
                ("metadata", c.metadata.map(object_meta)),
                ("immutable", c.immutable.map(Value::Bool)),
                ("data", string_map(c.data)),
                ("binaryData", bytes_map(c.binary_data)),
            ])
        }
        ("v1", "Namespace") => {
            let n = k8s_pb::api::core::v1::Namespace::decode(raw.as_slice()).map_err(err)?;
            let mut o = Map::new();
            put(&mut o, "metadata", n.metadata.map(object_meta));
            if let Some(spec) = n.spec.filter(|s| !s.finalizers.is_empty()) {
                o.insert("spec".into(), json!({"finalizers": spec.finalizers}));
            }
            o
        }
        // DeleteOptions travel as `meta.k8s.io/v1` (or the legacy `v1`).
        (_, "DeleteOptions") => {
            let d = meta::DeleteOptions::decode(raw.as_slice()).map_err(err)?;
            let mut o = Map::new();
            put(
                &mut o,
                "gracePeriodSeconds",
                d.grace_period_seconds.map(Value::from),
            );
            if let Some(p) = d.preconditions {
                let mut pre = Map::new();
                put(&mut pre, "uid", p.uid.map(Value::String));
                put(
                    &mut pre,
                    "resourceVersion",
                    p.resource_version.map(Value::String),
                );
                o.insert("preconditions".into(), Value::Object(pre));
            }
            put(
                &mut o,
                "orphanDependents",
                d.orphan_dependents.map(Value::Bool),
            );
            put(
                &mut o,
                "propagationPolicy",
                d.propagation_policy.map(Value::String),
            );
            if !d.dry_run.is_empty() {
                o.insert("dryRun".into(), json!(d.dry_run));
            }
            o
        }
        _ => {
            return Err(format!(
                "the fake API server decodes no protobuf {api_version} {kind}; send JSON"
            ));
        }
    };
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

fn put(o: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        o.insert(key.into(), v);
    }
}

/// An object of the fields that are set, in the order given.
fn fields<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Map<String, Value> {
    let mut o = Map::new();
    for (key, value) in pairs {
        put(&mut o, key, value);
    }
    o
}

fn string_map(m: BTreeMap<String, String>) -> Option<Value> {
    (!m.is_empty()).then(|| json!(m))
}

/// Protobuf carries raw bytes where JSON carries base64 strings.
fn bytes_map(m: BTreeMap<String, Vec<u8>>) -> Option<Value> {
    (!m.is_empty()).then(|| {
        Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, Value::String(B64.encode(v))))
                .collect(),
        )
    })
}

fn time(t: meta::Time) -> Value {
    Value::String(crate::store::rfc3339(t.seconds.unwrap_or(0)))
}

fn object_meta(m: meta::ObjectMeta) -> Value {
    let mut o = Map::new();
    put(&mut o, "name", m.name.map(Value::String));
    put(&mut o, "generateName", m.generate_name.map(Value::String));
    put(&mut o, "namespace", m.namespace.map(Value::String));
    put(&mut o, "uid", m.uid.map(Value::String));
    put(
        &mut o,
        "resourceVersion",
        m.resource_version.map(Value::String),
    );
    put(&mut o, "generation", m.generation.map(Value::from));
    put(&mut o, "creationTimestamp", m.creation_timestamp.map(time));
    put(&mut o, "deletionTimestamp", m.deletion_timestamp.map(time));
    put(&mut o, "labels", string_map(m.labels));
    put(&mut o, "annotations", string_map(m.annotations));
    if !m.owner_references.is_empty() {
        let refs: Vec<Value> = m
            .owner_references
            .into_iter()
            .map(|r| {
                Value::Object(fields([
                    ("apiVersion", r.api_version.map(Value::String)),
                    ("kind", r.kind.map(Value::String)),
                    ("name", r.name.map(Value::String)),
                    ("uid", r.uid.map(Value::String)),
                    ("controller", r.controller.map(Value::Bool)),
                    (
                        "blockOwnerDeletion",
                        r.block_owner_deletion.map(Value::Bool),
                    ),
                ]))
            })
            .collect();
        o.insert("ownerReferences".into(), Value::Array(refs));
    }
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), json!(m.finalizers));
    }
    if !m.managed_fields.is_empty() {
        let entries: Vec<Value> = m
            .managed_fields
            .into_iter()
            .map(|e| {
                // FieldsV1 is JSON inside the protobuf.
                let fields_v1 = e
                    .fields_v1
                    .and_then(|f| f.raw)
                    .and_then(|raw| serde_json::from_slice(&raw).ok());
                Value::Object(fields([
                    ("manager", e.manager.map(Value::String)),
                    ("operation", e.operation.map(Value::String)),
                    ("apiVersion", e.api_version.map(Value::String)),
                    ("time", e.time.map(time)),
                    ("fieldsType", e.fields_type.map(Value::String)),
                    ("fieldsV1", fields_v1),
                    ("subresource", e.subresource.map(Value::String)),
                ]))
            })
            .collect();
        o.insert("managedFields".into(), Value::Array(entries));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_secret() {
        let v = decode(&release_secret("s", b"\x1f\x8b")).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "s");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], B64.encode(b"\x1f\x8b"));
        assert_eq!(v["type"], "helm.sh/release.v1");
    }

    #[test]
    fn decodes_delete_options_and_rejects_others() {
        let opts = meta::DeleteOptions {
            propagation_policy: Some("Background".into()),
            preconditions: Some(meta::Preconditions {
                uid: None,
                resource_version: Some("7".into()),
            }),
            ..Default::default()
        };
        let v = decode(&envelope(
            "meta.k8s.io/v1",
            "DeleteOptions",
            opts.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(v["propagationPolicy"], "Background");
        assert_eq!(v["preconditions"]["resourceVersion"], "7");
        assert!(decode(&envelope("v1", "Pod", vec![])).is_err());
        assert!(decode(b"{}").is_err());
    }
}
