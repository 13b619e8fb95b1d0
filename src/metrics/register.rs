//! Registering every metric family under its name and help text.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{
    BuildLabels, DurationLabels, HelmLabels, KindLabels, OperationLabels, ReloadLabels,
    RequestLabels, StoreErrorLabels, StoreListLabels, UpstreamLabels,
};

pub(super) fn upstream_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

pub(super) fn request_histogram() -> Histogram {
    // 1 ms to about 1 min: catalog reads to synchronous operations.
    Histogram::new(exponential_buckets(0.001, 2.5, 13))
}

pub(super) fn helm_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

pub(super) fn register_build_info(registry: &mut Registry) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        })
        .set(1);
    registry.register(
        "build_info",
        "Always 1; the labels say which build of chartbroker runs",
        build,
    );
}

pub(super) type HttpFamilies = (
    Family<DurationLabels, Histogram>,
    Family<KindLabels, Gauge>,
    Family<RequestLabels, Counter>,
    Family<OperationLabels, Counter>,
);

pub(super) fn register_http(registry: &mut Registry) -> HttpFamilies {
    let durations = Family::<DurationLabels, Histogram>::new_with_constructor(
        request_histogram as fn() -> Histogram,
    );
    registry.register(
        "http_request_duration_seconds",
        "Duration of HTTP requests by route template, method and status class (2xx, 4xx, ...)",
        durations.clone(),
    );
    let in_progress = Family::<KindLabels, Gauge>::default();
    registry.register(
        "operations_in_progress",
        "Operations this process is running now, by kind",
        in_progress.clone(),
    );
    let requests = Family::<RequestLabels, Counter>::default();
    let operations = Family::<OperationLabels, Counter>::default();
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
    (durations, in_progress, requests, operations)
}

pub(super) fn register_calls(
    registry: &mut Registry,
) -> (
    Family<UpstreamLabels, Histogram>,
    Family<HelmLabels, Histogram>,
) {
    let helm =
        Family::<HelmLabels, Histogram>::new_with_constructor(helm_histogram as fn() -> Histogram);
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
    (upstream, helm)
}

pub(super) fn register_store(
    registry: &mut Registry,
) -> (
    Family<StoreErrorLabels, Counter>,
    Family<StoreListLabels, Counter>,
    Gauge,
) {
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
    (store_errors, store_lists, store_unreadable)
}

pub(super) fn register_helm_slots(registry: &mut Registry) -> (Gauge, Gauge) {
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
    (helm_running, helm_waiting)
}

pub(super) type ReloadFamilies = (
    Family<ReloadLabels, Counter>,
    Family<ReloadLabels, Counter>,
    Family<ReloadLabels, Gauge>,
);

pub(super) fn register_reloads(registry: &mut Registry) -> ReloadFamilies {
    let reloads = Family::<ReloadLabels, Counter>::default();
    registry.register(
        "reloads",
        "Successful reloads by what was reloaded: catalog, tls, credentials",
        reloads.clone(),
    );
    let reload_failures = Family::<ReloadLabels, Counter>::default();
    registry.register(
        "reload_failures",
        "Failed reloads by what failed to load (the previous one stays in force)",
        reload_failures.clone(),
    );
    let reload_last_success = Family::<ReloadLabels, Gauge>::default();
    registry.register(
        "reload_last_success_timestamp_seconds",
        "Unix time of the last successful reload by what was reloaded",
        reload_last_success.clone(),
    );
    (reloads, reload_failures, reload_last_success)
}
