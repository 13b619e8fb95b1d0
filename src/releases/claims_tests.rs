use super::*;

fn owner<'a>(ns: &'a str, release: &'a str, instance: &'a str, own: bool) -> ReleaseOwner<'a> {
    ReleaseOwner {
        namespace: ns,
        release,
        instance,
        own_namespace: own,
    }
}

fn ids(list: &[(&str, &str)]) -> Vec<ObjectId> {
    list.iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

fn binding<'a>(instance: &'a str, id: &'a str) -> BindingOwner<'a> {
    BindingOwner {
        instance,
        binding: id,
        dependent: None,
    }
}

#[test]
fn object_ids_take_kind_and_name() {
    let docs = vec![
        json!({"kind": "Secret", "metadata": {"name": "a"}}),
        json!({"kind": "ConfigMap"}),
        json!(null),
        json!({"kind": "Service", "metadata": {"name": "b"}}),
    ];
    assert_eq!(object_ids(&docs), ids(&[("Secret", "a"), ("Service", "b")]));
}

#[tokio::test]
async fn one_kind_and_name_has_one_release() {
    let dir = tempfile::tempdir().unwrap();
    let c = Claims::new(dir.path());
    let mine = ids(&[("Secret", "db"), ("ConfigMap", "db")]);
    c.claim_release(&owner("apps", "cb-a", "a", false), &mine)
        .await
        .unwrap();
    // The same release again (an upgrade) keeps its names.
    c.claim_release(&owner("apps", "cb-a", "a", false), &mine)
        .await
        .unwrap();
    let e = c
        .claim_release(
            &owner("apps", "cb-b", "b", false),
            &ids(&[("Secret", "db")]),
        )
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("Secret apps/db already belongs to another release"),
        "{e}"
    );
    // Another kind, or another namespace, is another object.
    c.claim_release(
        &owner("apps", "cb-b", "b", false),
        &ids(&[("Service", "db")]),
    )
    .await
    .unwrap();
    c.claim_release(&owner("other", "cb-c", "c", false), &mine)
        .await
        .unwrap();
    // Once a is gone, b may have the name.
    c.drop_release(&owner("apps", "cb-a", "a", false))
        .await
        .unwrap();
    c.claim_release(
        &owner("apps", "cb-b", "b", false),
        &ids(&[("Secret", "db")]),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn binding_secrets_and_release_objects_never_share_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let c = Claims::new(dir.path());
    let secret = |name: &str| secret_ref("apps", name);
    c.claim_release(
        &owner("apps", "cb-a", "a", false),
        &ids(&[("ConfigMap", "web")]),
    )
    .await
    .unwrap();
    // Any kind of object holds the name against a binding Secret.
    let e = c
        .claim_binding(&secret("web"), &binding("x", "b1"))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("apps/web") && e.message.contains("secret_name"),
        "{e}"
    );
    assert!(!dir.path().join("apps/.claims/web").exists());
    // And the other way round.
    c.claim_binding(&secret("creds"), &binding("x", "b1"))
        .await
        .unwrap();
    let e = c
        .claim_release(
            &owner("apps", "cb-a", "a", false),
            &ids(&[("Deployment", "creds")]),
        )
        .await
        .unwrap_err();
    assert!(
        e.message.contains("Deployment apps/creds") && e.message.contains("binding Secret"),
        "{e}"
    );
    // The refused release keeps what it had.
    let e = c
        .claim_binding(&secret("web"), &binding("y", "b2"))
        .await
        .unwrap_err();
    assert!(e.message.contains("apps/web"), "{e}");
    // Another binding, same name: refused; the same binding again: fine.
    let e = c
        .claim_binding(&secret("creds"), &binding("y", "b1"))
        .await
        .unwrap_err();
    assert!(e.message.contains("another binding"), "{e}");
    c.claim_binding(&secret("creds"), &binding("x", "b1"))
        .await
        .unwrap();
    assert!(
        c.holds_binding(&secret("creds"), &binding("x", "b1"))
            .await
            .unwrap()
    );
    assert!(
        !c.holds_binding(&secret("creds"), &binding("y", "b1"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_instance_namespace_is_taken_only_empty_and_then_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = Claims::new(dir.path());
    // Someone else's release in cb-shop first.
    c.claim_release(
        &owner("cb-shop", "cb-x", "x", false),
        &ids(&[("Secret", "s")]),
    )
    .await
    .unwrap();
    let e = c
        .claim_release(&owner("cb-shop", "cb-shop", "shop", true), &[])
        .await
        .unwrap_err();
    assert!(e.message.contains("namespace cb-shop already holds"), "{e}");
    assert!(!dir.path().join("cb-shop/.owner").exists());
    // Someone else's binding Secret has the same effect.
    c.claim_binding(&secret_ref("cb-own", "creds"), &binding("y", "b"))
        .await
        .unwrap();
    let e = c
        .claim_release(&owner("cb-own", "cb-own", "own", true), &[])
        .await
        .unwrap_err();
    assert!(e.message.contains("namespace cb-own already holds"), "{e}");

    // An empty namespace is taken, and then nobody else gets in.
    let mine = owner("cb-free", "cb-free", "free", true);
    c.claim_release(&mine, &ids(&[("Secret", "cb-free")]))
        .await
        .unwrap();
    c.claim_release(&mine, &ids(&[("Secret", "cb-free")]))
        .await
        .unwrap();
    let e = c
        .claim_release(&owner("cb-free", "cb-y", "y", false), &[])
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("namespace cb-free belongs to another service instance"),
        "{e}"
    );
    let e = c
        .claim_binding(&secret_ref("cb-free", "n"), &binding("y", "b"))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("belongs to another service instance"),
        "{e}"
    );
    // Its own bindings, and a dependency's Secret placed for it, are fine.
    c.claim_binding(&secret_ref("cb-free", "n"), &binding("free", "b"))
        .await
        .unwrap();
    let dep = BindingOwner {
        instance: "y",
        binding: "d",
        dependent: Some("free"),
    };
    c.claim_binding(&secret_ref("cb-free", "dep"), &dep)
        .await
        .unwrap();

    // Deleting: another instance's drop leaves the owner; the owner's
    // drop frees the namespace once its bindings are gone.
    c.drop_release(&owner("cb-free", "cb-y", "y", true))
        .await
        .unwrap();
    assert!(dir.path().join("cb-free/.owner").exists());
    c.drop_binding(&secret_ref("cb-free", "n")).await.unwrap();
    c.drop_binding(&secret_ref("cb-free", "dep")).await.unwrap();
    c.drop_release(&mine).await.unwrap();
    assert!(!dir.path().join("cb-free").exists());
}

#[tokio::test]
async fn a_dependency_bound_before_its_dependent_does_not_block_its_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let c = Claims::new(dir.path());
    // `uses`: the used instance's binding lands in the dependent's folder
    // before the dependent's first render.
    let dep = BindingOwner {
        instance: "db",
        binding: "uses-1",
        dependent: Some("app"),
    };
    c.claim_binding(&secret_ref("cb-app", "cb-app-db"), &dep)
        .await
        .unwrap();
    let file = dir.path().join("cb-app/cb-app/bindings/cb-app-db.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "kind: Secret\n").unwrap();
    c.claim_release(&owner("cb-app", "cb-app", "app", true), &[])
        .await
        .unwrap();
    // The same claim with the file elsewhere is somebody else's Secret.
    c.claim_binding(&secret_ref("cb-web", "cb-web-db"), &dep)
        .await
        .unwrap();
    let e = c
        .claim_release(&owner("cb-web", "cb-web", "web", true), &[])
        .await
        .unwrap_err();
    assert!(e.message.contains("already holds"), "{e}");
}

#[test]
fn a_claim_is_held_only_with_its_own_bytes_and_always_synced_into_its_folder() {
    use crate::store::seal::synced;
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("ns").join(".claims");
    let path = claims.join("cb-bind-1");
    synced();
    assert!(hold_now(&path, b"[\"a\",\"1\"]").unwrap());
    // The two new folders into their parents, then the claim into its own.
    let root = dir.path().to_path_buf();
    assert_eq!(synced(), [root.clone(), root.join("ns"), claims.clone()]);
    // Made before (an attempt killed before its sync): held, synced again.
    assert!(hold_now(&path, b"[\"a\",\"1\"]").unwrap());
    assert_eq!(synced(), std::slice::from_ref(&claims));
    // Somebody else's: not held, nothing synced, nothing changed.
    assert!(!hold_now(&path, b"[\"b\",\"2\"]").unwrap());
    assert!(synced().is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), b"[\"a\",\"1\"]");
}
