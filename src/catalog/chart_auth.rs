//! `chart.auth`: how the broker authenticates to a private chart source, as
//! the catalog states it. Fetching with it is the chart-source adapter's
//! business (`crate::charts::auth`); here are only the forms and their
//! checks.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::credentials::{BasicDoc, BearerDoc, Source};

/// How the broker authenticates to a chart source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChartAuth {
    /// HTTP basic (repository) or registry user name and password (OCI).
    Basic {
        /// User name.
        username: Source,
        /// Password (never inline).
        password: Source,
    },
    /// `Authorization: Bearer <token>` (HTTPS repositories).
    Bearer {
        /// The token (never inline).
        token: Source,
    },
    /// A docker `config.json` (a `kubernetes.io/dockerconfigjson` Secret's
    /// `.dockerconfigjson`): its `auths` entry for the registry (OCI).
    DockerConfig(PathBuf),
}

/// `chart.auth` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum AuthDoc {
    /// `basic: {username | username_env | username_file, password_env | password_file}`
    Basic(BasicDoc),
    /// `bearer: {token_env | token_file}`
    Bearer(BearerDoc),
    /// `docker_config: <path>`
    DockerConfig(PathBuf),
}

impl ChartAuth {
    /// Checks `chart.auth` for a repository (`oci` false) or a registry;
    /// relative files resolve against `base`. Returns every problem found.
    pub(crate) fn parse(doc: &AuthDoc, base: &Path, oci: bool) -> Result<ChartAuth, Vec<String>> {
        let mut problems = Vec::new();
        let auth = match doc {
            AuthDoc::Basic(b) => b
                .sources("basic", base, &mut problems)
                .map(|(username, password)| ChartAuth::Basic { username, password }),
            AuthDoc::Bearer(b) => {
                if oci {
                    problems.push(
                        "bearer applies to `repository` charts; a registry takes `basic` or `docker_config`"
                            .into(),
                    );
                }
                b.source("bearer", base, &mut problems)
                    .map(|token| ChartAuth::Bearer { token })
            }
            AuthDoc::DockerConfig(p) => {
                if !oci {
                    problems.push(
                        "docker_config applies to `oci` charts; a repository takes `basic` or `bearer`"
                            .into(),
                    );
                }
                Some(ChartAuth::DockerConfig(if p.is_absolute() {
                    p.clone()
                } else {
                    base.join(p)
                }))
            }
        };
        match auth {
            Some(a) if problems.is_empty() => Ok(a),
            _ => Err(problems),
        }
    }

    /// Where the secret comes from, for messages: `password_file /x`,
    /// `token_env T`, `docker_config /y`.
    pub(crate) fn origin(&self) -> String {
        let show = |what: &str, s: &Source| match s {
            Source::Inline(_) => format!("{what} (inline)"),
            Source::Env(v) => format!("{what}_env {v}"),
            Source::File(p) => format!("{what}_file {}", p.display()),
        };
        match self {
            ChartAuth::Basic { password, .. } => show("password", password),
            ChartAuth::Bearer { token } => show("token", token),
            ChartAuth::DockerConfig(p) => format!("docker_config {}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(yaml: Value, oci: bool) -> Result<ChartAuth, Vec<String>> {
        let doc: AuthDoc = serde_json::from_value(yaml).map_err(|e| vec![e.to_string()])?;
        ChartAuth::parse(&doc, Path::new("/catalog"), oci)
    }

    #[test]
    fn catalog_forms() {
        let a = parse(
            json!({"basic": {"username": "u", "password_file": "creds/p"}}),
            false,
        )
        .unwrap();
        assert_eq!(
            a,
            ChartAuth::Basic {
                username: Source::Inline("u".into()),
                password: Source::File("/catalog/creds/p".into())
            }
        );
        assert_eq!(a.origin(), "password_file /catalog/creds/p");
        let e = parse(json!({"basic": {"username": "u", "password": "x"}}), false).unwrap_err();
        assert!(e[0].contains("unknown field `password`"), "{e:?}");
        let e = parse(json!({"basic": {"username": "u"}}), false).unwrap_err();
        assert!(e[0].contains("never written in the catalog"), "{e:?}");
        let e = parse(
            json!({"basic": {"username": "u", "password_env": "A", "password_file": "b"}}),
            false,
        )
        .unwrap_err();
        assert!(e[0].contains("only one"), "{e:?}");
        let e = parse(json!({"bearer": {"token_env": "T"}}), true).unwrap_err();
        assert!(e[0].contains("bearer applies to `repository`"), "{e:?}");
        let e = parse(json!({"docker_config": "c.json"}), false).unwrap_err();
        assert!(e[0].contains("docker_config applies to `oci`"), "{e:?}");
        assert!(parse(json!({"docker_config": "/x/c.json"}), true).is_ok());
    }
}
