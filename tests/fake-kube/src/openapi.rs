//! A minimal OpenAPI v3 surface: `GET /openapi/v3` (the index) and
//! `GET /openapi/v3/{api/v1 | apis/{group}/{version}}` (one document per
//! group-version).
//!
//! Why it exists: before sending objects, helm (through kubectl's resource
//! builder) asks the server's OpenAPI v3 documents whether the PATCH
//! operation of each object's GroupVersionKind accepts the `fieldValidation`
//! query parameter. If it does, helm leaves validation to the server and does
//! no client-side schema validation; without the documents at all, install
//! fails ("failed to download openapi"). So each document lists, for every
//! resource, the item path with a `patch` operation tagged with
//! `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter.
//! Schemas are deliberately permissive objects (`x-kubernetes-preserve-
//! unknown-fields`): this fake validates no fields.

use serde_json::{Map, Value, json};

use crate::discovery::ResourceType;

/// `"api/v1"` or `"apis/{group}/{version}"`, the key of a group-version in
/// the index.
fn doc_key(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

/// `GET /openapi/v3`
pub fn index(types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for t in types {
        let key = doc_key(t);
        if paths.contains_key(&key) {
            continue;
        }
        let doc = document(types, &key).unwrap_or(Value::Null);
        // Clients cache documents by this URL, so the hash has to change
        // whenever the document does (e.g. when a CRD adds a version).
        let hash = fnv1a(doc.to_string().as_bytes());
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/{key}`, `None` for an unknown group-version.
pub fn document(types: &[ResourceType], key: &str) -> Option<Value> {
    let members: Vec<&ResourceType> = types.iter().filter(|t| doc_key(t) == key).collect();
    if members.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in members {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let schema_name = schema_name(t);
        let collection = if t.namespaced {
            format!("/{key}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("/{key}/{}", t.plural)
        };
        let reference = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let body = json!({
            "required": true,
            "content": {"application/json": {"schema": reference}},
        });
        let ok = json!({"200": {
            "description": "OK",
            "content": {"application/json": {"schema": reference}},
        }});
        let mut path_params = vec![json!({
            "name": "name", "in": "path", "required": true, "schema": {"type": "string"},
        })];
        if t.namespaced {
            path_params.push(json!({
                "name": "namespace", "in": "path", "required": true, "schema": {"type": "string"},
            }));
        }
        let write_params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        ]);
        let mut patch_params = write_params.as_array().unwrap().clone();
        patch_params.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean"}}));

        if !t.create_only {
            paths.insert(
                format!("{collection}/{{name}}"),
                json!({
                    "parameters": path_params,
                    "get": {
                        "operationId": format!("read{}", t.kind),
                        "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk,
                        "responses": ok,
                    },
                    "put": {
                        "operationId": format!("replace{}", t.kind),
                        "x-kubernetes-action": "put",
                        "x-kubernetes-group-version-kind": gvk,
                        "parameters": write_params,
                        "requestBody": body,
                        "responses": ok,
                    },
                    "patch": {
                        "operationId": format!("patch{}", t.kind),
                        "x-kubernetes-action": "patch",
                        "x-kubernetes-group-version-kind": gvk,
                        "parameters": patch_params,
                        "requestBody": {"required": true, "content": {
                            "application/apply-patch+yaml": {"schema": {"type": "object"}},
                            "application/json-patch+json": {"schema": {"type": "object"}},
                            "application/merge-patch+json": {"schema": {"type": "object"}},
                            "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
                        }},
                        "responses": ok,
                    },
                    "delete": {
                        "operationId": format!("delete{}", t.kind),
                        "x-kubernetes-action": "delete",
                        "x-kubernetes-group-version-kind": gvk,
                        "responses": {"200": {"description": "OK"}},
                    },
                }),
            );
        }
        paths.insert(
            collection,
            json!({"post": {
                "operationId": format!("create{}", t.kind),
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": write_params,
                "requestBody": body,
                "responses": ok,
            }}),
        );
        schemas.insert(
            schema_name,
            json!({
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk],
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake-kube)", "version": "v1.35.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `io.k8s.api.apps.v1.Deployment`-style names; they only need to be unique
/// within a document.
fn schema_name(t: &ResourceType) -> String {
    let group = if t.group.is_empty() {
        "core".to_string()
    } else {
        t.group.trim_end_matches(".k8s.io").replace('.', "_")
    };
    format!("io.k8s.api.{group}.{}.{}", t.version, t.kind)
}

/// FNV-1a, 64 bits: a stable content hash without another dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
