//! Opt-in stand-ins for the controllers a real cluster runs
//! ([`crate::FakeKube::set_workloads_ready`]): when enabled, every write of a
//! workload also gives it the `status` its controller would report once
//! everything is up, so `helm --wait` (Helm 3's polling and Helm 4's kstatus
//! watcher) sees it ready at once. Off by default, because it is not what an
//! API server does by itself.

use serde_json::{Value, json};

/// The "all is well" status for `obj` of resource `group`/`plural`, or
/// `None` for resources without a controller to imitate.
pub fn ready_status(group: &str, plural: &str, obj: &Value) -> Option<Value> {
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let now = crate::store::now();
    let condition = |kind: &str, reason: &str| {
        json!({"type": kind, "status": "True", "reason": reason,
               "lastTransitionTime": now, "lastUpdateTime": now})
    };
    Some(match (group, plural) {
        ("apps", "deployments") => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                condition("Available", "MinimumReplicasAvailable"),
                condition("Progressing", "NewReplicaSetAvailable"),
            ],
        }),
        ("apps", "replicasets") => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }),
        ("apps", "statefulsets") => {
            let revision = format!("{}-fake", obj["metadata"]["name"].as_str().unwrap_or("sts"));
            json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
                "currentRevision": revision,
                "updateRevision": revision,
            })
        }
        ("apps", "daemonsets") => json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "updatedNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "numberMisscheduled": 0,
        }),
        ("batch", "jobs") => json!({
            "succeeded": obj["spec"]["completions"].as_i64().unwrap_or(1),
            "startTime": now,
            "completionTime": now,
            "conditions": [
                condition("SuccessCriteriaMet", "CompletionsReached"),
                condition("Complete", "CompletionsReached"),
            ],
        }),
        ("", "persistentvolumeclaims") => json!({
            "phase": "Bound",
            "accessModes": obj["spec"]["accessModes"],
            "capacity": obj["spec"]["resources"]["requests"],
        }),
        ("", "pods") => json!({
            "phase": "Running",
            "conditions": [condition("Ready", "PodReady"), condition("ContainersReady", "PodReady")],
        }),
        ("", "services") if obj["spec"]["type"] == "LoadBalancer" => {
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}})
        }
        ("policy", "poddisruptionbudgets") => json!({
            "observedGeneration": generation,
            "currentHealthy": 1,
            "desiredHealthy": 1,
            "expectedPods": 1,
            "disruptionsAllowed": 0,
        }),
        _ => return None,
    })
}

/// The ReplicaSet the Deployment controller would run for `deploy`'s
/// current pod template: named `{deployment}-{template hash}`, labelled with
/// `pod-template-hash`, controlled by the Deployment. Helm 3's `--wait` looks
/// for it. Returns its name and body (without server-set metadata).
pub fn replica_set_for(deploy: &Value) -> (String, Value) {
    let meta = &deploy["metadata"];
    let template = &deploy["spec"]["template"];
    let hash = template_hash(template);
    let name = format!("{}-{hash}", meta["name"].as_str().unwrap_or_default());
    let mut template = template.clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deploy["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": template["metadata"]["labels"],
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "name": meta["name"], "uid": meta["uid"],
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": deploy["spec"]["replicas"].as_i64().unwrap_or(1),
            "selector": selector,
            "template": template,
        },
    });
    (name, rs)
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn controlled_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["uid"] == uid && r["controller"] == true)
}

/// A stable 10-character hash of a pod template, in the alphabet the real
/// controller uses for `pod-template-hash`.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = template
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
