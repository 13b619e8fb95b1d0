//! Authentication of platforms: HTTP basic and bearer tokens, compared in
//! constant time. Only digests of the credentials are kept in memory.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ring::digest::{SHA256, digest};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;

type Digest = [u8; 32];

fn sha(bytes: &[u8]) -> Digest {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Who may call `/v2`. `Debug` shows counts only.
#[derive(Clone, Default)]
pub struct Credentials {
    users: Vec<(Digest, Digest)>,
    tokens: Vec<Digest>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ users: {}, tokens: {} }}",
            self.users.len(),
            self.tokens.len()
        )
    }
}

/// The credentials file (`--credentials-file`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    /// Basic-auth users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Bearer tokens.
    #[serde(default)]
    pub tokens: Vec<String>,
}

/// One basic-auth user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl Credentials {
    /// Adds a basic-auth user.
    pub fn add_user(&mut self, username: &str, password: &str) {
        self.users
            .push((sha(username.as_bytes()), sha(password.as_bytes())));
    }

    /// Adds a bearer token.
    pub fn add_token(&mut self, token: &str) {
        self.tokens.push(sha(token.as_bytes()));
    }

    /// Adds everything in a credentials file (YAML).
    pub fn add_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading credentials file {}: {e}", path.display()))?;
        let file: CredentialsFile = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing credentials file {}: {e}", path.display()))?;
        for u in file.users {
            anyhow::ensure!(
                !u.username.is_empty() && !u.password.is_empty(),
                "credentials file {}: empty username or password",
                path.display()
            );
            self.add_user(&u.username, &u.password);
        }
        for t in file.tokens {
            anyhow::ensure!(
                !t.is_empty(),
                "credentials file {}: empty token",
                path.display()
            );
            self.add_token(&t);
        }
        Ok(())
    }

    /// Whether any credential is configured.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty()
    }

    /// Whether bearer tokens are accepted.
    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Checks an `Authorization` header value. Every configured credential is
    /// compared, matched or not, so timing reveals nothing.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
                return false;
            };
            let Some(colon) = decoded.iter().position(|b| *b == b':') else {
                return false;
            };
            let (u, p) = (sha(&decoded[..colon]), sha(&decoded[colon + 1..]));
            let mut ok = subtle::Choice::from(0);
            for (cu, cp) in &self.users {
                ok |= cu.ct_eq(&u) & cp.ct_eq(&p);
            }
            ok.into()
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let t = sha(rest.trim().as_bytes());
            let mut ok = subtle::Choice::from(0);
            for ct in &self.tokens {
                ok |= ct.ct_eq(&t);
            }
            ok.into()
        } else {
            false
        }
    }
}

/// The credentials in force. A reload replaces them whole, so a request is
/// checked against either the old set or the new one, never a mix.
#[derive(Debug, Default)]
pub struct LiveCredentials(RwLock<Arc<Credentials>>);

impl LiveCredentials {
    /// Starts with `c`.
    pub fn new(c: Credentials) -> Self {
        LiveCredentials(RwLock::new(Arc::new(c)))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<Credentials> {
        self.0.read().expect("credentials lock").clone()
    }

    /// Puts `c` in force for every later request.
    pub fn replace(&self, c: Credentials) {
        *self.0.write().expect("credentials lock") = Arc::new(c);
    }
}

/// Middleware: 401 unless the request carries valid credentials.
pub async fn require(
    State(live): State<Arc<LiveCredentials>>,
    req: Request,
    next: Next,
) -> Response {
    let creds = live.current();
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if creds.check(header) {
        next.run(req).await
    } else {
        ApiError::Unauthorized {
            bearer: creds.has_tokens(),
        }
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn basic_and_bearer() {
        let mut c = Credentials::default();
        c.add_user("admin", "pa:ss");
        c.add_token("tok");
        assert!(c.check(Some(&basic("admin", "pa:ss"))));
        assert!(!c.check(Some(&basic("admin", "pa"))));
        assert!(!c.check(Some(&basic("admi", "pa:ss"))));
        assert!(c.check(Some("Bearer tok")));
        assert!(c.check(Some("bearer tok")));
        assert!(!c.check(Some("Bearer to")));
        assert!(!c.check(Some("Digest x")));
        assert!(!c.check(Some("Basic !!!")));
        assert!(!c.check(None));
        assert_eq!(format!("{c:?}"), "Credentials { users: 1, tokens: 1 }");
    }
}
