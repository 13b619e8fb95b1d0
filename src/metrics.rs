//! Prometheus metrics: requests by route and status (counts and
//! durations), operations by kind and state and those running, helm call
//! durations and load, upstream calls, store errors, reloads, build info
//! and the standard `process_*` metrics ([`process`]).
//!
//! Every label value comes from a fixed set (route templates, known
//! methods, `other`): anyone can send requests, and a label taken verbatim
//! from a request would let them add series (and memory) without end.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::broker::model::{OpKind, OpState};

pub(crate) mod process;
mod register;

use register::{
    register_build_info, register_calls, register_helm_slots, register_http, register_reloads,
    register_store,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: Arc<str>,
    method: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    os: &'static str,
    arch: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
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
struct ReloadLabels {
    what: String,
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
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram>,
    in_progress: Family<KindLabels, Gauge>,
    operations: Family<OperationLabels, Counter>,
    helm: Family<HelmLabels, Histogram>,
    upstream: Family<UpstreamLabels, Histogram>,
    store_errors: Family<StoreErrorLabels, Counter>,
    store_lists: Family<StoreListLabels, Counter>,
    store_unreadable: Gauge,
    helm_running: Gauge,
    helm_waiting: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    reload_failures: Family<ReloadLabels, Counter>,
    reload_last_success: Family<ReloadLabels, Gauge>,
    /// The two series each (route, method, status) counts into, found once:
    /// the families look labels up by SipHash on every call, which was the
    /// largest part of a catalog request's cost beyond bare axum. Its keys
    /// are the route labels (templates: a fixed set), shared by every
    /// series of a route.
    series: RwLock<RequestSeries>,
}

/// The handles of one route's series, by method and status.
type RequestSeries = HashMap<Arc<str>, Vec<Series>, BuildHasherDefault<RouteHasher>>;

struct Series {
    method: &'static str,
    status: u16,
    count: Counter,
    duration: Histogram,
}

/// FxHash over route templates. Not resistant to chosen collisions, which
/// needs no resistance here: its keys are the router's own templates and
/// `unmatched`, never text a client sent.
#[derive(Default)]
struct RouteHasher(u64);

impl Hasher for RouteHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("chartbroker");
        register_build_info(registry);
        let (durations, in_progress, requests, operations) = register_http(registry);
        let (upstream, helm) = register_calls(registry);
        let (store_errors, store_lists, store_unreadable) = register_store(registry);
        let (helm_running, helm_waiting) = register_helm_slots(registry);
        let (reloads, reload_failures, reload_last_success) = register_reloads(registry);
        Metrics {
            registry: root,
            durations,
            in_progress,
            reloads,
            reload_failures,
            reload_last_success,
            store_errors,
            store_lists,
            store_unreadable,
            requests,
            operations,
            helm,
            upstream,
            helm_running,
            helm_waiting,
            series: RwLock::default(),
        }
    }
}

impl Metrics {
    /// Counts one HTTP request and how long it took. `route` must be a
    /// route template (or `unmatched`), never a request's own path.
    pub(crate) fn served(
        &self,
        route: &str,
        method: &axum::http::Method,
        status: u16,
        took: Duration,
    ) {
        let method = method_label(method);
        let record = |all: &RequestSeries| {
            let one = all
                .get(route)?
                .iter()
                .find(|s| s.method == method && s.status == status)?;
            one.count.inc();
            one.duration.observe(took.as_secs_f64());
            Some(())
        };
        if record(&self.series.read().expect("series lock")).is_some() {
            return;
        }
        let mut all = self.series.write().expect("series lock");
        if record(&all).is_some() {
            return;
        }
        let route: Arc<str> = all
            .get_key_value(route)
            .map_or_else(|| route.into(), |(r, _)| r.clone());
        let one = Series {
            method,
            status,
            count: self.requests.get_or_create_owned(&RequestLabels {
                route: route.clone(),
                method,
                status,
            }),
            duration: self.durations.get_or_create_owned(&DurationLabels {
                route: route.clone(),
                method,
                status_class: status_class(status),
            }),
        };
        all.entry(route).or_default().push(one);
        record(&all).expect("the series was just added");
    }

