//! Where a credential comes from, on the ground floor: the forms the
//! catalog uses for an upstream broker's `auth:` and a chart source's
//! `chart.auth` (basic, bearer), and [`SecretString`] for a value read from
//! them.
//!
//! A password or token is never written in the catalog, only the
//! environment variable or file holding it, read again at each use (a
//! rotated Secret takes effect without a restart). What this module holds
//! names where secrets are; the values it reads are [`SecretString`]s,
//! whose `Debug` prints `<redacted>`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where a credential comes from. `Debug` shows only the variable or file
/// name, never a value read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Written in the catalog (allowed for user names only).
    Inline(String),
    /// An environment variable.
    Env(String),
    /// A file whose content (trailing newline trimmed) is the value.
    File(PathBuf),
}

/// A secret value read from a [`Source`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretString(String);

impl SecretString {
    /// Wraps a secret value made from others (an encoded header, a file).
    pub(crate) fn new(value: String) -> SecretString {
        SecretString(value)
    }

    /// The value, for building a header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Source {
    /// Reads the value now.
    pub(crate) fn read(&self) -> Result<SecretString, String> {
        match self {
            Source::Inline(v) => Ok(SecretString(v.clone())),
            Source::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(SecretString(v)),
                _ => Err(format!("environment variable {var} is not set")),
            },
            Source::File(path) => std::fs::read_to_string(path)
                .map(|v| SecretString(v.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|v| {
                    if v.0.is_empty() {
                        Err(format!("{} is empty", path.display()))
                    } else {
                        Ok(v)
                    }
                }),
        }
    }
}

/// The `Authorization` header value for HTTP basic, read now.
pub(crate) fn basic_header(username: &Source, password: &Source) -> Result<SecretString, String> {
    use base64::Engine as _;
    let (u, p) = (username.read()?, password.read()?);
    let pair = format!("{}:{}", u.expose(), p.expose());
    Ok(SecretString(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )))
}

/// The `Authorization` header value for a bearer token, read now.
pub(crate) fn bearer_header(token: &Source) -> Result<SecretString, String> {
    Ok(SecretString(format!("Bearer {}", token.read()?.0)))
}

/// `basic:` as written: a user name (inline, from a variable or a file) and
/// a password (from a variable or a file, never inline).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BasicDoc {
    username: Option<String>,
    username_env: Option<String>,
    username_file: Option<PathBuf>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

/// `bearer:` as written: a token from a variable or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BearerDoc {
    token_env: Option<String>,
    token_file: Option<PathBuf>,
}

/// Resolves a relative file against the catalog's folder.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl BasicDoc {
    /// The user name and password sources; problems are pushed with
    /// `prefix` (`auth.basic`, `basic`) in front.
    pub(crate) fn sources(
        &self,
        prefix: &str,
        base: &Path,
        problems: &mut Vec<String>,
    ) -> Option<(Source, Source)> {
        let username = one_of(
            &format!("{prefix}: one of username, username_env, username_file"),
            [
                self.username.clone().map(Source::Inline),
                self.username_env.clone().map(Source::Env),
                self.username_file
                    .as_ref()
                    .map(|p| Source::File(resolve(base, p))),
            ],
            problems,
        );
        let password = one_of(
            &format!(
                "{prefix}: one of password_env, password_file (passwords are never written in the catalog)"
            ),
            [
                self.password_env.clone().map(Source::Env),
                self.password_file
                    .as_ref()
                    .map(|p| Source::File(resolve(base, p))),
            ],
            problems,
        );
        username.zip(password)
    }
}

impl BearerDoc {
    /// The token's source; problems are pushed with `prefix` in front.
    pub(crate) fn source(
        &self,
        prefix: &str,
        base: &Path,
        problems: &mut Vec<String>,
    ) -> Option<Source> {
        one_of(
            &format!("{prefix}: one of token_env, token_file"),
            [
                self.token_env.clone().map(Source::Env),
                self.token_file
                    .as_ref()
                    .map(|p| Source::File(resolve(base, p))),
            ],
            problems,
        )
    }
}

/// Exactly one of `sources` must be set.
fn one_of<const N: usize>(
    what: &str,
    sources: [Option<Source>; N],
    problems: &mut Vec<String>,
) -> Option<Source> {
    let mut set: Vec<Source> = sources.into_iter().flatten().collect();
    match set.len() {
        1 => set.pop(),
        0 => {
            problems.push(format!("{what} is required"));
            None
        }
        _ => {
            problems.push(format!("{what}: only one may be set"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(v: serde_json::Value) -> (Option<(Source, Source)>, Vec<String>) {
        let doc: BasicDoc = serde_json::from_value(v).unwrap();
        let mut problems = Vec::new();
        let got = doc.sources("basic", Path::new("/catalog"), &mut problems);
        (got, problems)
    }

    #[test]
    fn forms_resolve_and_refuse_inline_passwords_and_doubles() {
        let (got, p) = basic(serde_json::json!({"username": "u", "password_file": "p"}));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            got,
            Some((
                Source::Inline("u".into()),
                Source::File("/catalog/p".into())
            ))
        );
        let (got, p) = basic(serde_json::json!({"username": "u"}));
        assert!(got.is_none());
        assert!(p[0].contains("never written in the catalog"), "{p:?}");
        let (_, p) =
            basic(serde_json::json!({"username": "u", "username_env": "U", "password_env": "P"}));
        assert!(p[0].contains("only one may be set"), "{p:?}");
        assert!(serde_json::from_value::<BasicDoc>(serde_json::json!({"password": "x"})).is_err());
    }

    #[test]
    fn secret_strings_never_debug_their_value() {
        let s = SecretString::new("hunter22".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter22");
    }
}
