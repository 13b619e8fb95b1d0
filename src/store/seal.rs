//! Encryption at rest. Every value the store writes is sealed with
//! AES-256-GCM.
//!
//! # Format 2 (`s2`, written since 0.2)
//! `"s2" | key id (8 bytes) | nonce (12) | ciphertext | tag (16)`. The
//! associated data is `"chartbroker.io/sealed/v2\0" | key id | "\0" |
//! record`, where the record is the store's `"<table>/<key>"`. So a sealed
//! value opens only as format 2, under the key id it names and as the record
//! it was written for: swapping two records' bytes, moving one under another
//! key id, or rewriting the format bytes all fail to open.
//!
//! The key id is a fingerprint of the key (the first 8 bytes of a SHA-256
//! over a domain label and the key), so a replica that meets a record sealed
//! with a key it was not given can say which key the record needs instead of
//! "does not decrypt". It reveals nothing usable about the key.
//!
//! # Format 3 (`s3`, the embedded store's records since 0.3)
//! Format 2's layout and associated data (label `"chartbroker.io/sealed/v3\0"`),
//! sealing the record in its compact form ([`super::compact`]: DEFLATE
//! against a fixed dictionary) rather than as is: about a third of the
//! bytes. Compressing before encrypting lets a value's length depend on
//! how much of it repeats; see the README's Security section for what that
//! means for someone who can both read the file and choose parameters.
//!
//! # Format 1 (`s1`, the first release)
//! `"s1" | nonce | ciphertext | tag` with the record alone as associated
//! data. Still opened (with every key the sealer holds, since it names
//! none); every write seals format 2, so records migrate as they change.
//!
//! # Rotation
//! A sealer has one current key (sealing) and any number of old keys
//! (opening only). Limit: a stale sealed copy of the *same* record, with its
//! version, still opens — there is no trusted counter outside the storage an
//! attacker with write access to it controls (README, "Security").

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use super::compact;

const LEGACY_MAGIC: &[u8; 2] = b"s1";
const MAGIC: &[u8; 2] = b"s2";
const AAD_LABEL: &[u8] = b"chartbroker.io/sealed/v2\0";
const COMPACT_MAGIC: &[u8; 2] = b"s3";
const COMPACT_AAD_LABEL: &[u8] = b"chartbroker.io/sealed/v3\0";
const KEY_ID_LABEL: &[u8] = b"chartbroker.io/store-key-id\0";
const KEY_ID_LEN: usize = 8;

type KeyId = [u8; KEY_ID_LEN];

struct Key {
    id: KeyId,
    key: LessSafeKey,
}

impl Key {
    fn new(bytes: &[u8]) -> Result<Key, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::BadKey)?;
        let mut input = KEY_ID_LABEL.to_vec();
        input.extend_from_slice(bytes);
        let id = digest(&SHA256, &input).as_ref()[..KEY_ID_LEN]
            .try_into()
            .expect("a SHA-256 digest is longer than a key id");
        Ok(Key {
            id,
            key: LessSafeKey::new(unbound),
        })
    }

    fn open(&self, nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut buf = sealed.to_vec();
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .ok()
            .map(|p| p.to_vec())
    }
}

fn hex(id: &KeyId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn aad_with(label: &[u8], id: &KeyId, record: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + KEY_ID_LEN + 1 + record.len());
    aad.extend_from_slice(label);
    aad.extend_from_slice(id);
    aad.push(0);
    aad.extend_from_slice(record.as_bytes());
    aad
}

