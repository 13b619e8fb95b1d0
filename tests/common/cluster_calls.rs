//! One-line OSB calls for the cluster tier: each sends a request the way a
//! platform does (with an originating identity, or none when `user` is
//! `None`), follows an accepted operation to its end, and asserts the
//! status every caller checked, so a test reads as its requests and the
//! checks that are its own.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::cluster::{BrokerIdentity, Cluster};
use super::platform::identity;
use super::process::{osb, poll_last_operation};
use super::{Resp, TestBroker, assert_delete_done, config, req};

/// A tool `scripts/install-tools.sh` installs: `$var`, or `default` under
/// the repository; fails saying how to get it (`how`) when it is missing.
pub fn tool(var: &str, default: &str, how: &str) -> PathBuf {
    let p = std::env::var_os(var).map_or_else(|| super::repo().join(default), PathBuf::from);
    let missing = format!("{} is missing — {how} or set {var}", p.display());
    assert!(p.is_file(), "{missing}");
    p
}

/// A broker on the render engine over catalog `catalog` and charts
/// `charts` (the rest as [`super::config`]).
pub async fn render_broker_on(catalog: &Path, charts: &Path) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.to_path_buf();
    cfg.charts_dir = charts.to_path_buf();
    TestBroker::with_config(data, cfg).await
}

/// A provision body on a Kubernetes platform in namespace `ns`.
pub fn kube_body(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan,
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
}

/// [`kube_body`] with the organization and space Cloud Foundry-minded
/// brokers expect too.
pub fn kube_provision(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    let mut body = kube_body(service, plan, ns, params);
    body["organization_guid"] = json!("org");
    body["space_guid"] = json!("space");
    body
}

/// [`kube_provision`] of the cluster test catalog's service (`svc-cluster`).
pub fn cluster_provision(plan: &str, ns: &str, params: Value) -> Value {
    kube_provision("svc-cluster", plan, ns, params)
}

impl Resp {
    /// Asserts a finished operation's `state` (200, as `last_operation`
    /// answers it); its description, or "" without one.
    #[track_caller]
    pub fn assert_state(&self, state: &str) -> &str {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.json["state"], state, "{}", self.text);
        self.json["description"].as_str().unwrap_or_default()
    }

    /// The answer's `description`, which must be there.
    #[track_caller]
    pub fn description(&self) -> &str {
        self.json["description"].as_str().unwrap()
    }

    /// [`Resp::assert_state`] `succeeded`, then the answer.
    #[track_caller]
    pub fn succeeded(self) -> Resp {
        self.assert_state("succeeded");
        self
    }
}

/// A platform sending to a broker as one user (`None`: no originating
/// identity): [`TestBroker::by`].
pub struct Caller<'a> {
    b: &'a TestBroker,
    user: Option<&'a str>,
}

impl TestBroker {
    /// Requests sent as `user` (a `&str`), or with no identity (`None`).
    pub fn by<'a>(&'a self, user: impl Into<Option<&'a str>>) -> Caller<'a> {
        Caller {
            b: self,
            user: user.into(),
        }
    }
}