    /// Sets how many operations of each kind run now.
    pub(crate) fn set_operations_in_progress(&self, running: &[(OpKind, usize)]) {
        for (kind, n) in running {
            self.in_progress
                .get_or_create(&KindLabels {
                    kind: kind.as_str(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Records how many helm calls run and wait.
    pub(crate) fn helm_load(&self, running: usize, waiting: usize) {
        self.helm_running.set(running as i64);
        self.helm_waiting.set(waiting as i64);
    }

    /// Counts an operation starting or finishing.
    pub(crate) fn operation(&self, kind: OpKind, state: OpState) {
        self.operations
            .get_or_create(&OperationLabels {
                kind: kind.as_str().to_string(),
                state: state_label(state).to_string(),
            })
            .inc();
    }

    /// Records one helm call.
    pub(crate) fn helm_call(&self, command: &str, took: Duration, ok: bool) {
        self.helm
            .get_or_create(&HelmLabels {
                command: command.to_string(),
                outcome: if ok { "ok" } else { "error" }.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records one call to an upstream broker.
    pub(crate) fn upstream_call(&self, broker: &str, method: &str, outcome: &str, took: Duration) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                broker: broker.to_string(),
                method: method.to_string(),
                outcome: outcome.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a reload of `what` (`catalog`, `tls`, `credentials`).
    pub(crate) fn reload(&self, what: &str, ok: bool) {
        let labels = ReloadLabels {
            what: what.to_string(),
        };
        if ok {
            self.reloads.get_or_create(&labels).inc();
            self.reload_last_success
                .get_or_create(&labels)
                .set(i64::try_from(crate::broker::now()).unwrap_or(i64::MAX));
        } else {
            self.reload_failures.get_or_create(&labels).inc();
        }
    }

    /// Counts one store error of `kind`.
    pub(crate) fn store_error(&self, kind: &str) {
        self.store_errors
            .get_or_create(&StoreErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts one LIST request of the Kubernetes store.
    pub(crate) fn store_list(&self, selects: &'static str) {
        self.store_lists
            .get_or_create(&StoreListLabels { selects })
            .inc();
    }

    /// Sets how many store records this broker cannot open.
    pub(crate) fn set_store_unreadable(&self, n: usize) {
        self.store_unreadable
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The Prometheus text format (0.0.4), for clients that don't ask for
    /// OpenMetrics (`promtool`, `curl`, older scrapers): the same metrics,
    /// with counter families named by their `_total` samples and no
    /// `# EOF`, as that format wants.
    pub(crate) fn encode_text(&self) -> String {
        to_text_format(&self.encode())
    }

    /// The OpenMetrics text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// OpenMetrics text to Prometheus text 0.0.4: the two differ (for what
/// this registry writes) only in counter family names, which OpenMetrics
/// gives without `_total`, in `# UNIT` lines and in the closing `# EOF`.
fn to_text_format(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// An operation state as a label (snake_case, unlike OSB's `in progress`).
fn state_label(s: OpState) -> &'static str {
    match s {
        OpState::InProgress => "in_progress",
        OpState::Succeeded => "succeeded",
        OpState::Failed => "failed",
    }
}

/// `2xx`, `4xx`, ...: the class of a status code.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
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
            m.served("unmatched", &name.parse().unwrap(), 404, Duration::ZERO);
        }
        m.served("unmatched", &axum::http::Method::GET, 404, Duration::ZERO);
        let text = m.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("chartbroker_http_requests_total{"))
            .collect();
        assert_eq!(series.len(), 2, "{text}");
        assert!(text.contains(r#"method="other",status="404"} 4"#), "{text}");
    }

    #[test]
    fn cached_series_count_each_route_method_and_status_apart() {
        let m = Metrics::default();
        let (get, put) = (axum::http::Method::GET, axum::http::Method::PUT);
        let route = String::from("/v2/catalog");
        for (r, method, status) in [
            (route.as_str(), &get, 200),
            ("/v2/catalog", &get, 200),
            (&route.clone(), &get, 200),
            ("/v2/catalog", &get, 401),
            ("/v2/catalog", &put, 200),
            ("/readyz", &get, 200),
        ] {
            m.served(r, method, status, Duration::from_millis(2));
        }
        let text = m.encode_text();
        for line in [
            r#"http_requests_total{route="/v2/catalog",method="GET",status="200"} 3"#,
            r#"http_requests_total{route="/v2/catalog",method="GET",status="401"} 1"#,
            r#"http_requests_total{route="/v2/catalog",method="PUT",status="200"} 1"#,
            r#"http_requests_total{route="/readyz",method="GET",status="200"} 1"#,
            r#"duration_seconds_count{route="/v2/catalog",method="GET",status_class="2xx"} 3"#,
            r#"duration_seconds_count{route="/v2/catalog",method="GET",status_class="4xx"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn text_format_names_counter_families_by_their_samples() {
        let m = Metrics::default();
        m.served(
            "/v2/catalog",
            &axum::http::Method::GET,
            200,
            Duration::from_millis(3),
        );
        let text = m.encode_text();
        assert!(
            text.contains("# TYPE chartbroker_http_requests_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP chartbroker_http_requests_total HTTP requests"));
        assert!(text.contains("# TYPE chartbroker_http_request_duration_seconds histogram\n"));
        assert!(!text.contains("# EOF"), "{text}");
        assert!(m.encode().ends_with("# EOF\n"));
    }
}
