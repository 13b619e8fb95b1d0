//! The OSB API version a platform speaks (`X-Broker-API-Version`), and which
//! response fields each version knows.
//!
//! Minor versions only add optional fields, so a broker could send every
//! field to everyone; strict clients generated from an older version's
//! OpenAPI document reject fields they don't know, so responses carry only
//! what the platform's version defines. The field lists follow the spec's
//! release notes (v2.14, v2.15, v2.16, v2.17).

/// A supported API version, 2.13 ..= 2.17. A platform announcing a newer
/// 2.x gets 2.17's responses: minor versions only add fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ApiVersion(u32);

impl ApiVersion {
    /// Lowest supported minor version of API major 2.
    pub(crate) const MIN_MINOR: u32 = 13;
    /// The newest version this broker implements.
    pub(crate) const LATEST: ApiVersion = ApiVersion(17);
    /// Every version with a response shape of its own, oldest first.
    pub(crate) const ALL: [ApiVersion; 5] = [
        ApiVersion(13),
        ApiVersion(14),
        ApiVersion(15),
        ApiVersion(16),
        ApiVersion(17),
    ];

    /// The version a header value spelled as every platform spells it
    /// (`2.` and two digits) names, read without the text parser (this runs
    /// on every OSB request); `None` for any other spelling, which
    /// [`ApiVersion::parse`] reads, and for an unsupported version.
    pub(crate) fn parse_usual(value: &[u8]) -> Option<ApiVersion> {
        let [b'2', b'.', tens @ b'0'..=b'9', ones @ b'0'..=b'9'] = *value else {
            return None;
        };
        let minor = u32::from(tens - b'0') * 10 + u32::from(ones - b'0');
        (minor >= Self::MIN_MINOR).then(|| ApiVersion(minor.min(Self::LATEST.0)))
    }

    /// Parses a header value (`2.15`); `None` when unsupported.
    pub(crate) fn parse(value: &str) -> Option<ApiVersion> {
        let (major, minor) = value.trim().split_once('.')?;
        let (major, minor) = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?);
        (major == 2 && minor >= Self::MIN_MINOR).then(|| ApiVersion(minor.min(Self::LATEST.0)))
    }

    /// Position in [`ApiVersion::ALL`].
    pub(crate) fn index(self) -> usize {
        (self.0 - Self::MIN_MINOR) as usize
    }

    /// 2.14: `instances_retrievable` and `bindings_retrievable` (GET
    /// endpoints, asynchronous bindings).
    pub(crate) fn has_retrievable(self) -> bool {
        self.0 >= 14
    }

    /// 2.15: plan-level `plan_updateable`, `maintenance_info`,
    /// `maximum_polling_duration`, `allow_context_updates`, the bind
    /// response's `endpoints`, and `Retry-After` on `last_operation`.
    pub(crate) fn has_v2_15_fields(self) -> bool {
        self.0 >= 15
    }

    /// 2.16: `instance_usable` and `update_repeatable` in `last_operation`,
    /// and `metadata` on instances and bindings.
    pub(crate) fn has_v2_16_fields(self) -> bool {
        self.0 >= 16
    }

    /// 2.17: `binding_rotatable` (binding rotation).
    pub(crate) fn has_binding_rotation(self) -> bool {
        self.0 >= 17
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        Self::LATEST
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "2.{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ApiVersion;

    #[test]
    fn parses_supported_versions_and_clamps_newer_minors() {
        assert_eq!(ApiVersion::parse("2.13"), Some(ApiVersion(13)));
        assert_eq!(ApiVersion::parse(" 2.16 "), Some(ApiVersion(16)));
        assert_eq!(ApiVersion::parse("2.19"), Some(ApiVersion::LATEST));
        for bad in ["", "2", "2.12", "3.0", "1.17", "2.x", "two.fifteen", "2.-1"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_header_is_read_as_its_text_is() {
        let mut forms: Vec<String> = [
            "", "2", "2.", "2.1", "2.9", "2.012", "02.17", "+2.17", "2.17 ", " 2.15",
        ]
        .map(String::from)
        .to_vec();
        forms.extend((0..100).map(|m| format!("2.{m:02}")));
        forms.extend((0..100).map(|m| format!("2.{m}")));
        forms.extend((0..20).map(|m| format!("3.{m:02}")));
        for f in &forms {
            let usual = f.len() == 4 && f.starts_with("2.");
            let want = if usual { ApiVersion::parse(f) } else { None };
            assert_eq!(ApiVersion::parse_usual(f.as_bytes()), want, "{f:?}");
        }
        assert_eq!(ApiVersion::parse_usual(b"2.\xff\xff"), None);
    }

    #[test]
    fn all_is_indexed_by_index() {
        for (i, v) in ApiVersion::ALL.iter().enumerate() {
            assert_eq!(v.index(), i);
        }
    }
}
