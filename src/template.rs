//! Per-leaf handlebars templating of YAML/JSON trees.
//!
//! Chart `values` and binding `credentials` are trees whose string leaves are
//! handlebars templates. Rendering happens leaf by leaf and the result goes
//! back into the same leaf, so a parameter value can never add, remove or
//! rename keys, whatever characters it holds: the output is never re-parsed as
//! YAML and never re-evaluated as a template.
//!
//! A leaf that is exactly one variable (`"{{parameters.replicas}}"`) takes the
//! variable's JSON scalar (number, boolean, string); when the variable is
//! absent (or null) the leaf is dropped so the chart's default applies.
//! Every other leaf renders to a string with HTML escaping off.
//!
//! [`variables`] lists what a template references; `catalog::lint` uses it to
//! reject unknown variables before anything runs.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Context, Handlebars, Path, PathSeg, RenderContext, Renderable};
use serde_json::{Map, Value};

/// Built once: registry construction registers every built-in helper, and
/// rendering only needs shared access.
static REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut registry = Handlebars::new();
    // Values feed YAML and credentials, not HTML: escaping would corrupt
    // passwords containing `&` or `<`.
    registry.register_escape_fn(handlebars::no_escape);
    registry.set_strict_mode(false);
    registry
});

/// Compiled leaves by source text. Compiling (handlebars' pest grammar) was
/// most of what a bind or provision spent rendering, and the sources are the
/// catalog's templates, a small fixed set: rendered output is never compiled.
/// Past [`MAX_CACHED`] sources nothing more is kept, so nothing can grow it
/// without bound.
static COMPILED: LazyLock<RwLock<HashMap<String, Arc<Template>>>> = LazyLock::new(RwLock::default);
const MAX_CACHED: usize = 4096;

/// Helpers registered by [`Handlebars::new`]; anything else fails at render
/// time, so lint rejects it up front.
const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len",
];

/// Block helpers whose body is evaluated against a different context, so the
/// body's relative paths are not root variables.
const CONTEXT_CHANGING_HELPERS: &[&str] = &["each", "with"];

/// What went wrong while compiling or rendering a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateErrorKind {
    /// The template text is not valid handlebars, or uses an unsupported
    /// construct (partials, decorators, unknown helpers).
    Compile,
    /// Handlebars failed while rendering.
    Render,
    /// A whole-leaf variable resolved to an object or array.
    NotScalar,
}

/// A template failure, naming the leaf it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub(crate) struct TemplateError {
    /// Leaf path inside the rendered tree, such as `auth.rootPassword` or
    /// `hosts[2]`; empty when no tree is involved.
    pub(crate) path: String,
    /// The failure category.
    pub(crate) kind: TemplateErrorKind,
    /// Human-readable detail. Never contains rendered data, so it is safe to
    /// log even when the data holds secrets.
    pub(crate) message: String,
}

impl TemplateError {
    fn new(path: &str, kind: TemplateErrorKind, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            kind,
            message: message.into(),
        }
    }
}

/// Renders every string leaf of `tree` with `data` as the handlebars context.
///
/// Keys are never templated and the output keeps the input's shape, except
/// that a whole-leaf variable that is absent or null removes its key (or its
/// sequence item). Errors name the leaf path.
pub(crate) fn render_tree(tree: &Value, data: &Value) -> Result<Value, TemplateError> {
    let ctx = Context::from(data.clone());
    Ok(render_node(tree, "", &ctx, data)?.unwrap_or(Value::Null))
}

