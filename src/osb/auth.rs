//! Authentication of platforms: HTTP basic, bearer tokens and mTLS client
//! certificates, compared in constant time, each credential with its own
//! [`Trust`]. Passwords and tokens are compared as zero-padded bytes
//! ([`super::secret`]), not hashed per request; certificates are known by
//! the SHA-256 of their DER bytes, taken once per connection.

use std::fmt;
use std::sync::{Arc, RwLock};

use axum::http::{Extensions, HeaderValue};
use base64::Engine as _;
use ring::digest::{SHA256, digest};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::broker::trust::Trust;
pub(crate) use crate::broker::trust::TrustFields;

use super::error::ApiError;
use super::secret::{Padded, pad_all};

/// A SHA-256 digest.
pub(crate) type Digest = [u8; 32];

pub(crate) fn sha(bytes: &[u8]) -> Digest {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Basic credentials up to this long are decoded on the stack; longer ones
/// (no platform sends them) on the heap.
const STACK_DECODE: usize = 512;

/// A configured credential and the trust it carries.
type Entry<T> = (T, Arc<Trust>);

/// A basic-auth user: the name and password compared after decoding, and
/// the whole header value a client sends for them in the canonical form
/// (`Basic ` and the standard base64 of `name:password`), compared as is
/// first so that the usual request is checked without decoding.
#[derive(Clone)]
struct User {
    name: Padded,
    password: Padded,
    header: Padded,
    /// Whether `header` can stand for the user: a name with a colon can't
    /// be told from its password once encoded (RFC 7617 forbids it), and
    /// such a user is matched, as ever, only after decoding (never).
    header_usable: subtle::Choice,
}

/// Who may call `/v2`, each credential with its own trust. `Debug` shows
/// counts only.
#[derive(Clone, Default)]
pub struct Credentials {
    users: Vec<Entry<User>>,
    tokens: Vec<Entry<Padded>>,
    certificates: Vec<Entry<Digest>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ users: {}, tokens: {}, certificates: {} }}",
            self.users.len(),
            self.tokens.len(),
            self.certificates.len()
        )
    }
}

impl Credentials {
    /// Adds a basic-auth user with the default trust.
    pub(crate) fn add_user(&mut self, username: &str, password: &str) {
        self.add_user_with(username, password, TrustFields::default());
    }

    /// Adds a basic-auth user with its trust.
    pub(crate) fn add_user_with(&mut self, username: &str, password: &str, t: TrustFields) {
        let trust = t.into_trust(username);
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let user = User {
            name: Padded::new(username.as_bytes()),
            password: Padded::new(password.as_bytes()),
            header: Padded::new(format!("Basic {encoded}").as_bytes()),
            header_usable: subtle::Choice::from(u8::from(!username.contains(':'))),
        };
        self.users.push((user, trust));
        pad_all(&mut self.users, |e| &mut e.0.name);
        pad_all(&mut self.users, |e| &mut e.0.password);
        pad_all(&mut self.users, |e| &mut e.0.header);
    }

    /// Adds a bearer token with the default trust.
    #[cfg(test)]
    pub(crate) fn add_token(&mut self, token: &str) {
        self.add_token_with(token, "bearer token", TrustFields::default());
    }

    /// Adds a bearer token with its trust; `name` names it in logs.
    pub(crate) fn add_token_with(&mut self, token: &str, name: &str, t: TrustFields) {
        self.tokens
            .push((Padded::new(token.as_bytes()), t.into_trust(name)));
        pad_all(&mut self.tokens, |e| &mut e.0);
    }

    /// Adds a client certificate (mTLS) by the SHA-256 of its DER bytes.
    pub(crate) fn add_certificate(&mut self, sha256: Digest, name: &str, t: TrustFields) {
        self.certificates.push((sha256, t.into_trust(name)));
    }

    /// Replaces the trust of every credential named `name` with `f` of it;
    /// whether there was one.
    pub(crate) fn retrust(&mut self, name: &str, f: impl Fn(&Trust) -> Trust) -> bool {
        let mut found = false;
        let users = self.users.iter_mut().map(|(_, t)| t);
        let tokens = self.tokens.iter_mut().map(|(_, t)| t);
        let certificates = self.certificates.iter_mut().map(|(_, t)| t);
        for t in users.chain(tokens).chain(certificates) {
            if t.name == name {
                *t = Arc::new(f(t));
                found = true;
            }
        }
        found
    }

