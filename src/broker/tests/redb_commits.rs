//! Store commits on the real embedded store (redb), where a commit is an
//! fsync: what the counting store of `writes_tests.rs` can't see.

use super::*;
use crate::broker::model::{Instance, InstanceState};
use crate::broker::ports::{Store, Table};
use crate::store::redb::RedbStore;
use crate::store::seal::Sealer;

/// On the redb store, a deprovision's settling write carries the removal
/// of every binding it leaves behind: one commit (one fsync) for the
/// tombstone and the removals, and a reopened store holds exactly that.
#[tokio::test]
async fn a_sync_deprovision_and_its_binding_removals_are_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let (sealer, _) = Sealer::load_or_create(&dir.path().join("key")).unwrap();
        Arc::new(RedbStore::open(&dir.path().join("db.redb"), sealer).unwrap())
    };
    let store = open();
    let backend = Arc::new(Scripted::default());
    let b = broker(store.clone(), backend.clone());
    b.provision(provision_req("i", "hi"), RequestMeta::default())
        .await
        .unwrap();
    // One binding left bound, one unbound (a tombstone).
    for id in ["left", "gone"] {
        let req = BindRequest {
            instance_id: "i".into(),
            binding_id: id.into(),
            service_id: "svc".into(),
            plan_id: "plan".into(),
            ..Default::default()
        };
        b.bind(req, RequestMeta::default()).await.unwrap();
    }
    let req = UnbindRequest {
        instance_id: "i".into(),
        binding_id: "gone".into(),
        service_id: "svc".into(),
        plan_id: "plan".into(),
    };
    b.unbind(req, RequestMeta::default()).await.unwrap();
    assert_eq!(store.list(Table::Bindings, "").await.unwrap().len(), 2);
    let (commits, _) = store.commit_counts();
    let out = b
        .deprovision(deprovision_req("i"), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(out, Outcome::Done);
    assert_eq!(store.commit_counts().0 - commits, 1, "one commit");
    assert!(backend.calls().contains(&"unbind left".to_string()));
    drop(b);
    drop(store);
    let store = open();
    assert!(store.list(Table::Bindings, "").await.unwrap().is_empty());
    let (raw, _) = store.get(Table::Instances, "i").await.unwrap().unwrap();
    let inst: Instance = serde_json::from_slice(&raw).unwrap();
    assert_eq!(inst.state, InstanceState::Deleted);
    assert_eq!(
        inst.operations.last().map(|o| (o.kind, o.state)),
        Some((OpKind::Deprovision, OpState::Succeeded))
    );
}
