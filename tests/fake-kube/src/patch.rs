//! The four PATCH flavours and field ownership (`metadata.managedFields`).
//!
//! - JSON merge patch (RFC 7386): exact.
//! - Strategic merge patch: a merge patch whose lists of objects are merged
//!   by their documented merge key (`containers` by `name`, container `ports`
//!   by `containerPort`, Service `ports` by `port`, ...) for the common
//!   workload fields listed in [`merge_key`]; other lists are replaced. The
//!   directives Helm 3's three-way merge emits (`$patch`, `$retainKeys`,
//!   `$setElementOrder/..`, `$deleteFromPrimitiveList/..`) are honoured.
//! - JSON patch (RFC 6902): exact, including `test`.
//! - Server-side apply: field managers own "leaf" fields (scalars, lists and
//!   empty maps; every list is treated as atomic, unlike the real server's
//!   associative lists). Applying merges the configuration into the object,
//!   removes fields the manager applied before but no longer does (unless
//!   another manager owns them), and reports a conflict when it would change
//!   a field another manager owns, unless `force` is set, which takes the
//!   fields over. Non-apply writes give their manager ownership of the fields
//!   they change, as the real server does.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The merge key of a list field under strategic merge patch, for the
/// common workload fields (`sample` is an element, to tell a container's
/// `ports` from a Service's).
fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if sample.get("containerPort").is_some() => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Lists of scalars that strategic merge patch unions rather than replaces.
fn is_merged_primitive_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch (see the module docs for what is covered).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = strip_directives(patch);
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(patch);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().unwrap();
    for (key, value) in p {
        if key.starts_with('$') {
            continue; // directives, handled below
        }
        if value.is_null() {
            t.remove(key);
            continue;
        }
        match value {
            Value::Object(_) => {
                let slot = t.entry(key.clone()).or_insert(Value::Null);
                strategic_merge_patch(slot, value)?;
                if slot.is_null() {
                    t.remove(key);
                }
            }
            Value::Array(items) => {
                let sample = items.first().unwrap_or(&Value::Null);
                let current = t.get(key).and_then(Value::as_array).cloned();
                let merged = match (merge_key(key, sample), current) {
                    (Some(mk), Some(current)) if sample.is_object() => {
                        merge_list(current, items, mk)?
                    }
                    (None, Some(mut current)) if is_merged_primitive_list(key) => {
                        for item in items {
                            if !current.contains(item) {
                                current.push(item.clone());
                            }
                        }
                        current
                    }
                    _ => items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .map(strip_directives)
                        .collect(),
                };
                t.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                t.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (key, value) in p {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (t.get_mut(field), value.as_array()) {
                list.retain(|v| !remove.contains(v));
            }
        } else if let Some(field) = key.strip_prefix("$setElementOrder/") {
            if let (Some(Value::Array(list)), Some(order)) = (t.get_mut(field), value.as_array()) {
                reorder(list, order);
            }
        }
    }
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: BTreeSet<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(k.as_str()));
    }
    Ok(())
}

fn merge_list(mut current: Vec<Value>, patch: &[Value], key: &str) -> Result<Vec<Value>, String> {
    // `[{"$patch": "replace"}, ...]` replaces the whole list.
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace") && i.get(key).is_none())
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect());
    }
    for item in patch {
        let id = item.get(key);
        let pos = id.and_then(|id| current.iter().position(|c| c.get(key) == Some(id)));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(pos) = pos {
                current.remove(pos);
            }
            continue;
        }
        match pos {
            Some(pos) => strategic_merge_patch(&mut current[pos], item)?,
            None => current.push(strip_directives(item)),
        }
    }
    Ok(current)
}

/// Orders `list` like `order` (elements given by their merge key fields);
/// elements `order` doesn't mention keep their relative order, after.
fn reorder(list: &mut [Value], order: &[Value]) {
    let rank = |item: &Value| {
        order
            .iter()
            .position(|o| {
                o.as_object()
                    .is_some_and(|o| !o.is_empty() && o.iter().all(|(k, v)| item.get(k) == Some(v)))
                    || o == item
            })
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank); // stable
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array")?;
    for op in ops {
        let path = op["path"]
            .as_str()
            .ok_or("JSON patch operation without path")?;
        let value = || op.get("value").cloned().ok_or("missing value".to_string());
        match op["op"].as_str().unwrap_or_default() {
            "add" => pointer_add(target, path, value()?)?,
            "remove" => {
                pointer_remove(target, path)?;
            }
            "replace" => {
                pointer_remove(target, path)?;
                pointer_add(target, path, value()?)?;
            }
            "move" | "copy" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let v = if op["op"] == "move" {
                    pointer_remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or(format!("missing path {from}"))?
                };
                pointer_add(target, path, v)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown JSON patch op {other:?}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let idx = path.rfind('/').ok_or(format!("invalid pointer {path:?}"))?;
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..idx].to_string(), last))
}

