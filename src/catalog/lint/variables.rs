//! Template variables: whether `{{instance.x}}`, `{{parameters.a.b}}`, `{{secrets.s}}`
//! and the like name something the scope declares, and what to suggest if not.

use super::*;

pub(super) fn check_variable(var: &str, which: Tree, scope: &Scope<'_>) -> Result<(), String> {
    let segs: Vec<&str> = var.split('.').collect();
    match segs.first() {
        Some(&("lookups" | "uses" | "user" | "binding")) => {
            credentials_variable(var, &segs, which, scope)
        }
        _ => plan_variable(var, &segs, which, scope),
    }
}

fn no_fields(var: &str, what: &str) -> Result<(), String> {
    Err(format!("`{var}`: {what} has no fields"))
}

/// `context.*`, `instance.*`, `secrets.*`, `parameters.*` (and anything
/// unknown).
fn plan_variable(var: &str, segs: &[&str], which: Tree, scope: &Scope<'_>) -> Result<(), String> {
    match segs {
        ["context", ..] | ["instance" | "secrets" | "parameters"] => Ok(()),
        ["instance", field, rest @ ..] => {
            if !INSTANCE_FIELDS.contains(field) {
                Err(format!(
                    "unknown variable `{var}`; instance has {}",
                    INSTANCE_FIELDS.join(", ")
                ))
            } else if !rest.is_empty() {
                no_fields(var, &format!("instance.{field}"))
            } else {
                Ok(())
            }
        }
        ["secrets", name, rest @ ..] => {
            if !scope.secrets.contains_key(*name) {
                Err(format!(
                    "`{var}`: secret `{name}` is not declared under chart.secrets"
                ))
            } else if !rest.is_empty() {
                no_fields(var, &format!("secrets.{name}"))
            } else {
                Ok(())
            }
        }
        ["parameters", name, ..] => {
            declared(var, name, scope.parameters.as_ref(), "the plan's instance")
        }
        _ => Err(format!(
            "unknown variable `{var}`; templates use instance.*, context.*, parameters.*, \
             secrets.*{}",
            if which == Tree::Credentials {
                " and binding.*"
            } else {
                ""
            }
        )),
    }
}

/// `lookups.*`, `uses.*`, `user.*`, `binding.*`: the names only credentials
/// (or a plan declaring them) have.
fn credentials_variable(
    var: &str,
    segs: &[&str],
    which: Tree,
    scope: &Scope<'_>,
) -> Result<(), String> {
    match segs {
        ["lookups", name, ..] if which == Tree::Credentials => {
            if scope.lookups.contains(*name) {
                Ok(())
            } else {
                Err(format!(
                    "`{var}`: lookup `{name}` is not declared under chart.lookups"
                ))
            }
        }
        ["lookups", ..] => Err(format!(
            "`{var}`: lookups.* is only available in credentials"
        )),
        ["uses", name, field] => {
            if !scope.uses.contains(*name) {
                Err(format!(
                    "`{var}`: `{name}` is not declared under chart.uses"
                ))
            } else if !["secret", "instance"].contains(field) {
                Err(format!("`{var}`: uses.{name} has secret and instance"))
            } else {
                Ok(())
            }
        }
        ["uses", ..] => Err(format!(
            "`{var}`: use uses.<name>.secret or uses.<name>.instance"
        )),
        ["user", "username" | "password"] if which == Tree::Credentials && scope.binding_user => {
            Ok(())
        }
        ["user", ..] if which == Tree::Credentials && scope.binding_user => {
            Err(format!("`{var}`: user has username and password"))
        }
        ["user", ..] => Err(format!(
            "`{var}`: user.* is the binding's own database user: only in credentials of a plan with chart.binding_users"
        )),
        ["binding", ..] if which == Tree::Values => Err(format!(
            "`{var}`: binding.* is only available in credentials"
        )),
        ["binding"] | ["binding", "parameters"] => Ok(()),
        ["binding", "parameters", name, ..] => declared(
            var,
            name,
            scope.binding_parameters.as_ref(),
            "the plan's binding",
        ),
        ["binding", field, rest @ ..] => {
            if !BINDING_FIELDS.contains(field) {
                Err(format!(
                    "unknown variable `{var}`; binding has id, app_guid, parameters"
                ))
            } else if !rest.is_empty() {
                no_fields(var, &format!("binding.{field}"))
            } else {
                Ok(())
            }
        }
        _ => plan_variable(var, segs, which, scope),
    }
}

/// The known variable closest to a mistyped `var`, compared on as many
/// segments as the candidate has (`lookups.db` for `lookps.db.port`), with
/// `var`'s remaining segments kept.
pub(super) fn suggestion(var: &str, which: Tree, scope: &Scope<'_>) -> Option<String> {
    let mut known: Vec<String> = INSTANCE_FIELDS
        .iter()
        .map(|f| format!("instance.{f}"))
        .collect();
    known.extend(scope.secrets.keys().map(|s| format!("secrets.{s}")));
    known.extend(
        scope
            .parameters
            .iter()
            .flatten()
            .map(|p| format!("parameters.{p}")),
    );
    for u in &scope.uses {
        known.push(format!("uses.{u}.secret"));
        known.push(format!("uses.{u}.instance"));
    }
    if which == Tree::Credentials {
        known.extend(scope.lookups.iter().map(|l| format!("lookups.{l}")));
        known.extend(BINDING_FIELDS.iter().map(|f| format!("binding.{f}")));
        known.extend(
            scope
                .binding_parameters
                .iter()
                .flatten()
                .map(|p| format!("binding.parameters.{p}")),
        );
        if scope.binding_user {
            known.extend(["user.username".into(), "user.password".into()]);
        }
    }
    let segs: Vec<&str> = var.split('.').collect();
    let mut best: Option<(usize, String)> = None;
    for cand in &known {
        let n = cand.split('.').count();
        if n > segs.len() {
            continue;
        }
        let head = segs[..n].join(".");
        if let Some(near) = crate::catalog::suggest::closest(&head, [cand.as_str()]) {
            let d = crate::catalog::suggest::distance(&head, near);
            if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                let rest = &segs[n..];
                let full = std::iter::once(near)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(".");
                best = Some((d, full));
            }
        }
    }
    best.map(|(_, s)| s)
}

pub(super) fn declared(
    var: &str,
    name: &str,
    props: Option<&BTreeSet<String>>,
    whose: &str,
) -> Result<(), String> {
    match props {
        Some(props) if !props.contains(name) => Err(format!(
            "`{var}`: parameter `{name}` is not in {whose} schema properties"
        )),
        _ => Ok(()),
    }
}

/// Semantic Versioning 2.0.0: `MAJOR.MINOR.PATCH[-pre][+build]`.
pub(super) fn is_semver(v: &str) -> bool {
    let (rest, build) = v.split_once('+').map_or((v, None), |(a, b)| (a, Some(b)));
    let (core, pre) = rest
        .split_once('-')
        .map_or((rest, None), |(a, b)| (a, Some(b)));
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let idents = |s: &str, numeric_rule: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!numeric_rule || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        })
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| idents(p, true))
        && build.is_none_or(|b| idents(b, false))
}
