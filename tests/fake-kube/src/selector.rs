//! Label and field selectors, as in the `labelSelector` and `fieldSelector`
//! query parameters of LIST, WATCH and deletecollection.
//!
//! Label selectors support the documented grammar: `key`, `!key`, `key=v`,
//! `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key>n`, `key<n`,
//! comma-separated (all must match). As documented, `!=` and `notin` match
//! objects that lack the label.
//!
//! Field selectors support `path=v`, `path==v` and `path!=v`. The real server
//! accepts only a few fields per kind (always `metadata.name` and
//! `metadata.namespace`); this fake accepts any dotted path into the object,
//! which is more lenient but agrees wherever the real one answers.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    NotExists,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<(String, Op)>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_outside_parens(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's `metadata.labels` (`Value::Null` if absent) match.
    pub fn matches(&self, labels: &Value) -> bool {
        self.0.iter().all(|(key, op)| {
            let value = labels.get(key).and_then(Value::as_str);
            match op {
                Op::Exists => value.is_some(),
                Op::NotExists => value.is_none(),
                Op::Equals(v) => value == Some(v.as_str()),
                Op::NotEquals(v) => value != Some(v.as_str()),
                Op::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::NotIn(vs) => !value.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::Gt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::Lt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

fn split_outside_parens(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<(String, Op), String> {
    let bad = || format!("unable to parse requirement: {part:?}");
    if let Some(key) = part.strip_prefix('!') {
        return Ok((check_key(key.trim())?, Op::NotExists));
    }
    for (sym, make) in [
        ("!=", Op::NotEquals as fn(String) -> Op),
        ("==", Op::Equals),
        ("=", Op::Equals),
    ] {
        if let Some((k, v)) = part.split_once(sym) {
            return Ok((check_key(k.trim())?, make(v.trim().to_string())));
        }
    }
    for (sym, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = part.split_once(sym) {
            let n: i64 = v.trim().parse().map_err(|_| bad())?;
            return Ok((check_key(k.trim())?, if gt { Op::Gt(n) } else { Op::Lt(n) }));
        }
    }
    // Set-based: `key in (a, b)` / `key notin (a, b)`.
    if let Some(open) = part.find('(') {
        let close = part.rfind(')').ok_or_else(bad)?;
        let mut head = part[..open].split_whitespace();
        let (Some(key), Some(op), None) = (head.next(), head.next(), head.next()) else {
            return Err(bad());
        };
        let values: Vec<String> = part[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        return match op {
            "in" => Ok((check_key(key)?, Op::In(values))),
            "notin" => Ok((check_key(key)?, Op::NotIn(values))),
            _ => Err(bad()),
        };
    }
    if part.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((check_key(part)?, Op::Exists))
}

fn check_key(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: {part:?}; can't understand"));
            };
            reqs.push((path.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, want)| {
            let mut node = object;
            for seg in path.split('.') {
                node = node.get(seg).unwrap_or(&Value::Null);
            }
            let have = match node {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == *want) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front", "n": "7"});
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&labels);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("missing!=x"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("app in (api, web),tier notin (back)"));
        assert!(!m("app notin (web)"));
        assert!(m("n>5,n<8"));
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("a=b,=c").is_err());
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "x", "namespace": "ns"}, "type": "Opaque"});
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&obj);
        assert!(m("metadata.name=x"));
        assert!(m("metadata.name=x,metadata.namespace!=other"));
        assert!(!m("metadata.name==y"));
        assert!(m("type=Opaque"));
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