/// A current 256-bit key that seals and opens values, plus old keys that
/// only open them. `Debug` shows key ids, never keys.
pub struct Sealer {
    current: Key,
    old: Vec<Key>,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &hex(&self.current.id))
            .field(
                "old_key_ids",
                &self.old.iter().map(|k| hex(&k.id)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a key could not be loaded or a value could not be opened. No variant
/// carries key material or plaintext.
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
    /// The value names a key this sealer does not hold: it was written by a
    /// replica given another store key.
    #[error(
        "sealed with store key {key_id}, which this broker was not given (every replica must share one store key; after a rotation keep the old key with --store-old-key-file)"
    )]
    UnknownKey {
        /// The fingerprint the value names.
        key_id: String,
    },
    /// Not a format this version writes or reads: a newer broker wrote it or
    /// its format bytes were altered.
    #[error(
        "sealed in an unknown format (neither s1, s2 nor s3): written by a newer chartbroker, or tampered with"
    )]
    Format,
    /// The key is known but the value does not open: tampered with, truncated,
    /// or copied from another record.
    #[error("a stored value failed authentication (tampered with, or copied from another record)")]
    Open,
    /// A first-release (`s1`) value that opens with none of the keys held;
    /// that format names no key, so wrong key and tampering look alike.
    #[error(
        "a stored value in the first release's format (s1) opens with no store key this broker holds (wrong store key, or tampered with)"
    )]
    LegacyOpen,
}

impl SealError {
    /// A short label for metrics: `unknown_key`, `format` or `tampered`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SealError::UnknownKey { .. } => "unknown_key",
            SealError::Format => "format",
            SealError::LegacyOpen => "legacy_key",
            _ => "tampered",
        }
    }
}

impl Sealer {
    /// A sealer from raw key bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        Ok(Sealer {
            current: Key::new(bytes)?,
            old: Vec::new(),
            rng: SystemRandom::new(),
        })
    }

    /// A sealer from base64 text (the env var or file format).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = B64.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    /// Adds an old key (base64), used only to open values sealed with it.
    pub fn with_old_base64(mut self, text: &str) -> Result<Self, SealError> {
        let bytes = B64.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let key = Key::new(&bytes)?;
        if key.id != self.current.id && !self.old.iter().any(|k| k.id == key.id) {
            self.old.push(key);
        }
        Ok(self)
    }

    /// Loads a key file that must exist.
    pub(crate) fn load(path: &Path) -> Result<Self, SealError> {
        Self::from_base64(&read_key_file(path)?)
    }

    /// The current key's fingerprint, as 16 hex digits (safe to log).
    pub fn key_id(&self) -> String {
        hex(&self.current.id)
    }

    /// Whether `sealed` is format 2 or 3 under the current key (not an old
    /// key, not the first release's format): false means a rewrite would
    /// migrate it.
    pub(crate) fn sealed_with_current(&self, sealed: &[u8]) -> bool {
        matches!(sealed.get(..2), Some(m) if m == MAGIC || m == COMPACT_MAGIC)
            && sealed.get(2..2 + KEY_ID_LEN) == Some(self.current.id.as_slice())
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
                create_dirs(folder_of(path)).map_err(io)?;
                write_private(path, text.as_bytes()).map_err(io)?;
                Ok((Self::from_base64(&text)?, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Encrypts `plain` as `record`, in format 2 with the current key.
    pub fn seal(&self, record: &str, plain: &[u8]) -> Vec<u8> {
        self.seal_as(MAGIC, AAD_LABEL, record, plain.to_vec())
    }

    /// Encrypts `plain` as `record` in its compact form (format 3) with the
    /// current key: what the embedded store writes.
    pub fn seal_compact(&self, record: &str, plain: &[u8]) -> Vec<u8> {
        let packed = compact::pack(compact::DICTIONARY_S3, plain);
        self.seal_as(COMPACT_MAGIC, COMPACT_AAD_LABEL, record, packed)
    }

    fn seal_as(&self, magic: &[u8; 2], label: &[u8], record: &str, mut buf: Vec<u8>) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("the system RNG works");
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad_with(label, &self.current.id, record).as_slice()),
                &mut buf,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(magic.len() + KEY_ID_LEN + NONCE_LEN + buf.len());
        out.extend_from_slice(magic);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out
    }

    /// Decrypts a value sealed as `record` (format 3 or 2, or format 1 from
    /// the first release).
    pub fn open(&self, record: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        match sealed.get(..2) {
            Some(m) if m == COMPACT_MAGIC => {
                let packed = self.open_keyed(COMPACT_AAD_LABEL, record, &sealed[2..])?;
                compact::unpack(compact::DICTIONARY_S3, &packed).ok_or(SealError::Open)
            }
            Some(m) if m == MAGIC => self.open_keyed(AAD_LABEL, record, &sealed[2..]),
            Some(m) if m == LEGACY_MAGIC => {
                let body = &sealed[2..];
                if body.len() < NONCE_LEN {
                    return Err(SealError::Open);
                }
                std::iter::once(&self.current)
                    .chain(&self.old)
                    .find_map(|k| k.open(&body[..NONCE_LEN], record.as_bytes(), &body[NONCE_LEN..]))
                    .ok_or(SealError::LegacyOpen)
            }
            _ => Err(SealError::Format),
        }
    }

    /// Opens `key id | nonce | ciphertext | tag` (formats 2 and 3).
    fn open_keyed(&self, label: &[u8], record: &str, rest: &[u8]) -> Result<Vec<u8>, SealError> {
        if rest.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(SealError::Open);
        }
        let id: KeyId = rest[..KEY_ID_LEN].try_into().expect("length checked");
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey { key_id: hex(&id) })?;
        let body = &rest[KEY_ID_LEN..];
        key.open(
            &body[..NONCE_LEN],
            &aad_with(label, &id, record),
            &body[NONCE_LEN..],
        )
        .ok_or(SealError::Open)
    }
}