    /// Whether any credential is configured.
    pub(crate) fn is_empty(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty() && self.certificates.is_empty()
    }

    /// Whether bearer tokens are accepted.
    pub(crate) fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The trust of the credential an `Authorization` header value carries,
    /// or, without one, of the client certificate the TLS handshake
    /// verified. A header that matches nothing is refused even next to a
    /// known certificate. Every configured credential of the kind is
    /// compared, matched or not, so timing reveals nothing.
    pub(crate) fn check(
        &self,
        authorization: Option<&[u8]>,
        certificate: Option<&Digest>,
    ) -> Option<Arc<Trust>> {
        let Some(value) = authorization else {
            return certificate.and_then(|c| pick(&self.certificates, |d| d.ct_eq(c)));
        };
        // The form every client sends, compared whole: no decoding, no
        // splitting. Any other spelling (`basic`, extra spaces) goes the
        // long way below, so a miss here costs a wrong credential one more
        // comparison per user, in time that depends on lengths only.
        let exact = pick(&self.users, |u| u.header.ct_eq(value) & u.header_usable);
        if exact.is_some() {
            return exact;
        }
        // Header values are visible ASCII (RFC 9110); anything else matches
        // no credential.
        let value = std::str::from_utf8(value)
            .ok()
            .filter(|v| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))?;
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let encoded = rest.trim();
            let mut stack = [0u8; STACK_DECODE];
            let heap;
            let decoded =
                match base64::engine::general_purpose::STANDARD.decode_slice(encoded, &mut stack) {
                    Ok(n) => &stack[..n],
                    Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
                        heap = base64::engine::general_purpose::STANDARD
                            .decode(encoded)
                            .ok()?;
                        &heap[..]
                    }
                    Err(_) => return None,
                };
            let colon = decoded.iter().position(|b| *b == b':')?;
            let (u, p) = (&decoded[..colon], &decoded[colon + 1..]);
            pick(&self.users, |cu| cu.name.ct_eq(u) & cu.password.ct_eq(p))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let t = rest.trim().as_bytes();
            pick(&self.tokens, |ct| ct.ct_eq(t))
        } else {
            None
        }
    }
}

/// The trust of the entry `matches` selects, comparing every entry.
fn pick<T>(entries: &[Entry<T>], matches: impl Fn(&T) -> subtle::Choice) -> Option<Arc<Trust>> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, (d, _)) in entries.iter().enumerate() {
        let m = matches(d);
        index = u64::conditional_select(&index, &(i as u64), m & !found);
        found |= m;
    }
    bool::from(found).then(|| entries[index as usize].1.clone())
}

/// The credentials in force. A reload replaces them whole, so a request is
/// checked against either the old set or the new one, never a mix.
#[derive(Debug, Default)]
pub struct LiveCredentials(RwLock<Arc<Credentials>>);

impl LiveCredentials {
    /// Starts with `c`.
    pub(crate) fn new(c: Credentials) -> Self {
        LiveCredentials(RwLock::new(Arc::new(c)))
    }

    /// The set in force now.
    pub(crate) fn current(&self) -> Arc<Credentials> {
        self.0.read().expect("credentials lock").clone()
    }

    /// Puts `c` in force for every later request.
    pub(crate) fn replace(&self, c: Credentials) {
        *self.0.write().expect("credentials lock") = Arc::new(c);
    }
}

/// The SHA-256 of the client certificate the TLS handshake verified, as a
/// request extension (set by the server for mTLS connections).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerCertificate(pub Digest);

/// The trust of the credential that authenticated a request, as a request
/// extension.
#[derive(Clone, Debug)]
pub(crate) struct Caller(pub Arc<Trust>);

