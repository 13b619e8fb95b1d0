//! Encryption at rest. Every value the store writes is sealed with
//! AES-256-GCM; the table and key are the associated data, so a sealed value
//! copied under another key does not open.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const MAGIC: &[u8; 2] = b"s1";

/// A 256-bit key that seals and opens values. `Debug` never shows the key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

/// Why a key could not be loaded or a value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key material is not 32 bytes of base64.
    #[error("store key must be 32 bytes, base64-encoded")]
    BadKey,
    /// Reading or writing the key file failed.
    #[error("store key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Wrong key, or the value was tampered with.
    #[error("a stored value could not be decrypted (wrong store key or tampered data)")]
    Open,
}

impl Sealer {
    /// A sealer from raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::BadKey)?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// A sealer from base64 text (the env var or file format).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = B64.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    /// A fresh random key, as base64.
    pub fn generate_base64() -> String {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system RNG works");
        B64.encode(key)
    }

    /// Loads the key file, creating it (mode 0600) when absent. Returns the
    /// sealer and whether the file was created, so the caller can say so.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SealError> {
        let io = |source| SealError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = Self::generate_base64();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, text.as_bytes()).map_err(io)?;
                Ok((Self::from_base64(&text)?, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Encrypts `plain` bound to `aad`.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("the system RNG works");
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out
    }

    /// Decrypts a value sealed with the same `aad`.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < MAGIC.len() + NONCE_LEN || &sealed[..2] != MAGIC {
            return Err(SealError::Open);
        }
        let nonce: [u8; NONCE_LEN] = sealed[2..2 + NONCE_LEN].try_into().expect("length checked");
        let mut buf = sealed[2 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

/// Writes a file readable only by its owner, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_aad() {
        let s = Sealer::from_base64(&Sealer::generate_base64()).unwrap();
        let sealed = s.seal("instances/a", b"hunter2-password");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open("instances/a", &sealed).unwrap(), b"hunter2-password");
        assert!(s.open("instances/b", &sealed).is_err());
        let other = Sealer::from_base64(&Sealer::generate_base64()).unwrap();
        assert!(other.open("instances/a", &sealed).is_err());
    }

    #[test]
    fn bad_keys_are_rejected_and_debug_hides_key() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        let s = Sealer::from_base64(&Sealer::generate_base64()).unwrap();
        assert_eq!(format!("{s:?}"), "Sealer(<redacted>)");
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        let (a, created) = Sealer::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = Sealer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(b.open("x", &a.seal("x", b"v")).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
