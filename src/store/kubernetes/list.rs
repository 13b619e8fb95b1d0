//! Listing records by label selector, page by page.

use ::kube::api::ListParams;

use super::KubeStore;
use super::secret::{key_of, name_of, secret_name, terminating};
use crate::broker::ports::{StoreError, Table};

impl KubeStore {
    /// The records `selector` selects whose keys start with `prefix`,
    /// sorted by key, and the keys of those that did not open.
    pub(super) async fn list_selected(
        &self,
        table: Table,
        selector: &str,
        prefix: &str,
        scope: &'static str,
    ) -> Result<ListedRecords, StoreError> {
        let mut out = Vec::new();
        let mut failed = std::collections::BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().labels(selector).limit(self.page_size);
            if let Some(o) = &self.lists {
                o(scope);
            }
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = self.api.list(&params).await.map_err(|e| {
                self.health.error("backend");
                StoreError::Backend(format!(
                    "kubernetes API: listing Secrets in {} ({selector}): {e}",
                    self.namespace
                ))
            })?;
            for s in &page.items {
                if terminating(s) {
                    continue;
                }
                let Some(key) = key_of(s) else {
                    tracing::warn!(
                        namespace = %self.namespace,
                        secret = name_of(s),
                        "skipping a store Secret without a valid key annotation"
                    );
                    continue;
                };
                if !key.starts_with(prefix) {
                    continue;
                }
                if s.metadata.name.as_deref() != Some(secret_name(table, &key).as_str()) {
                    tracing::warn!(
                        namespace = %self.namespace,
                        secret = name_of(s),
                        "skipping a store Secret not named for the record it holds"
                    );
                    continue;
                }
                match self.decode(table, &key, s) {
                    Ok((plain, version)) => out.push((key, plain, version)),
                    Err(e) => {
                        failed.insert(key.clone());
                        tracing::warn!(
                        namespace = %self.namespace,
                        secret = name_of(s),
                        error = %e,
                        "skipping a store record that does not open"
                        )
                    }
                }
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((out, failed))
    }
}

/// Records as `(key, value, version)`, and the keys that did not open.
pub(super) type ListedRecords = (
    Vec<(String, Vec<u8>, u64)>,
    std::collections::BTreeSet<String>,
);