/// The trust of the credential a request carries: its `Authorization`
/// header, or the client certificate of its connection (an extension of
/// the request), or 401.
pub fn authenticate(
    live: &LiveCredentials,
    authorization: Option<&HeaderValue>,
    extensions: &Extensions,
) -> Result<Arc<Trust>, ApiError> {
    let creds = live.current();
    let cert = extensions.get::<PeerCertificate>().map(|c| &c.0);
    creds
        .check(authorization.map(HeaderValue::as_bytes), cert)
        .ok_or(ApiError::Unauthorized {
            bearer: creds.has_tokens(),
        })
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
        let ok = |h: Option<&str>| c.check(h.map(str::as_bytes), None).is_some();
        assert!(ok(Some(&basic("admin", "pa:ss"))));
        assert!(!ok(Some(&basic("admin", "pa"))));
        assert!(!ok(Some(&basic("admi", "pa:ss"))));
        assert!(ok(Some("Bearer tok")));
        assert!(ok(Some("bearer tok")));
        assert!(!ok(Some("Bearer to")));
        assert!(!ok(Some("Digest x")));
        assert!(!ok(Some("Basic !!!")));
        assert!(!ok(None));
        assert_eq!(
            format!("{c:?}"),
            "Credentials { users: 1, tokens: 1, certificates: 0 }"
        );
    }

    #[test]
    fn the_canonical_header_and_every_other_spelling_match_the_same_users() {
        let mut c = Credentials::default();
        c.add_user("alice", "one");
        let long = "a much longer password than alice's, past one block of padding";
        c.add_user("bob", long);
        c.add_user("odd:name", "pw");
        let who = |h: &str| c.check(Some(h.as_bytes()), None).map(|t| t.name.clone());
        let canonical = basic("alice", "one");
        assert_eq!(who(&canonical).as_deref(), Some("alice"));
        assert_eq!(who(&basic("bob", long)).as_deref(), Some("bob"));
        // Other spellings a client may send go the decoding way.
        let encoded = canonical.strip_prefix("Basic ").unwrap();
        assert_eq!(who(&format!("basic {encoded}")).as_deref(), Some("alice"));
        assert_eq!(
            who(&format!("  Basic   {encoded} ")).as_deref(),
            Some("alice")
        );
        // One user's name with another's password, a prefix, a longer
        // value: no match either way.
        assert_eq!(who(&basic("alice", long)), None);
        assert_eq!(who(&canonical[..canonical.len() - 1]), None);
        assert_eq!(who(&format!("{canonical}=")), None);
        assert_eq!(who(""), None);
        // A name with a colon never authenticates (RFC 7617), in either form.
        assert_eq!(who(&basic("odd:name", "pw")), None);
        // A header that isn't visible ASCII matches nothing, and is not
        // taken for an absent one next to a known certificate.
        c.add_certificate([7; 32], "ci", TrustFields::default());
        assert!(
            c.check(Some("Basic \u{e9}".as_bytes()), Some(&[7; 32]))
                .is_none()
        );
        assert!(c.check(Some(b"Basic \x01"), Some(&[7; 32])).is_none());
    }

    #[test]
    fn each_credential_carries_its_own_trust() {
        use crate::broker::trust::IdentityRule;
        let mut c = Credentials::default();
        c.add_user("cf", "one");
        let platform = TrustFields {
            identity: Some(IdentityRule::Platform),
            namespaces: Some(vec!["shop".into()]),
            ..TrustFields::default()
        };
        c.add_user_with("crossplane", "two", platform.clone());
        c.add_certificate([7; 32], "ci", platform);
        let cf = c.check(Some(basic("cf", "one").as_bytes()), None).unwrap();
        assert_eq!(cf.identity, IdentityRule::Required);
        assert_eq!(cf.namespaces, None);
        let xp = c
            .check(Some(basic("crossplane", "two").as_bytes()), None)
            .unwrap();
        assert_eq!(xp.identity, IdentityRule::Platform);
        assert_eq!(xp.name, "crossplane");
        // A password of another user is not a credential.
        assert!(
            c.check(Some(basic("crossplane", "one").as_bytes()), None)
                .is_none()
        );
        // A certificate alone authenticates; a wrong header next to it does not.
        assert_eq!(c.check(None, Some(&[7; 32])).unwrap().name, "ci");
        assert!(c.check(None, Some(&[8; 32])).is_none());
        assert!(c.check(Some(b"Bearer x"), Some(&[7; 32])).is_none());
    }
}