impl Caller<'_> {
    /// A request answered as it comes.
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let mut r = req(method, uri, body);
        if let Some(user) = self.user {
            r.headers_mut().insert(
                "x-broker-api-originating-identity",
                identity(user).parse().unwrap(),
            );
        }
        self.b.send(r).await
    }

    /// A request that must answer 202, followed to its end.
    pub async fn run(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let accepted = self.call(method, uri, body).await;
        self.b.finish(uri, accepted).await
    }

    /// An asynchronous `method` on instance `id` (`id?query` adds to the
    /// query): its finished `last_operation`.
    pub async fn instance(&self, method: Method, id_query: &str, body: Option<Value>) -> Resp {
        let (id, query) = id_query.split_once('?').unwrap_or((id_query, ""));
        let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true&{query}");
        self.run(method, uri.trim_end_matches('&'), body).await
    }

    /// An asynchronous provision of `id`: its finished `last_operation`.
    pub async fn provision(&self, id: &str, body: Value) -> Resp {
        self.instance(Method::PUT, id, Some(body)).await
    }

    /// [`Caller::provision`] that must succeed.
    pub async fn provisioned(&self, id: &str, body: Value) -> Resp {
        self.provision(id, body).await.succeeded()
    }

    /// [`Caller::provision`] that must fail: the failure's description.
    pub async fn provision_fails(&self, id: &str, body: Value) -> String {
        let done = self.provision(id, body).await;
        done.assert_state("failed").to_string()
    }

    /// An asynchronous update (`PATCH` of `body`): its finished
    /// `last_operation`.
    pub async fn update(&self, id: &str, body: Value) -> Resp {
        self.instance(Method::PATCH, id, Some(body)).await
    }

    /// [`Caller::update`] that must succeed.
    pub async fn updated(&self, id: &str, body: Value) -> Resp {
        self.update(id, body).await.succeeded()
    }

    /// An asynchronous deprovision (of `service`/`plan`) that must end
    /// `succeeded`.
    pub async fn deprovisioned(&self, id: &str, service: &str, plan: &str) {
        let id_query = format!("{id}?service_id={service}&plan_id={plan}");
        let done = self.instance(Method::DELETE, &id_query, None).await;
        assert_delete_done(&done);
    }

    /// A request that must answer `status`: the answer.
    pub async fn answers(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Resp {
        let r = self.call(method.clone(), uri, body).await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.text);
        r
    }

    /// A synchronous `PUT` that must answer 201 Created: the answer.
    pub async fn created(&self, uri: &str, body: Value) -> Resp {
        self.answers(Method::PUT, uri, Some(body), StatusCode::CREATED)
            .await
    }

    /// A synchronous bind that must answer 201 Created: the answer.
    pub async fn bound(&self, instance: &str, binding: &str, body: Value) -> Resp {
        let uri = format!("/v2/service_instances/{instance}/service_bindings/{binding}");
        self.created(&uri, body).await
    }

    /// A synchronous unbind (of `service`/`plan`) that must answer 200.
    pub async fn unbound(&self, instance: &str, binding: &str, service: &str, plan: &str) {
        let uri = format!(
            "/v2/service_instances/{instance}/service_bindings/{binding}?service_id={service}&plan_id={plan}"
        );
        self.answers(Method::DELETE, &uri, None, StatusCode::OK)
            .await;
    }
}

impl Cluster {
    /// A broker identity installed from the chart and a namespace
    /// `<prefix>-...` it may install into (its target), nobody else's.
    pub async fn broker_and_target(&self, prefix: &str) -> (BrokerIdentity, String) {
        let id = self.install_broker(false).await;
        let ns = self.namespace(prefix).await;
        self.grant_target(&id, &ns);
        (id, ns)
    }

    /// The admin, a broker identity installed from the chart (`namespaces`
    /// as [`Cluster::install_broker`]) and a namespace it may install into
    /// that `user` may edit: how most cluster tests begin.
    pub async fn with_tenant(user: &str, namespaces: bool) -> (Cluster, BrokerIdentity, String) {
        let k = Cluster::admin().await;
        let id = k.install_broker(namespaces).await;
        let ns = k.tenant(&id, user).await;
        (k, id, ns)
    }
}

/// The `(manager, operation)` pairs of an object's `managedFields`, in
/// order.
pub fn managed_fields(obj: &Value) -> Vec<(String, String)> {
    let field = |m: &Value, key: &str| m[key].as_str().unwrap_or_default().to_string();
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (field(m, "manager"), field(m, "operation")))
        .collect()
}

