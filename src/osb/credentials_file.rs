//! The credentials file (`--credentials-file`, secret: who the platforms
//! are) and the platforms file (`--platforms-file`, not secret: what each
//! platform credential is trusted with, so a chart can render it into a
//! ConfigMap while the passwords stay in a Secret).
//!
//! ```yaml
//! users:                                  # HTTP basic
//!   - username: cf
//!     password: ...
//!     identity: required                  # default: each request carries a checked user
//!     namespaces: [team-a, "shop-*"]      # default: any the operator allows
//!   - username: crossplane
//!     password: ...
//!     identity: platform                  # the platform is its own authorizer
//!     namespaces: [shop]
//!     deprovision_poll: gone              # 410 once a deprovision completed
//! tokens:                                 # HTTP bearer
//!   - plain-token                         # default trust
//!   - {token: ..., name: ci, namespaces: [ci]}
//! certificates:                           # mTLS client certificates
//!   - {sha256: "AB:CD:...", name: korifi, identity: required}
//! ```
//!
//! The platforms file names credentials by `name` (a user's name is its
//! `username`) and sets the trust fields it gives:
//!
//! ```yaml
//! platforms:
//!   - {name: crossplane, identity: platform, namespaces: [shop], deprovision_poll: gone}
//! ```

use std::path::Path;

use serde::Deserialize;

use super::auth::{Credentials, Digest};
use crate::broker::trust::TrustFields;

/// The credentials file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialsFile {
    /// Basic-auth users.
    #[serde(default)]
    pub(crate) users: Vec<User>,
    /// Bearer tokens.
    #[serde(default)]
    pub(crate) tokens: Vec<Token>,
    /// Client certificates.
    #[serde(default)]
    pub(crate) certificates: Vec<Certificate>,
}

/// One basic-auth user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    /// User name.
    pub(crate) username: String,
    /// Password.
    pub(crate) password: String,
    /// Its trust.
    #[serde(flatten)]
    pub(crate) trust: TrustFields,
}

/// A bearer token: the token alone, or with a name and trust.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Token {
    /// Default trust.
    Plain(String),
    /// Named, with its trust.
    Full(NamedToken),
}

/// A bearer token with a name and trust.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamedToken {
    /// The token.
    pub(crate) token: String,
    /// Its name in logs and in the platforms file.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Its trust.
    #[serde(flatten)]
    pub(crate) trust: TrustFields,
}

/// A client certificate, by the SHA-256 of its DER bytes (hex, colons
/// allowed: `openssl x509 -noout -fingerprint -sha256`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Certificate {
    /// The fingerprint.
    pub(crate) sha256: String,
    /// Its name in logs and in the platforms file.
    pub(crate) name: String,
    /// Its trust.
    #[serde(flatten)]
    pub(crate) trust: TrustFields,
}

impl CredentialsFile {
    /// Adds every credential to `c`.
    pub(crate) fn add_to(self, c: &mut Credentials) -> anyhow::Result<()> {
        for u in self.users {
            anyhow::ensure!(
                !u.username.is_empty() && !u.password.is_empty(),
                "empty username or password"
            );
            u.trust.check()?;
            c.add_user_with(&u.username, &u.password, u.trust);
        }
        for t in self.tokens {
            let (token, name, trust) = match t {
                Token::Plain(t) => (t, None, TrustFields::default()),
                Token::Full(t) => (t.token, t.name, t.trust),
            };
            anyhow::ensure!(!token.is_empty(), "empty token");
            trust.check()?;
            c.add_token_with(&token, name.as_deref().unwrap_or("bearer token"), trust);
        }
        for cert in self.certificates {
            cert.trust.check()?;
            let digest = fingerprint(&cert.sha256).ok_or_else(|| {
                anyhow::anyhow!("certificate {:?}: sha256 is not 32 bytes of hex", cert.name)
            })?;
            c.add_certificate(digest, &cert.name, cert.trust);
        }
        Ok(())
    }
}

fn fingerprint(text: &str) -> Option<Digest> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The platforms file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformsFile {
    #[serde(default)]
    platforms: Vec<Platform>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    /// The credential's name (a user's `username`).
    #[serde(alias = "username")]
    name: String,
    #[serde(flatten)]
    trust: TrustFields,
}

/// Sets the trust the platforms file at `path` gives each credential it
/// names. A name no credential has is logged, not fatal (a chart may
/// render the entry before the operator adds the credential): the
/// credential a typo misses keeps the default trust, the strictest.
pub(crate) fn apply_platforms_file(c: &mut Credentials, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading platforms file {}: {e}", path.display()))?;
    let file: PlatformsFile = serde_saphyr::from_str(&text)
        .map_err(|e| anyhow::anyhow!("parsing platforms file {}: {e}", path.display()))?;
    for p in file.platforms {
        p.trust
            .check()
            .map_err(|e| anyhow::anyhow!("platforms file {}: {}: {e}", path.display(), p.name))?;
        if !c.retrust(&p.name, |t| p.trust.over(t)) {
            tracing::warn!(platforms_file = %path.display(), name = %p.name,
                "the platforms file names a credential the broker does not have");
        }
    }
    Ok(())
}

impl Credentials {
    /// Adds everything in a credentials file (YAML).
    pub(crate) fn add_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading credentials file {}: {e}", path.display()))?;
        let file: CredentialsFile = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing credentials file {}: {e}", path.display()))?;
        file.add_to(self)
            .map_err(|e| anyhow::anyhow!("credentials file {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_with_or_without_colons() {
        let hex = "ab".repeat(32);
        assert_eq!(fingerprint(&hex), Some([0xab; 32]));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(fingerprint("abcd"), None);
        assert_eq!(fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn namespaces_must_be_names_or_prefixes() {
        let t = |ns: &[&str]| TrustFields {
            namespaces: Some(ns.iter().map(|s| s.to_string()).collect()),
            ..TrustFields::default()
        };
        assert!(t(&["shop", "team-*"]).check().is_ok());
        assert!(t(&["Shop"]).check().is_err());
        assert!(t(&["a*b"]).check().is_err());
        assert!(t(&["*"]).check().is_ok());
    }

    #[test]
    fn a_misspelt_trust_field_is_refused() {
        let bad = "users:\n  - {username: u, password: p, identiy: platform}\n";
        assert!(serde_saphyr::from_str::<CredentialsFile>(bad).is_err());
        let good = "users:\n  - {username: u, password: p, identity: platform, namespaces: [a]}\ntokens:\n  - t1\n  - {token: t2, name: ci, deprovision_poll: gone}\n";
        let f: CredentialsFile = serde_saphyr::from_str(good).unwrap();
        let mut c = Credentials::default();
        f.add_to(&mut c).unwrap();
        let bad_token = "tokens:\n  - {token: t2, nmae: ci}\n";
        assert!(serde_saphyr::from_str::<CredentialsFile>(bad_token).is_err());
    }
}
