//! Prometheus metrics: requests by route and status, operations by kind and
//! state, helm call durations and load, store errors.
//!
//! Every label value comes from a fixed set (route templates, known
//! methods, `other`): anyone can send requests, and a label taken verbatim
//! from a request would let them add series (and memory) without end.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::broker::model::{OpKind, OpState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    broker: String,
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreErrorLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreListLabels {
    selects: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HelmLabels {
    command: String,
    outcome: String,
}

/// The broker's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    operations: Family<OperationLabels, Counter>,
    helm: Family<HelmLabels, Histogram>,
    upstream: Family<UpstreamLabels, Histogram>,
    store_errors: Family<StoreErrorLabels, Counter>,
    store_lists: Family<StoreListLabels, Counter>,
    store_unreadable: Gauge,
    helm_running: Gauge,
    helm_waiting: Gauge,
}

fn upstream_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn helm_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chartbroker");
        let requests = Family::<RequestLabels, Counter>::default();
        let operations = Family::<OperationLabels, Counter>::default();
        let helm = Family::<HelmLabels, Histogram>::new_with_constructor(
            helm_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "operations",
            "OSB operations by kind and state (in progress counts starts)",
            operations.clone(),
        );
        let upstream = Family::<UpstreamLabels, Histogram>::new_with_constructor(
            upstream_histogram as fn() -> Histogram,
        );
        registry.register(
            "upstream_call_duration_seconds",
            "Duration of calls to upstream brokers by broker, method and outcome (status or error)",
            upstream.clone(),
        );
        registry.register(
            "helm_call_duration_seconds",
            "Duration of helm invocations by subcommand and outcome",
            helm.clone(),
        );
        let store_errors = Family::<StoreErrorLabels, Counter>::default();
        registry.register(
            "store_errors",
            "Store errors by kind: unknown_key (sealed with a key this broker lacks), tampered, format, legacy_key, backend",
            store_errors.clone(),
        );
        let store_lists = Family::<StoreListLabels, Counter>::default();
        registry.register(
            "store_list_requests",
            "LIST requests of the Kubernetes store by what they select: all (every record of a table), prefix (one instance's bindings) or tagged (a lapsed replica's in-flight records, tombstones)",
            store_lists.clone(),
        );
        let store_unreadable = Gauge::default();
        registry.register(
            "store_unreadable_records",
            "Store records this broker met and cannot open (non-zero fails /readyz)",
            store_unreadable.clone(),
        );
        let helm_running = Gauge::default();
        let helm_waiting = Gauge::default();
        registry.register(
            "helm_processes_running",
            "helm processes running now",
            helm_running.clone(),
        );
        registry.register(
            "helm_calls_waiting",
            "helm calls waiting for a process slot (--max-helm-processes)",
            helm_waiting.clone(),
        );
        Metrics {
            store_errors,
            store_lists,
            store_unreadable,
            registry,
            requests,
            operations,
            helm,
            upstream,
            helm_running,
            helm_waiting,
        }
    }
}

impl Metrics {
    /// Counts one HTTP request. `route` must be a route template (or
    /// `unmatched`), never a request's own path.
    pub fn request(&self, route: &str, method: &axum::http::Method, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method_label(method),
                status,
            })
            .inc();
    }

    /// Records how many helm calls run and wait.
    pub fn helm_load(&self, running: usize, waiting: usize) {
        self.helm_running.set(running as i64);
        self.helm_waiting.set(waiting as i64);
    }

    /// Counts an operation starting or finishing.
    pub fn operation(&self, kind: OpKind, state: OpState) {
        self.operations
            .get_or_create(&OperationLabels {
                kind: kind.as_str().to_string(),
                state: state.as_str().to_string(),
            })
            .inc();
    }

    /// Records one helm call.
    pub fn helm_call(&self, command: &str, took: Duration, ok: bool) {
        self.helm
            .get_or_create(&HelmLabels {
                command: command.to_string(),
                outcome: if ok { "ok" } else { "error" }.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records one call to an upstream broker.
    pub fn upstream_call(&self, broker: &str, method: &str, outcome: &str, took: Duration) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                broker: broker.to_string(),
                method: method.to_string(),
                outcome: outcome.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one store error of `kind`.
    pub fn store_error(&self, kind: &str) {
        self.store_errors
            .get_or_create(&StoreErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts one LIST request of the Kubernetes store.
    pub fn store_list(&self, selects: &'static str) {
        self.store_lists
            .get_or_create(&StoreListLabels { selects })
            .inc();
    }

    /// Sets how many store records this broker cannot open.
    pub fn set_store_unreadable(&self, n: usize) {
        self.store_unreadable
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The method as a label: the standard ones by name, any other as `other`.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::POST, "POST"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(k, _)| k == m)
        .map_or("other", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::default();
        for name in ["FOO", "BAR", "get", "PROPFIND"] {
            m.request("unmatched", &name.parse().unwrap(), 404);
        }
        m.request("unmatched", &axum::http::Method::GET, 404);
        let text = m.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("chartbroker_http_requests_total{"))
            .collect();
        assert_eq!(series.len(), 2, "{text}");
        assert!(text.contains(r#"method="other",status="404"} 4"#), "{text}");
    }
}