fn pointer_add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("bad index {last}"))?
            };
            if idx > a.len() {
                return Err(format!("index {idx} out of bounds"));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("missing path {parent:?}")),
    }
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("missing path {path:?}");
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => {
            let idx: usize = last.parse().map_err(|_| missing())?;
            (idx < a.len()).then(|| a.remove(idx)).ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

// ---------------------------------------------------------------------------
// Field ownership and server-side apply.

/// A field path: the keys from the object root to an owned leaf.
pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug)]
pub struct Manager {
    pub name: String,
    /// `Apply` or `Update`
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

/// Metadata the server manages: never owned by a field manager.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The leaf fields of an object that managers can own. `status` is left out
/// where it is a subresource (the main resource's writes don't touch it).
pub fn leaf_fields(obj: &Value, skip_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "status" if skip_status => {}
            "metadata" => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    if !SYSTEM_METADATA.contains(&k.as_str()) {
                        collect(v, &mut vec!["metadata".into(), k.clone()], &mut out);
                    }
                }
            }
            _ => collect(value, &mut vec![key.clone()], &mut out),
        }
    }
    out
}

fn collect(value: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(k.clone());
                collect(v, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |node, key| node.get(key))
}

fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = v;
    for key in parents {
        match node.get_mut(key) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(m) = node.as_object_mut() {
        m.remove(last);
    }
}

/// `{"f:metadata": {"f:labels": {"f:app": {}}}}`
fn to_fields_v1(fields: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in fields {
        let mut node = &mut root;
        for key in path {
            node = node
                .as_object_mut()
                .unwrap()
                .entry(format!("f:{key}"))
                .or_insert_with(|| json!({}));
        }
    }
    root
}

