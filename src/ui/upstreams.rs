//! Whether each upstream broker answers, for the health page: a catalog
//! GET with a short timeout, made at most once per [`PROBE_EVERY`] per
//! upstream however often the page is loaded. Loads wait on one lock while
//! a probe runs, then read its answer: a reload storm is never passed on
//! to an upstream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::upstream::Upstreams;

/// How long a probe's answer is shown before the next page load probes
/// again.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);
/// How long a probe waits for an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The last probe of each upstream.
#[derive(Default)]
pub struct Probes {
    seen: tokio::sync::Mutex<HashMap<String, Probe>>,
}

/// One probe's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Unix seconds it was made at.
    pub at: u64,
    /// `Ok(status)` for any HTTP answer; `Err(why)` for none (a fixed
    /// label such as `connect` or `timeout`, never the upstream's text).
    pub outcome: Result<u16, String>,
    when: Instant,
}

/// An upstream as the health page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Its name in the catalog.
    pub name: String,
    /// Scheme, host and port only (a URL may carry credentials).
    pub origin: String,
    /// Reachable (any HTTP answer), with what it said.
    pub state: String,
    /// Whether it answered 200.
    pub ok: bool,
    /// When it was last probed (unix seconds), if it was.
    pub probed_at: Option<u64>,
}

fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => "?".into(),
    }
}

impl Probes {
    /// Every configured upstream with its last probe, probing those whose
    /// answer is older than [`PROBE_EVERY`] (in parallel, each for at most
    /// [`PROBE_TIMEOUT`]).
    pub(crate) async fn rows(&self, upstreams: &Upstreams) -> Vec<Row> {
        let mut seen = self.seen.lock().await;
        let stale: Vec<_> = upstreams
            .brokers()
            .iter()
            .filter_map(|(name, c)| c.as_ref().ok().map(|c| (name, c)))
            .filter(|(name, _)| {
                seen.get(*name)
                    .is_none_or(|p| p.when.elapsed() >= PROBE_EVERY)
            })
            .collect();
        let probes = stale.iter().map(|(name, client)| async move {
            let outcome = match tokio::time::timeout(PROBE_TIMEOUT, client.catalog()).await {
                Ok(Ok(reply)) => Ok(reply.status),
                Ok(Err(e)) => Err(e.metric_label().to_owned()),
                Err(_) => Err("timeout".to_owned()),
            };
            let probe = Probe {
                at: crate::broker::now(),
                outcome,
                when: Instant::now(),
            };
            ((*name).clone(), probe)
        });
        for (name, probe) in futures::future::join_all(probes).await {
            seen.insert(name, probe);
        }
        upstreams
            .brokers()
            .iter()
            .map(|(name, client)| row(name, client, seen.get(name)))
            .collect()
    }
}

fn row(
    name: &str,
    client: &Result<std::sync::Arc<crate::upstream::client::Client>, String>,
    probe: Option<&Probe>,
) -> Row {
    let (origin, state, ok) = match (client, probe.map(|p| &p.outcome)) {
        (Err(why), _) => ("-".into(), format!("not usable: {why}"), false),
        (Ok(c), None) => (origin(&c.config().url), "not probed".into(), false),
        (Ok(c), Some(Ok(200))) => (origin(&c.config().url), "reachable".into(), true),
        (Ok(c), Some(Ok(status))) => (
            origin(&c.config().url),
            format!("reachable, answered HTTP {status}"),
            false,
        ),
        // Nothing was sent: a credential its settings name is missing.
        (Ok(c), Some(Err(why))) if why == "config" => (
            origin(&c.config().url),
            "not contacted: its settings are incomplete (a credential is missing)".into(),
            false,
        ),
        (Ok(c), Some(Err(why))) => (
            origin(&c.config().url),
            format!("unreachable ({why})"),
            false,
        ),
    };
    Row {
        name: name.to_owned(),
        origin,
        state,
        ok,
        probed_at: probe.map(|p| p.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_drop_credentials_and_paths() {
        assert_eq!(
            origin("https://user:pw@broker.example:8443/v2?x=1"),
            "https://broker.example:8443"
        );
        assert_eq!(origin("http://b.example/"), "http://b.example");
        assert_eq!(origin("not a url"), "?");
    }
}
