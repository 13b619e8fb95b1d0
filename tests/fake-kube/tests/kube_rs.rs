//! kube-rs against fake-kube: over HTTP through the written kubeconfig, and
//! in process with the router as the client's transport.

use std::collections::BTreeMap;

use fake_kube::FakeKube;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher;
use kube::{Client, Config, Error};
use serde_json::json;

fn init_crypto() {
    // kube's rustls-tls with ring needs a process-wide provider, even for
    // plain-HTTP clusters (building the client sets up TLS anyway).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configured from the fixture's kubeconfig file, as a program
/// under test would be.
async fn client_from_kubeconfig(handle: &fake_kube::FakeKubeHandle) -> Client {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let path = handle.kubeconfig(dir.path());
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    Client::try_from(config).unwrap()
}

fn api_code(result: Result<impl std::fmt::Debug, Error>) -> (u16, String) {
    match result {
        Err(Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test]
async fn secret_and_configmap_crud() {
    let fake = FakeKube::start().await;
    let client = client_from_kubeconfig(&fake).await;
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    // Create: server fields filled in, stringData folded into data.
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("db".into()),
            labels: labels(&[("app", "db"), ("tier", "back")]),
            ..Default::default()
        },
        string_data: Some([("password".to_string(), "pw".to_string())].into()),
        ..Default::default()
    };
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert!(created.string_data.is_none());
    assert_eq!(created.data.unwrap()["password"].0, b"pw");
    let rv1: u64 = created.metadata.resource_version.unwrap().parse().unwrap();

    // AlreadyExists, and generateName.
    let (code, reason) = api_code(secrets.create(&PostParams::default(), &secret).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let generated = secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    generate_name: Some("gen-".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gen_name = generated.metadata.name.unwrap();
    assert!(
        gen_name.starts_with("gen-") && gen_name.len() == 9,
        "{gen_name}"
    );

    // A ConfigMap, with other labels, to list against.
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            labels: labels(&[("app", "web")]),
            ..Default::default()
        },
        data: Some([("mode".to_string(), "fast".to_string())].into()),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();

    // Get and list with selectors.
    let got = secrets.get("db").await.unwrap();
    assert_eq!(got.metadata.labels.as_ref().unwrap()["tier"], "back");
    let names = |list: kube::core::ObjectList<Secret>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|s| s.metadata.name.unwrap())
            .collect()
    };
    let lp = |sel: &str| ListParams::default().labels(sel);
    assert_eq!(names(secrets.list(&lp("app=db")).await.unwrap()), ["db"]);
    assert_eq!(
        names(secrets.list(&lp("app!=db")).await.unwrap()),
        std::slice::from_ref(&gen_name)
    );
    assert_eq!(names(secrets.list(&lp("tier")).await.unwrap()), ["db"]);
    assert_eq!(
        names(secrets.list(&lp("!tier")).await.unwrap()),
        std::slice::from_ref(&gen_name)
    );
    assert_eq!(
        names(secrets.list(&lp("app in (db,web)")).await.unwrap()),
        ["db"]
    );
    let by_name = ListParams::default().fields("metadata.name=db");
    assert_eq!(names(secrets.list(&by_name).await.unwrap()), ["db"]);
    let all_cms: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(all_cms.list(&lp("app=web")).await.unwrap().items.len(), 1);
    let list = secrets.list(&ListParams::default()).await.unwrap();
    assert!(list.metadata.resource_version.is_some());

    // Replace: with the current resourceVersion it works and bumps it; with
    // the old one it is a 409 Conflict.
    let mut edited = got.clone();
    edited.metadata.labels = labels(&[("app", "db"), ("tier", "data")]);
    let replaced = secrets
        .replace("db", &PostParams::default(), &edited)
        .await
        .unwrap();
    let rv2: u64 = replaced.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv2 > rv1);
    let (code, reason) = api_code(secrets.replace("db", &PostParams::default(), &edited).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // A no-op replace doesn't bump the resourceVersion.
    let current = secrets.get("db").await.unwrap();
    let same = secrets
        .replace("db", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        current.metadata.resource_version
    );

    // Merge patch.
    let patched = cms
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"mode": null, "size": "xl"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap(),
        [("size".to_string(), "xl".to_string())].into()
    );

    // Server-side apply: creates, then updates, dropping the fields the
    // manager no longer applies; another manager conflicts unless forced.
    let ssa = PatchParams::apply("tester");
    let apply =
        async |cm: serde_json::Value| cms.patch("applied", &ssa, &Patch::Apply(cm)).await.unwrap();
    let applied = apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied", "labels": {"via": "ssa"}},
        "data": {"a": "1", "b": "2"},
    }))
    .await;
    assert_eq!(applied.data.as_ref().unwrap().len(), 2);
    assert_eq!(
        applied.metadata.managed_fields.unwrap()[0]
            .manager
            .as_deref(),
        Some("tester")
    );
    let applied = apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"a": "1"},
    }))
    .await;
    assert_eq!(
        applied.data.unwrap(),
        [("a".to_string(), "1".to_string())].into()
    );
    assert!(applied.metadata.labels.is_none_or(|l| l.is_empty()));
    let other = Patch::Apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"a": "changed"},
    }));
    let (code, reason) = api_code(
        cms.patch("applied", &PatchParams::apply("other"), &other)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let forced = cms
        .patch("applied", &PatchParams::apply("other").force(), &other)
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "changed");

    // Delete, then 404s everywhere.
    let deleted = secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_right(), "a Secret DELETE answers with a Status");
    assert_eq!(api_code(secrets.get("db").await).0, 404);
    let (code, reason) = api_code(secrets.delete("db", &DeleteParams::default()).await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(
        api_code(secrets.replace("db", &PostParams::default(), &edited).await).0,
        404
    );
    assert_eq!(
        api_code(
            cms.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
                .await
        )
        .0,
        404
    );
    assert!(secrets.get_opt("db").await.unwrap().is_none());

    // The fixture sees the same state.
    assert!(fake.get("v1", "secrets", Some("default"), "db").is_none());
    let stored = fake
        .get("v1", "configmaps", Some("default"), "applied")
        .unwrap();
    assert_eq!(stored["data"]["a"], "changed");
    assert!(fake.requests().iter().any(
        |(m, p)| m == "PATCH" && p.starts_with("/api/v1/namespaces/default/configmaps/applied")
    ));
}