/// The inverse of [`to_fields_v1`]. Entries written by others may own list
/// elements (`k:{..}`, `v:..`) or a map itself (`.`): here the nearest
/// enclosing field is owned instead.
fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("f:"))
            .collect();
        let owns_elements = v
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.starts_with("k:") || k.starts_with("v:")));
        if (children.is_empty() || owns_elements) && !path.is_empty() {
            out.insert(path.clone());
            return;
        }
        for (k, child) in children {
            path.push(k[2..].to_string());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

pub fn read_managers(obj: &Value) -> Vec<Manager> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["subresource"].as_str().unwrap_or("").is_empty())
        .map(|e| Manager {
            name: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: e["time"].as_str().unwrap_or_default().to_string(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

pub fn write_managers(obj: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            json!({
                "manager": m.name,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&m.fields),
            })
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

fn entry<'a>(
    managers: &'a mut Vec<Manager>,
    name: &str,
    op: &str,
    stamp: &Stamp,
) -> &'a mut Manager {
    let idx = match managers
        .iter()
        .position(|m| m.name == name && m.operation == op)
    {
        Some(i) => i,
        None => {
            managers.push(Manager {
                name: name.into(),
                operation: op.into(),
                api_version: String::new(),
                time: String::new(),
                fields: FieldSet::new(),
            });
            managers.len() - 1
        }
    };
    let m = &mut managers[idx];
    m.api_version = stamp.api_version.clone();
    m.time = stamp.time.clone();
    m
}

/// What a write stamps on its managedFields entry.
pub struct Stamp {
    pub manager: String,
    pub api_version: String,
    pub time: String,
}

/// Records a non-apply write (create, update, patch) from `old` (`None` for a
/// create) to `new`: the writer becomes the owner of every field it changed
/// or added, other managers lose those, and owners of removed fields lose
/// them. `new`'s own `managedFields`, if a client sent some, replace the old.
pub fn record_update(old: Option<&Value>, new: &mut Value, stamp: &Stamp, skip_status: bool) {
    let mut managers = if new["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        read_managers(new)
    } else {
        old.map(read_managers).unwrap_or_default()
    };
    let old_value = old.cloned().unwrap_or(Value::Null);
    let changed: Vec<FieldPath> = leaf_fields(new, skip_status)
        .into_iter()
        .filter(|p| get_path(&old_value, p) != get_path(new, p))
        .collect();
    for m in managers.iter_mut() {
        m.fields.retain(|p| get_path(new, p).is_some());
        if m.name != stamp.manager || m.operation != "Update" {
            m.fields.retain(|p| !changed.iter().any(|c| overlaps(p, c)));
        }
    }
    if !changed.is_empty() {
        entry(&mut managers, &stamp.manager, "Update", stamp)
            .fields
            .extend(changed);
    }
    write_managers(new, &managers);
}

/// A server-side apply conflict: `(manager, field path)`.
pub type Conflict = (String, String);

/// Server-side apply of `config` by `stamp.manager` onto `live` (`None`:
/// the object doesn't exist yet). Returns the new object, or the conflicts
/// that stop it when not `force`d. The caller has checked the identity
/// fields and strips the server-managed metadata afterwards.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    stamp: &Stamp,
    force: bool,
    skip_status: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut config = config.clone();
    if skip_status {
        if let Some(m) = config.as_object_mut() {
            m.remove("status");
        }
    }
    let applied = leaf_fields(&config, skip_status);
    let Some(live) = live else {
        let mut obj = config;
        let mut managers = Vec::new();
        entry(&mut managers, &stamp.manager, "Apply", stamp).fields = applied;
        write_managers(&mut obj, &managers);
        return Ok(obj);
    };

    let mut managers = read_managers(live);
    let is_self = |m: &Manager| m.name == stamp.manager && m.operation == "Apply";

    let mut conflicts = Vec::new();
    for path in &applied {
        if get_path(live, path).is_none_or(|v| Some(v) == get_path(&config, path)) {
            continue; // no change: shared ownership is fine
        }
        for m in managers
            .iter()
            .filter(|m| !is_self(m) && m.name != stamp.manager)
        {
            if m.fields.iter().any(|p| overlaps(p, path)) {
                conflicts.push((m.name.clone(), format!(".{}", path.join("."))));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    if force {
        for m in managers.iter_mut().filter(|m| !is_self(m)) {
            m.fields.retain(|p| {
                !applied
                    .iter()
                    .any(|a| overlaps(p, a) && get_path(live, a) != get_path(&config, a))
            });
        }
    }

    let mut obj = live.clone();
    // Fields this manager applied last time and no longer does are removed,
    // unless someone else also owns them.
    let previous = managers
        .iter()
        .find(|m| is_self(m))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    for path in previous.difference(&applied) {
        let still_wanted = applied.iter().any(|a| overlaps(a, path));
        let owned_elsewhere = managers
            .iter()
            .filter(|m| !is_self(m))
            .any(|m| m.fields.iter().any(|p| overlaps(p, path)));
        if !still_wanted && !owned_elsewhere {
            remove_path(&mut obj, path);
        }
    }
    apply_merge(&mut obj, &config);
    entry(&mut managers, &stamp.manager, "Apply", stamp).fields = applied;
    write_managers(&mut obj, &managers);
    Ok(obj)
}

/// Merges an apply configuration: maps field by field, lists and scalars
/// replaced whole, `null` removes.
fn apply_merge(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if k == "managedFields" {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                } else if let Some(existing) = t.get_mut(k) {
                    apply_merge(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(manager: &str) -> Stamp {
        Stamp {
            manager: manager.into(),
            api_version: "v1".into(),
            time: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn strategic_merge_by_key_and_directives() {
        let mut t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:1"},
        ]}});
        let p = json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "a:2"}, {"name": "b", "$patch": "delete"},
                           {"name": "c", "image": "c:1"}],
        }});
        strategic_merge_patch(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "ports": [{"containerPort": 80}]},
                {"name": "c", "image": "c:1"},
            ]}})
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "replace", "path": "/b/c", "value": 2},
                {"op": "test", "path": "/b/c", "value": 2},
                {"op": "move", "from": "/b", "path": "/d"},
            ]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": [1, 2, 3], "d": {"c": 2}}));
        assert!(json_patch(&mut t, &json!([{"op": "test", "path": "/a/0", "value": 9}])).is_err());
    }

    #[test]
    fn apply_removes_dropped_fields_and_detects_conflicts() {
        let cfg1 = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "data": {"a": "1", "b": "2"}});
        let obj = apply(None, &cfg1, &stamp("helm"), false, false).unwrap();
        let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "data": {"a": "1"}});
        let obj = apply(Some(&obj), &cfg2, &stamp("helm"), false, false).unwrap();
        assert_eq!(obj["data"], json!({"a": "1"}));

        let other = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "data": {"a": "9"}});
        let conflicts = apply(Some(&obj), &other, &stamp("other"), false, false).unwrap_err();
        assert_eq!(conflicts, vec![("helm".to_string(), ".data.a".to_string())]);
        let forced = apply(Some(&obj), &other, &stamp("other"), true, false).unwrap();
        assert_eq!(forced["data"]["a"], "9");
        let owners: Vec<String> = read_managers(&forced)
            .into_iter()
            .filter(|m| {
                m.fields
                    .contains(&vec!["data".to_string(), "a".to_string()])
            })
            .map(|m| m.name)
            .collect();
        assert_eq!(owners, vec!["other"]);
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let mut created = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        record_update(None, &mut created, &stamp("kubectl"), false);
        let mut updated = created.clone();
        updated["data"]["a"] = json!("2");
        record_update(Some(&created), &mut updated, &stamp("broker"), false);
        let ms = read_managers(&updated);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].name, "broker");
    }
}