/// The keys of a Secret's `data`, sorted.
pub fn data_keys(secret: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = secret["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// The managers in an object's `managedFields`, in order.
pub fn field_managers(obj: &Value) -> Vec<String> {
    managed_fields(obj).into_iter().map(|(m, _)| m).collect()
}

impl Cluster {
    /// Whether the object at `path` exists (GET answers, not 404).
    pub async fn has(&self, path: &str) -> bool {
        self.get(path).await.is_some()
    }
}

impl Cluster {
    /// The namespace `ns` the broker made for instance `id`, which must
    /// exist: labelled as the broker's and annotated with its instance.
    pub async fn instance_namespace(&self, ns: &str, id: &str) -> Value {
        let namespace = self
            .get(&format!("/api/v1/namespaces/{ns}"))
            .await
            .expect("the instance's namespace exists");
        let meta = &namespace["metadata"];
        let managed_by = &meta["labels"]["app.kubernetes.io/managed-by"];
        assert_eq!(managed_by, "chartbroker", "{namespace:#}");
        let owner = &meta["annotations"]["chartbroker.io/instance-id"];
        assert_eq!(owner, id, "{namespace:#}");
        namespace
    }
}

impl BrokerIdentity {
    /// The user Kubernetes sees when helm acts in `ns` for this broker:
    /// the namespace's release identity.
    pub fn release_user(&self, ns: &str) -> String {
        format!(
            "system:serviceaccount:{ns}:{}",
            self.identity_names().service_account
        )
    }
}

/// Two tests, `$four` and `$three`, running `$case(helm, major)` on Helm
/// 4 (major "4") and on Helm 3 ("3"): one line for a check both helms must
/// pass. `worker_threads = N` after the case sets the runtime's workers.
#[macro_export]
macro_rules! helm4_and_3_tests {
    ($four:ident, $three:ident, $case:expr) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $four() {
            ($case)($crate::common::helm_bin(), "4").await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn $three() {
            ($case)($crate::common::helm3_bin(), "3").await;
        }
    };
    ($four:ident, $three:ident, $case:expr, worker_threads = $n:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = $n)]
        async fn $four() {
            ($case)($crate::common::helm_bin(), "4").await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = $n)]
        async fn $three() {
            ($case)($crate::common::helm3_bin(), "3").await;
        }
    };
}

/// Runs a table's cases, `at_once` at a time, as separate tests would run;
/// then fails naming every case that failed, with its panic message.
/// `cases` is read lazily: a case's future is made when it starts.
pub async fn all_cases<Fut: Future<Output = ()>>(
    at_once: usize,
    cases: impl IntoIterator<Item = (&'static str, Fut)>,
) {
    use futures::{FutureExt as _, StreamExt as _};
    let failed: Vec<String> = futures::stream::iter(cases)
        // Boxed: a case's future can be large, and the cases must not
        // share the test's stack.
        .map(|(name, case)| {
            Box::pin(
                AssertUnwindSafe(case)
                    .catch_unwind()
                    .map(move |r| (name, r)),
            )
        })
        .buffer_unordered(at_once)
        .filter_map(|(name, outcome)| async move {
            let panic = outcome.err()?;
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Some(format!("{name}: {what}"))
        })
        .collect()
        .await;
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

/// Over HTTP, to a broker process: `method` on `url` (an instance's or a
/// binding's, with its query) that must answer 202: its operation.
pub async fn accepted(method: reqwest::Method, url: &str, body: Option<Value>) -> String {
    let (status, r) = osb(method, url.to_string(), body).await;
    assert_eq!(status, 202, "{url}: {r}");
    r["operation"].as_str().unwrap().to_string()
}

/// [`accepted`], then its `last_operation` polled (every 100 ms, for a
/// minute at most) until it leaves `in progress`: the last body.
pub async fn ran(method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let op = accepted(method, url, body).await;
    let path = url.split('?').next().unwrap();
    let poll = format!("{path}/last_operation?operation={op}");
    poll_last_operation(&poll, 600, Duration::from_millis(100)).await
}