#[tokio::test]
async fn namespaces_gate_and_cascade() {
    let fake = FakeKube::start().await;
    let client = client_from_kubeconfig(&fake).await;
    let missing: Api<Secret> = Api::namespaced(client.clone(), "nowhere");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let (code, reason) = api_code(missing.create(&PostParams::default(), &secret).await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("nowhere".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    missing
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert_eq!(fake.list("secrets", Some("nowhere")).len(), 1);

    namespaces
        .delete("nowhere", &DeleteParams::default())
        .await
        .unwrap();
    assert!(fake.list("secrets", Some("nowhere")).is_empty());
    assert_eq!(api_code(missing.get("s").await).0, 404);
}

#[tokio::test]
async fn faults_are_injected_once() {
    let fake = FakeKube::start().await;
    let client = client_from_kubeconfig(&fake).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let path = "/api/v1/namespaces/default/configmaps";
    fake.fail_next("get", path, 500);
    let (code, reason) = api_code(cms.list(&ListParams::default()).await);
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    cms.list(&ListParams::default()).await.unwrap();

    // kube-rs retries 429/503/504 by itself: one injected 503 is absorbed,
    // and the log shows the retry.
    fake.clear_requests();
    fake.fail_next("*", path, 503);
    cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(fake.requests().len(), 2, "{:?}", fake.requests());
}

#[tokio::test]
async fn subject_access_reviews_follow_the_rule() {
    let fake = FakeKube::start().await;
    let client = client_from_kubeconfig(&fake).await;
    let reviews: Api<SubjectAccessReview> = Api::all(client);
    let allowed = async |verb: &str| {
        let answer = reviews
            .create(&PostParams::default(), &secrets_review(verb))
            .await
            .unwrap();
        answer.status.unwrap().allowed
    };
    assert!(allowed("get").await);

    fake.set_authorizer(|spec| spec["resourceAttributes"]["verb"] != "delete");
    assert!(!allowed("delete").await);
    assert!(allowed("list").await);
}

/// A review of user `broker` doing `verb` on Secrets in `default`.
fn secrets_review(verb: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("broker".into()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some("secrets".into()),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn watcher_sees_changes() {
    let fake = FakeKube::start().await;
    let client = client_from_kubeconfig(&fake).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let cm = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: labels(&[("watched", "yes")]),
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();

    let config = watcher::Config::default().labels("watched=yes");
    let mut stream = watcher::watcher(cms.clone(), config).boxed();
    // The initial listing.
    let mut seen = Vec::new();
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            watcher::Event::InitApply(o) => seen.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["before"]);
    // Then live events.
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    cms.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    let mut live = Vec::new();
    while live.len() < 2 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
            .await
            .expect("watch event in time")
            .unwrap()
            .unwrap();
        match event {
            watcher::Event::Apply(o) => live.push(format!("apply {}", o.metadata.name.unwrap())),
            watcher::Event::Delete(o) => live.push(format!("delete {}", o.metadata.name.unwrap())),
            _ => {}
        }
    }
    assert_eq!(live, ["apply after", "delete before"]);
}

#[tokio::test]
async fn in_process_router_and_custom_resources() {
    init_crypto();
    // No socket: the router is the client's transport.
    let state = FakeKube::new();
    let client = Client::new(fake_kube::router(state.clone()), "default");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    // Discovery now lists the group, and its objects can be written.
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (resource, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == "Widget")
        .expect("Widget discovered");
    assert_eq!(caps.scope, Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3},
    }))
    .unwrap();
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    let got = widgets.get("w1").await.unwrap();
    assert_eq!(got.data["spec"]["size"], 3);
    assert_eq!(got.metadata.generation, Some(1));
    assert_eq!(resource.plural, "widgets");

    // Deleting the CRD takes its objects along.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert!(state.list("widgets", None).is_empty());
    let (code, _) = api_code(widgets.get("w1").await);
    assert_eq!(code, 404);
    // Whatever the transport, everything is logged.
    assert!(
        state
            .requests()
            .iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/apis"))
    );
}
