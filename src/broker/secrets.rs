//! Passwords the broker generates for an instance.

use std::collections::BTreeMap;

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

use crate::catalog::SecretSpec;

/// A random string from the spec's alphabet. Rejection sampling keeps every
/// character equally likely.
pub(crate) fn generate(spec: &SecretSpec) -> String {
    let chars = spec.alphabet.chars();
    let limit = 256 - (256 % chars.len());
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(spec.length);
    let mut buf = [0u8; 64];
    while out.len() < spec.length {
        rng.fill(&mut buf).expect("the system RNG works");
        for &b in &buf {
            if (b as usize) < limit && out.len() < spec.length {
                out.push(chars[b as usize % chars.len()] as char);
            }
        }
    }
    out
}

/// Fills in every declared secret that `existing` lacks; keeps the rest, so
/// an update never rotates a password by accident.
pub(crate) fn ensure(specs: &BTreeMap<String, SecretSpec>, existing: &mut BTreeMap<String, Value>) {
    for (name, spec) in specs {
        existing
            .entry(name.clone())
            .or_insert_with(|| Value::String(generate(spec)));
    }
}