/// Reads a key file that must exist (no key is ever created for it).
fn read_key_file(path: &Path) -> Result<String, SealError> {
    std::fs::read_to_string(path).map_err(|source| SealError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes a file readable only by its owner (mode 0600), atomically: through
/// a temporary file and a rename. `fdatasync` rather than `fsync`: the data
/// and the size that reads it reach the disk; timestamps need no journal
/// commit of their own. The folder is synced after the rename: the new name
/// is an entry of the folder, and without that a power loss can leave the
/// old file (or none) under the name. A file that already holds exactly
/// `bytes` is left as it is, and only its folder synced (a write that
/// stopped between its rename and that sync is completed). Store keys and
/// the render engine's files.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let same_size = std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64);
    if same_size && std::fs::read(path).is_ok_and(|held| held == bytes) {
        return sync_dir(folder_of(path));
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(folder_of(path))
}

/// The folder a path names an entry of (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the entries of `dir` (names created, renamed or removed in it)
/// durable. `fdatasync`: the entries are the folder's data; its timestamps
/// need no write of their own.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    SYNCED.with_borrow_mut(|s| s.push(dir.to_path_buf()));
    std::fs::File::open(dir)?.sync_data()
}

#[cfg(test)]
thread_local! {
    /// The folders this thread synced, in order.
    static SYNCED: std::cell::RefCell<Vec<std::path::PathBuf>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The folders this thread synced since the last call, in order.
#[cfg(test)]
pub(crate) fn synced() -> Vec<std::path::PathBuf> {
    SYNCED.with_borrow_mut(std::mem::take)
}

/// Creates `dir` and whichever of its parents are missing, syncing each new
/// name into its parent, so a folder the broker wrote a file into is still
/// there after a power loss.
pub(crate) fn create_dirs(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![dir];
    while let Some(parent) = missing.last().and_then(|d| d.parent())
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        missing.push(parent);
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Made by another writer just now, which may not have synced it
            // yet: synced here too before this writer relies on it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
        sync_dir(folder_of(d))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64(&Sealer::generate_base64()).unwrap()
    }

    /// `sealed` (of record `instances/a`) with any byte after the format
    /// flipped, or cut short anywhere, does not open.
    fn every_change_fails(s: &Sealer, sealed: &[u8]) {
        for i in 2..sealed.len() {
            let mut t = sealed.to_vec();
            t[i] ^= 1;
            assert!(s.open("instances/a", &t).is_err(), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(s.open("instances/a", &sealed[..len]).is_err(), "{len}");
        }
    }

    /// Refused as tampered with (or bound to another record).
    fn tampered(opened: Result<Vec<u8>, SealError>) -> bool {
        matches!(opened, Err(SealError::Open))
    }

    /// What the first release wrote: `"s1" | nonce | ciphertext | tag`,
    /// the record alone as associated data.
    fn seal_v1(key_b64: &str, record: &str, plain: &[u8]) -> Vec<u8> {
        let bytes = B64.decode(key_b64).unwrap();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).unwrap());
        let nonce = [7u8; NONCE_LEN];
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(record.as_bytes()),
            &mut buf,
        )
        .unwrap();
        [LEGACY_MAGIC.as_slice(), &nonce, &buf].concat()
    }

    #[test]
    fn round_trip_and_binding_to_the_record() {
        let s = sealer();
        let sealed = s.seal("instances/a", b"hunter2-password");
        assert_eq!(&sealed[..2], b"s2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open("instances/a", &sealed).unwrap(), b"hunter2-password");
        assert!(tampered(s.open("instances/b", &sealed)));
        assert!(tampered(s.open("bindings/a", &sealed)));
    }

    #[test]
    fn compact_values_round_trip_stay_bound_and_are_authenticated() {
        let s = sealer();
        let plain = br#"{"id":"a","state":"ready","secrets":{"password":"hunter2-password"}}"#;
        let sealed = s.seal_compact("instances/a", plain);
        assert_eq!(&sealed[..2], b"s3");
        assert!(s.sealed_with_current(&sealed));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open("instances/a", &sealed).unwrap(), plain);
        assert!(tampered(s.open("instances/b", &sealed)));
        // Relabelled as format 2 (or 2 as 3), a value does not open: the
        // format is in the associated data.
        let mut relabelled = sealed.clone();
        relabelled[1] = b'2';
        assert!(tampered(s.open("instances/a", &relabelled)));
        let mut v2 = s.seal("instances/a", plain);
        v2[1] = b'3';
        assert!(tampered(s.open("instances/a", &v2)));
        every_change_fails(&s, &sealed);
        // Under another key it names that key, as format 2 does.
        assert!(matches!(
            sealer().open("instances/a", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn format_2_values_still_open_beside_format_3() {
        let s = sealer();
        let v2 = s.seal("instances/a", b"written by 0.2");
        assert_eq!(&v2[..2], b"s2");
        assert_eq!(s.open("instances/a", &v2).unwrap(), b"written by 0.2");
    }

    #[test]
    fn a_value_sealed_with_another_key_names_that_key() {
        let (a, b) = (sealer(), sealer());
        let sealed = a.seal("instances/a", b"v");
        match b.open("instances/a", &sealed) {
            Err(e @ SealError::UnknownKey { .. }) => {
                assert!(e.to_string().contains(&a.key_id()), "{e}");
                assert_eq!(e.kind(), "unknown_key");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rewriting_the_key_id_to_one_held_does_not_open() {
        // Moving a value under another key id the reader holds: the id is in
        // the associated data, so it fails as tampering.
        let old = Sealer::generate_base64();
        let (a, b) = (sealer(), sealer().with_old_base64(&old).unwrap());
        let mut sealed = a.seal("instances/a", b"v");
        let held = Sealer::from_base64(&old).unwrap().current.id;
        sealed[2..2 + KEY_ID_LEN].copy_from_slice(&held);
        assert!(tampered(b.open("instances/a", &sealed)));
    }

    #[test]
    fn the_format_bytes_are_authenticated() {
        let s = sealer();
        let sealed = s.seal("instances/a", b"v");
        for magic in [*b"s1", *b"s3", *b"\0\0"] {
            let mut t = sealed.clone();
            t[..2].copy_from_slice(&magic);
            assert!(s.open("instances/a", &t).is_err(), "{magic:?}");
        }
        let mut t = sealed.clone();
        t[1] = b'9';
        assert!(matches!(s.open("instances/a", &t), Err(SealError::Format)));
        // Any flipped byte after the format bytes fails too.
        every_change_fails(&s, &sealed);
    }

    #[test]
    fn first_release_values_still_open_and_stay_bound_to_their_record() {
        let key = Sealer::generate_base64();
        let s = Sealer::from_base64(&key).unwrap();
        let v1 = seal_v1(&key, "instances/a", b"old-format");
        assert_eq!(s.open("instances/a", &v1).unwrap(), b"old-format");
        assert!(matches!(
            s.open("instances/b", &v1),
            Err(SealError::LegacyOpen)
        ));
        // ...also after a rotation, through the old key.
        let rotated = sealer().with_old_base64(&key).unwrap();
        assert_eq!(rotated.open("instances/a", &v1).unwrap(), b"old-format");
        assert!(matches!(
            sealer().open("instances/a", &v1),
            Err(SealError::LegacyOpen)
        ));
        // Relabelled as format 2, a format 1 value does not open.
        let mut relabelled = v1.clone();
        relabelled[..2].copy_from_slice(MAGIC);
        assert!(s.open("instances/a", &relabelled).is_err());
    }

    #[test]
    fn rotation_reads_old_keys_and_writes_the_new_one() {
        let old_b64 = Sealer::generate_base64();
        let old = Sealer::from_base64(&old_b64).unwrap();
        let before = old.seal("instances/a", b"before");
        let new = sealer().with_old_base64(&old_b64).unwrap();
        assert_eq!(new.open("instances/a", &before).unwrap(), b"before");
        let after = new.seal("instances/a", b"after");
        assert_eq!(&after[2..2 + KEY_ID_LEN], &new.current.id);
        // The old key alone cannot read what the new one wrote.
        assert!(matches!(
            old.open("instances/a", &after),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn bad_keys_are_rejected_and_debug_hides_keys() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        assert!(sealer().with_old_base64("not base64!").is_err());
        let key = Sealer::generate_base64();
        let old = Sealer::generate_base64();
        let s = Sealer::from_base64(&key)
            .unwrap()
            .with_old_base64(&old)
            .unwrap();
        let debug = format!("{s:?}");
        assert!(debug.contains(&s.key_id()), "{debug}");
        for k in [&key, &old] {
            assert!(!debug.contains(k.as_str()), "{debug}");
            let raw = B64.decode(k).unwrap();
            assert!(!debug.contains(&format!("{:?}", &raw[..4])), "{debug}");
        }
        assert_eq!(s.key_id().len(), 16);
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        assert!(Sealer::load(&path).is_err(), "load never creates");
        assert!(!path.exists());
        let (a, created) = Sealer::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = Sealer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(b.open("x", &a.seal("x", b"v")).unwrap(), b"v");
        assert_eq!(Sealer::load(&path).unwrap().key_id(), a.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    use super::synced;

    #[test]
    fn new_names_are_synced_into_their_folders() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a").join("b").join("c");
        synced();
        create_dirs(&deep).unwrap();
        assert!(deep.is_dir());
        // Each created folder is an entry of its parent: the parents synced,
        // outermost first.
        assert_eq!(
            synced(),
            [
                root.path().to_path_buf(),
                root.path().join("a"),
                root.path().join("a").join("b"),
            ]
        );
        create_dirs(&deep).unwrap();
        assert!(synced().is_empty(), "nothing created, nothing synced");

        let file = deep.join("manifests.yaml");
        write_private(&file, b"one").unwrap();
        write_private(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert!(!deep.join("manifests.tmp").exists());
        // The rename is an entry of the file's folder: synced after each.
        assert_eq!(synced(), [deep.clone(), deep.clone()]);
        // The same bytes again: the file is left (same inode), its folder
        // synced all the same.
        #[cfg(unix)]
        let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
        #[cfg(unix)]
        let before = inode();
        write_private(&file, b"two").unwrap();
        #[cfg(unix)]
        assert_eq!(inode(), before);
        assert_eq!(synced(), std::slice::from_ref(&deep));
        assert_eq!(folder_of(Path::new("bare")), Path::new("."));
    }
}
