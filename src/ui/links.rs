//! Signed links to one instance's page (`dashboard_url`): an HMAC-SHA256
//! over the instance id and an expiry, with a key only the broker holds.
//! A link opens the page of the instance it names until it expires, and
//! nothing else.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// Signs and checks instance links.
pub struct LinkSigner {
    key: hmac::Key,
    /// Where the broker is reached from outside, without a trailing `/`.
    base_url: String,
    /// How long a link stays valid.
    ttl_secs: u64,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("base_url", &self.base_url)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Why a link was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// Expired.
    Expired,
    /// Not signed by this key for this instance and expiry.
    BadSignature,
}

impl LinkSigner {
    /// A signer with `key` (at least 32 bytes), links under `base_url`.
    pub fn new(key: &[u8], base_url: &str, ttl_secs: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            key.len() >= 32,
            "the dashboard link key needs at least 32 bytes"
        );
        Ok(LinkSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            base_url: base_url.trim_end_matches('/').to_owned(),
            ttl_secs: ttl_secs.max(1),
        })
    }

    /// A signer with a fresh random key: its links die with the process.
    pub(crate) fn random(base_url: &str, ttl_secs: u64) -> anyhow::Result<Self> {
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| anyhow::anyhow!("no randomness for the dashboard link key"))?;
        Self::new(&key, base_url, ttl_secs)
    }

    fn message(instance_id: &str, expires: u64) -> Vec<u8> {
        // The id can't hold NUL (ids are checked at the edge), so the
        // message splits one way only.
        format!("chartbroker-dashboard\0{instance_id}\0{expires}").into_bytes()
    }

    /// The signature of a link to `instance_id` valid until `expires`.
    pub fn sign(&self, instance_id: &str, expires: u64) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &Self::message(instance_id, expires)))
    }

    /// The path and query of a link to `instance_id` signed at `now`.
    pub fn path(&self, instance_id: &str, now: u64) -> String {
        let expires = now.saturating_add(self.ttl_secs);
        format!(
            "/ui/instances/{}?expires={expires}&sig={}",
            percent_encoding::utf8_percent_encode(instance_id, super::html::PATH_SEGMENT),
            self.sign(instance_id, expires)
        )
    }

    /// The absolute link returned as `dashboard_url`.
    pub(crate) fn url(&self, instance_id: &str, now: u64) -> String {
        format!("{}{}", self.base_url, self.path(instance_id, now))
    }

    /// Whether `sig` signs `instance_id` until `expires`, and `now` is before it.
    pub(crate) fn check(
        &self,
        instance_id: &str,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), LinkError> {
        let raw = URL_SAFE_NO_PAD
            .decode(sig.as_bytes())
            .map_err(|_| LinkError::BadSignature)?;
        hmac::verify(&self.key, &Self::message(instance_id, expires), &raw)
            .map_err(|_| LinkError::BadSignature)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(&[7u8; 32], "https://b.example/", 60).unwrap()
    }

    #[test]
    fn a_link_opens_its_instance_until_it_expires() {
        let s = signer();
        let sig = s.sign("a", 100);
        assert_eq!(s.check("a", 100, &sig, 99), Ok(()));
        assert_eq!(s.check("a", 100, &sig, 100), Err(LinkError::Expired));
        assert_eq!(s.check("b", 100, &sig, 99), Err(LinkError::BadSignature));
        assert_eq!(s.check("a", 101, &sig, 99), Err(LinkError::BadSignature));
        assert_eq!(s.check("a", 100, "!!", 99), Err(LinkError::BadSignature));
        let other = LinkSigner::new(&[8u8; 32], "https://b.example", 60).unwrap();
        assert_eq!(
            other.check("a", 100, &sig, 99),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn urls_encode_the_id_and_carry_the_expiry() {
        let u = signer().url("x/y z", 1000);
        assert!(
            u.starts_with("https://b.example/ui/instances/x%2Fy%20z?expires=1060&sig="),
            "{u}"
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(LinkSigner::new(&[1u8; 16], "http://x", 1).is_err());
    }
}
