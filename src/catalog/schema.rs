//! Plan parameter schemas: shape checks, compilation, validation, defaults.
//!
//! Validators are compiled once at load and shared, because validation runs
//! on every provision, update and bind. A schema without `$schema` gets
//! draft-04's: the OSB spec requires the key, and draft-04 is the one version
//! every platform must support, so what platforms see is what we enforce.
//! Compiling without the `resolve-*` features means a remote or file `$ref`
//! fails at load, as the spec forbids external references.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use jsonschema::Validator;
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value};

use crate::template::{join_index, join_key};

/// `$schema` written into schemas that omit it.
const DEFAULT_DIALECT: &str = "http://json-schema.org/draft-04/schema#";
/// The OSB limit on one schema's size.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Enough failures to fix a request, few enough to keep the body small.
const MAX_REPORTED_ERRORS: usize = 10;
/// Validation messages quote the offending value; cap it.
const MAX_MESSAGE_CHARS: usize = 300;

/// Which of a plan's three parameter schemas applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SchemaKind {
    /// `schemas.service_instance.create`: provision.
    InstanceCreate,
    /// `schemas.service_instance.update`: update.
    InstanceUpdate,
    /// `schemas.service_binding.create`: bind.
    BindingCreate,
}

impl SchemaKind {
    /// Every kind, in catalog order.
    pub(crate) const ALL: [SchemaKind; 3] = [
        SchemaKind::InstanceCreate,
        SchemaKind::InstanceUpdate,
        SchemaKind::BindingCreate,
    ];