/// `None` means "leave this leaf out".
fn render_node(
    node: &Value,
    path: &str,
    ctx: &Context,
    data: &Value,
) -> Result<Option<Value>, TemplateError> {
    match node {
        Value::String(s) => render_leaf(s, path, ctx, data),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                if let Some(v) = render_node(child, &join_key(path, key), ctx, data)? {
                    out.insert(key.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, child) in items.iter().enumerate() {
                if let Some(v) = render_node(child, &join_index(path, i), ctx, data)? {
                    out.push(v);
                }
            }
            Ok(Some(Value::Array(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

fn render_leaf(
    source: &str,
    path: &str,
    ctx: &Context,
    data: &Value,
) -> Result<Option<Value>, TemplateError> {
    // Without `{{` handlebars would emit the text unchanged; skip the parser.
    if !source.contains("{{") {
        return Ok(Some(Value::String(source.to_owned())));
    }
    let template = compiled(source, path)?;
    if let Some(segments) = single_variable(&template) {
        return match lookup(data, &segments) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ (Value::Bool(_) | Value::Number(_) | Value::String(_))) => Ok(Some(v.clone())),
            Some(other) => Err(TemplateError::new(
                path,
                TemplateErrorKind::NotScalar,
                format!(
                    "`{}` is {}; a whole-value template needs a string, number or boolean",
                    segments.join("."),
                    if other.is_array() {
                        "an array"
                    } else {
                        "an object"
                    }
                ),
            )),
        };
    }
    let mut rc = RenderContext::new(None);
    template
        .renders(&REGISTRY, ctx, &mut rc)
        .map(|s| Some(Value::String(s)))
        .map_err(|e| TemplateError::new(path, TemplateErrorKind::Render, e.reason().to_string()))
}

/// [`compile`], once per source text.
fn compiled(source: &str, path: &str) -> Result<Arc<Template>, TemplateError> {
    if let Some(t) = COMPILED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(source)
    {
        return Ok(t.clone());
    }
    let template = Arc::new(compile(source, path)?);
    let mut cache = COMPILED.write().unwrap_or_else(PoisonError::into_inner);
    if cache.len() < MAX_CACHED {
        cache.insert(source.to_owned(), template.clone());
    }
    Ok(template)
}

fn compile(source: &str, path: &str) -> Result<Template, TemplateError> {
    Template::compile(source).map_err(|e| {
        let at = e
            .pos()
            .map(|(line, col)| format!(" (line {line}, column {col})"))
            .unwrap_or_default();
        TemplateError::new(
            path,
            TemplateErrorKind::Compile,
            format!("template does not compile: {}{at}", e.reason()),
        )
    })
}

/// The named segments of a template that is exactly one plain variable
/// reference, such as `{{parameters.replicas}}` or `{{{ secrets.x }}}`.
fn single_variable(template: &Template) -> Option<Vec<String>> {
    let [element] = template.elements.as_slice() else {
        return None;
    };
    let (TemplateElement::Expression(ht) | TemplateElement::HtmlExpression(ht)) = element else {
        return None;
    };
    if ht.block || !ht.params.is_empty() || !ht.hash.is_empty() {
        return None;
    }
    let Parameter::Path(Path::Relative((segs, _))) = &ht.name else {
        return None;
    };
    let named: Option<Vec<String>> = segs
        .iter()
        .map(|s| match s {
            PathSeg::Named(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    named.filter(|n| !n.is_empty())
}

fn lookup<'a>(data: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(data, |node, seg| match node {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The root-context variable paths a template references, dotted
/// (`parameters.database`), deduplicated in order of first use.
///
/// Paths used as helper parameters (`{{#if parameters.tls}}`) count. Paths
/// inside `#each`/`#with` bodies are relative to the iterated value and are
/// skipped, except `@root.…` and enough `../` to climb back to the root.
/// Partials, decorators and unknown helpers are reported as compile errors
/// because they could only fail at render time.
pub(crate) fn variables(template: &str) -> Result<Vec<String>, TemplateError> {
    let compiled = compile(template, "")?;
    let mut out = Vec::new();
    collect_template(&compiled, 0, &mut out)?;
    Ok(out)
}

fn collect_template(
    t: &Template,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), TemplateError> {
    t.elements
        .iter()
        .try_for_each(|e| collect_element(e, depth, out))
}

fn collect_element(
    e: &TemplateElement,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), TemplateError> {
    match e {
        TemplateElement::RawString(_) | TemplateElement::Comment(_) => Ok(()),
        TemplateElement::Expression(ht)
        | TemplateElement::HtmlExpression(ht)
        | TemplateElement::HelperBlock(ht) => {
            let is_block = matches!(e, TemplateElement::HelperBlock(_));
            let inner_depth = match &ht.name {
                Parameter::Name(name) => {
                    if !BUILTIN_HELPERS.contains(&name.as_str()) {
                        return Err(unsupported(format!("unknown helper `{name}`")));
                    }
                    depth + usize::from(CONTEXT_CHANGING_HELPERS.contains(&name.as_str()))
                }
                // A mustache-style section `{{#parameters.x}}` iterates or
                // scopes into the value, like `#with`.
                name => {
                    collect_param(name, depth, out)?;
                    depth + usize::from(is_block)
                }
            };
            for p in ht.params.iter().chain(ht.hash.values()) {
                collect_param(p, depth, out)?;
            }
            if let Some(body) = &ht.template {
                collect_template(body, inner_depth, out)?;
            }
            // `{{else}}` of `#each`/`#with` runs in the outer context.
            if let Some(inverse) = &ht.inverse {
                collect_template(inverse, depth, out)?;
            }
            Ok(())
        }
        TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
            Err(unsupported("decorators are not supported".into()))
        }
        TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
            Err(unsupported("partials are not supported".into()))
        }
        _ => Err(unsupported("unsupported template construct".into())),
    }
}

fn collect_param(p: &Parameter, depth: usize, out: &mut Vec<String>) -> Result<(), TemplateError> {
    match p {
        Parameter::Path(Path::Relative((segs, raw))) => {
            let ups = segs
                .iter()
                .filter(|s| !matches!(s, PathSeg::Named(_)))
                .count();
            let rooted = raw.starts_with("@root");
            if rooted || ups >= depth {
                let name: Vec<&str> = segs
                    .iter()
                    .filter_map(|s| match s {
                        PathSeg::Named(n) => Some(n.as_str()),
                        _ => None,
                    })
                    .collect();
                let name = name.join(".");
                if !name.is_empty() && !out.contains(&name) {
                    out.push(name);
                }
            }
            Ok(())
        }
        Parameter::Subexpression(sub) => collect_element(sub.as_element(), depth, out),
        // Local data (`@index`, `@key`), helper names and literals are not
        // catalog variables.
        _ => Ok(()),
    }
}

fn unsupported(message: String) -> TemplateError {
    TemplateError::new("", TemplateErrorKind::Compile, message)
}

/// Every string leaf of `tree` with its leaf path, in document order.
pub(crate) fn string_leaves(tree: &Value) -> Vec<(String, &str)> {
    fn walk<'a>(node: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
        match node {
            Value::String(s) => out.push((path, s)),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| walk(v, join_key(&path, k), out)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, join_index(&path, i), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(tree, String::new(), &mut out);
    out
}

/// Appends a mapping key to a leaf path: `a.b`, or `a["x.y"]` when the key
/// would be ambiguous in dotted form.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (plain, parent.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{key:?}]"),
    }
}

/// Appends a sequence index to a leaf path: `hosts[2]`.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

#[cfg(test)]
mod tests;
