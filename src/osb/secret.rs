//! A platform secret (user name, password, bearer token) kept for
//! comparison in constant time without hashing it per request.
//!
//! Each secret of a kind is zero-padded to one width, the longest of its
//! kind rounded up to [`BLOCK`] bytes, and compared over that whole width
//! with its length folded in: how long a comparison takes depends on the
//! candidate's length, the number of secrets and that rounded width, never
//! on a secret's bytes, its exact length, or where a candidate first
//! differs. (Hashing both sides, as before, gave the same guarantee for a
//! SHA-256 per secret and request.)

use subtle::{Choice, ConstantTimeEq};

/// Widths are multiples of this, so timing tells at most a secret's length
/// to the block (as SHA-256's 64-byte blocks did).
const BLOCK: usize = 64;

/// A secret's bytes, zero-padded to its kind's width, and its length.
#[derive(Clone)]
pub(crate) struct Padded {
    bytes: Box<[u8]>,
    len: u64,
}

impl Padded {
    /// `secret`, unpadded until [`pad_all`] runs over its kind.
    pub(crate) fn new(secret: &[u8]) -> Padded {
        Padded {
            bytes: secret.into(),
            len: secret.len() as u64,
        }
    }

    /// Whether `candidate` is this secret, in time independent of both
    /// (see the module's comment). Compared a word at a time (a padded
    /// width is a multiple of 8; an unpadded tail is zero-extended).
    pub(crate) fn ct_eq(&self, candidate: &[u8]) -> Choice {
        let width = self.bytes.len();
        // The words both sides have whole, then the rest of the width with
        // the candidate's tail zero-extended: the split depends on lengths
        // only.
        let whole = candidate.len().min(width) & !7;
        let mut diff = 0u64;
        for (s, c) in self.bytes[..whole]
            .chunks_exact(8)
            .zip(candidate[..whole].chunks_exact(8))
        {
            diff |= u64::from_le_bytes(s.try_into().expect("8 bytes"))
                ^ u64::from_le_bytes(c.try_into().expect("8 bytes"));
        }
        for at in (whole..width).step_by(8) {
            diff |= word(&self.bytes, at) ^ word(candidate, at);
        }
        let diff = core::hint::black_box(diff);
        diff.ct_eq(&0) & self.len.ct_eq(&(candidate.len() as u64))
    }
}

/// The 8 bytes of `bytes` from `at`, zeros past its end. Branches on the
/// length only (a candidate's is known to its sender, a secret's width is
/// public to the block).
fn word(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
        // Byte by byte: a slice copy of variable length is a call to
        // memcpy, which cost more than the comparison, for every word past
        // a short candidate's end.
        None => bytes
            .get(at..)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .fold(0, |w, (i, b)| w | u64::from(*b) << (8 * i)),
    }
}

/// Pads the secret `field` picks from each of `entries` to their common
/// width.
pub(crate) fn pad_all<T>(entries: &mut [T], field: fn(&mut T) -> &mut Padded) {
    let longest = entries.iter_mut().map(|e| field(e).len).max().unwrap_or(0);
    let width = (longest as usize).div_ceil(BLOCK).max(1) * BLOCK;
    for e in entries.iter_mut() {
        let p = field(e);
        let mut bytes = std::mem::take(&mut p.bytes).into_vec();
        bytes.truncate(p.len as usize);
        bytes.resize(width, 0);
        p.bytes = bytes.into_boxed_slice();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(all: &[&str]) -> Vec<Padded> {
        let mut v: Vec<Padded> = all.iter().map(|s| Padded::new(s.as_bytes())).collect();
        pad_all(&mut v, |p| p);
        v
    }

    #[test]
    fn equal_only_to_the_same_bytes_and_length() {
        let v = padded(&["secret", "", "x".repeat(70).as_str()]);
        assert!(v.iter().all(|p| p.bytes.len() == 128));
        let eq = |p: &Padded, c: &[u8]| bool::from(p.ct_eq(c));
        assert!(eq(&v[0], b"secret"));
        assert!(!eq(&v[0], b"secre"));
        assert!(!eq(&v[0], b"secret\0"), "padding is not part of the secret");
        assert!(!eq(&v[0], b"secreT"));
        assert!(eq(&v[1], b""));
        assert!(!eq(&v[1], b"\0"));
        assert!(eq(&v[2], "x".repeat(70).as_bytes()));
        assert!(!eq(&v[2], "x".repeat(71).as_bytes()));
        assert!(!eq(&v[2], "x".repeat(200).as_bytes()));
    }

    #[test]
    fn equal_exactly_when_the_bytes_are_for_every_length() {
        // Every split between whole words and the tail: candidates shorter
        // than, as long as and longer than each secret, padded or not.
        let all: Vec<u8> = (0..150u8).map(|b| b.wrapping_mul(7) | 1).collect();
        for secret_len in [0, 1, 7, 8, 9, 15, 16, 33, 63, 64, 65, 100] {
            let secret = &all[..secret_len];
            let mut padded = vec![Padded::new(secret)];
            pad_all(&mut padded, |p| p);
            for p in [Padded::new(secret), padded.remove(0)] {
                for len in 0..all.len() {
                    let candidate = &all[..len];
                    assert_eq!(
                        bool::from(p.ct_eq(candidate)),
                        candidate == secret,
                        "secret {secret_len}, candidate {len}, width {}",
                        p.bytes.len()
                    );
                }
            }
        }
    }

    #[test]
    fn every_byte_counts_padded_or_not() {
        // Word-wise comparison: a difference in any byte, the last partial
        // word of an unpadded secret included, is a mismatch.
        let secret: Vec<u8> = (1..=70).collect();
        let mut padded = vec![Padded::new(&secret)];
        pad_all(&mut padded, |p| p);
        for p in [Padded::new(&secret), padded.remove(0)] {
            assert!(bool::from(p.ct_eq(&secret)));
            for i in 0..secret.len() {
                let mut other = secret.clone();
                other[i] ^= 0x80;
                assert!(!bool::from(p.ct_eq(&other)), "byte {i}");
            }
        }
    }

    #[test]
    fn repadding_keeps_every_secret() {
        let mut v = padded(&["a"]);
        assert_eq!(v[0].bytes.len(), 64);
        v.push(Padded::new(&[b'b'; 65]));
        pad_all(&mut v, |p| p);
        assert!(bool::from(v[0].ct_eq(b"a")));
        assert!(bool::from(v[1].ct_eq(&[b'b'; 65])));
        assert_eq!(v[0].bytes.len(), 128);
    }
}