    /// The keys under `schemas` leading to this kind's input schema.
    pub(crate) fn keys(self) -> (&'static str, &'static str) {
        match self {
            SchemaKind::InstanceCreate => ("service_instance", "create"),
            SchemaKind::InstanceUpdate => ("service_instance", "update"),
            SchemaKind::BindingCreate => ("service_binding", "create"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `parameters` JSON schema for `kind`, if the plan has one.
pub(super) fn parameters_schema(schemas: Option<&Value>, kind: SchemaKind) -> Option<&Value> {
    let (group, op) = kind.keys();
    schemas?.get(group)?.get(op)?.get("parameters")
}

/// Compiled validators, one slot per [`SchemaKind`], each with the schema
/// it came from (violation messages quote its descriptions).
#[derive(Clone, Default)]
pub(super) struct Validators([Option<Arc<(Validator, Value)>>; 3]);

impl fmt::Debug for Validators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present: Vec<_> = SchemaKind::ALL
            .iter()
            .filter(|k| self.0[k.index()].is_some())
            .collect();
        f.debug_tuple("Validators").field(&present).finish()
    }
}

impl Validators {
    pub(super) fn validate(&self, kind: SchemaKind, params: &Value) -> Result<(), String> {
        let empty = Value::Object(Map::new());
        let instance = match params {
            Value::Null => &empty,
            Value::Object(_) => params,
            _ => return Err("parameters: must be a JSON object".to_owned()),
        };
        let Some(compiled) = &self.0[kind.index()] else {
            return Ok(());
        };
        let (validator, schema) = compiled.as_ref();
        let mut errors: Vec<String> = Vec::new();
        let mut more = 0usize;
        for e in validator.iter_errors(instance) {
            let path = dotted("parameters", e.instance_path());
            let message = truncate(super::violations::describe(&path, &e, schema));
            if errors.contains(&message) {
                continue;
            }
            if errors.len() < MAX_REPORTED_ERRORS {
                errors.push(message);
            } else {
                more += 1;
            }
        }
        if more > 0 {
            errors.push(format!("and {more} more"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

fn truncate(mut s: String) -> String {
    if let Some((cut, _)) = s.char_indices().nth(MAX_MESSAGE_CHARS) {
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Checks the shape of a plan's `schemas` object, fills in `$schema` and
/// compiles each input schema. `report(path, message)` receives problems,
/// with paths relative to `schemas`.
pub(super) fn prepare(schemas: &mut Value, report: &mut dyn FnMut(String, String)) -> Validators {
    let mut validators = Validators::default();
    let Some(groups) = schemas.as_object_mut() else {
        report(String::new(), "must be a mapping".into());
        return validators;
    };
    for (group, ops) in groups.iter_mut() {
        let allowed: &[&str] = match group.as_str() {
            "service_instance" => &["create", "update"],
            "service_binding" => &["create"],
            _ => {
                report(
                    join_key("", group),
                    "unknown key; expected service_instance or service_binding".into(),
                );
                continue;
            }
        };
        let Some(ops) = ops.as_object_mut() else {
            report(join_key("", group), "must be a mapping".into());
            continue;
        };
        for (op, input) in ops.iter_mut() {
            let path = join_key(group, op);
            let Some(kind) = SchemaKind::ALL
                .into_iter()
                .find(|k| k.keys() == (group.as_str(), op.as_str()))
                .filter(|_| allowed.contains(&op.as_str()))
            else {
                report(
                    path,
                    format!("unknown key; expected {}", allowed.join(" or ")),
                );
                continue;
            };
            let Some(input) = input.as_object_mut() else {
                report(path, "must be a mapping with a `parameters` schema".into());
                continue;
            };
            if let Some(key) = input.keys().find(|k| *k != "parameters") {
                report(
                    join_key(&path, key),
                    "unknown key; expected parameters".into(),
                );
            }
            let Some(parameters) = input.get_mut("parameters") else {
                continue;
            };
            let path = join_key(&path, "parameters");
            match compile(parameters) {
                Ok(v) => validators.0[kind.index()] = Some(Arc::new((v, parameters.clone()))),
                Err(message) => report(path, message),
            }
        }
    }
    validators
}

fn compile(schema: &mut Value) -> Result<Validator, String> {
    let Some(obj) = schema.as_object_mut() else {
        return Err("must be a JSON schema object".into());
    };
    obj.entry("$schema")
        .or_insert_with(|| Value::String(DEFAULT_DIALECT.into()));
    let size = serde_json::to_vec(schema).map_or(0, |b| b.len());
    if size > MAX_SCHEMA_BYTES {
        return Err(format!(
            "schema is {size} bytes; OSB allows at most {MAX_SCHEMA_BYTES}"
        ));
    }
    jsonschema::validator_for(schema).map_err(|e| {
        // A meta-schema failure's instance path points into the schema.
        let at = dotted("", e.instance_path());
        if at.is_empty() {
            format!("schema does not compile: {e}")
        } else {
            format!("schema does not compile at `{at}`: {e}")
        }
    })
}

/// `/a/0/b` as `root.a[0].b` (or `a[0].b` for an empty root).
fn dotted(root: &str, location: &jsonschema::paths::Location) -> String {
    location
        .segments()
        .fold(root.to_owned(), |path, seg| match seg {
            LocationSegment::Property(p) => join_key(&path, &p),
            LocationSegment::Index(i) => join_index(&path, i),
        })
}

/// Fills top-level `properties.*.default`s of the `kind` schema into
/// `params` where the key is missing.
pub(super) fn apply_defaults(schemas: Option<&Value>, kind: SchemaKind, params: &mut Value) {
    let Some(props) = parameters_schema(schemas, kind)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let defaults = props
        .iter()
        .filter_map(|(name, prop)| Some((name, prop.get("default")?)));
    for (name, default) in defaults {
        if params.is_null() {
            *params = Value::Object(Map::new());
        }
        let Some(obj) = params.as_object_mut() else {
            // Validation rejects non-objects; nothing sensible to fill.
            return;
        };
        obj.entry(name.clone()).or_insert_with(|| default.clone());
    }
}

/// Top-level property names declared by the given schemas, or `None` when
/// none of them lists `properties` (then any name is acceptable).
pub(super) fn property_names(
    schemas: Option<&Value>,
    kinds: &[SchemaKind],
) -> Option<BTreeSet<String>> {
    let mut names: Option<BTreeSet<String>> = None;
    for kind in kinds {
        if let Some(props) = parameters_schema(schemas, *kind)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
        {
            names.get_or_insert_default().extend(props.keys().cloned());
        }
    }
    names
}
