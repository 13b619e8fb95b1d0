//! The store thread's groups: each request's own outcome inside one
//! transaction, and one answer per request.

use redb::ReadableDatabase;

use super::super::{INSTANCES, UNSETTLED_INSTANCES};
use super::*;

fn db(dir: &std::path::Path) -> (Database, Keys) {
    let db = Database::create(dir.join("db.redb")).unwrap();
    let (sealer, _) = Sealer::load_or_create(&dir.join("store.key")).unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(INSTANCES).unwrap();
    tx.open_table(META).unwrap();
    tx.open_table(UNSETTLED_INSTANCES).unwrap();
    let (filters, _) = Filters::load(&tx, &sealer).unwrap();
    tx.commit().unwrap();
    (db, Keys(Arc::new(sealer), Arc::new(filters)))
}

fn put(key: &str, value: &str, expect: Expect) -> Write {
    Write::Put {
        table: Table::Instances,
        key: key.into(),
        sealed: value.as_bytes().to_vec(),
        indexing: Indexing::of(
            Table::Instances,
            key,
            br#"{"state":"provisioning","operations":[{"state":"in progress"}]}"#,
        ),
        expect,
        removals: Vec::new(),
    }
}

fn remove(key: &str, version: u64) -> Write {
    Write::Remove {
        table: Table::Instances,
        key: key.into(),
        version,
    }
}

const SETTLED: &[u8] = br#"{"state":"ready","operations":[{"state":"succeeded"}]}"#;

fn import(keys: &[&str]) -> Write {
    Write::Import {
        table: Table::Instances,
        rows: keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    b"imported".to_vec(),
                    Indexing::of(Table::Instances, k, SETTLED),
                )
            })
            .collect(),
    }
}

/// Every key with its version and value, and the version counter.
fn contents(db: &Database) -> (Vec<(String, u64, String)>, u64) {
    let tx = db.begin_write().unwrap();
    let t = tx.open_table(INSTANCES).unwrap();
    let all = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            let raw = v.value();
            let value = String::from_utf8(raw[8..].to_vec()).unwrap();
            (k.value().to_string(), stored_version(raw), value)
        })
        .collect();
    let meta = tx.open_table(META).unwrap();
    let counter = meta.get(VERSION_KEY).unwrap().unwrap().value();
    (all, counter)
}

fn outcome(a: &Answer) -> Result<u64, &'static str> {
    match a {
        Ok(v) => Ok(*v),
        Err(StoreError::Conflict) => Err("conflict"),
        Err(_) => Err("other"),
    }
}

#[test]
fn each_request_of_a_group_sees_the_ones_before_it_and_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (db, keys) = db(dir.path());
    let group = [
        put("a", "one", Expect::Absent),
        put("a", "lost", Expect::Absent),
        put("a", "two", Expect::Version(1)),
        remove("a", 1),
        put("b", "never", Expect::Version(7)),
        remove("a", 2),
        put("a", "three", Expect::Absent),
        put("c", "c", Expect::Absent),
    ];
    let answers = commit_group(&db, &keys, &group).unwrap();
    let got: Vec<_> = answers.iter().map(outcome).collect();
    assert_eq!(
        got,
        [
            Ok(1),
            Err("conflict"),
            Ok(2),
            Err("conflict"),
            Err("conflict"),
            Ok(0),
            Ok(3),
            Ok(4)
        ]
    );
    let (all, counter) = contents(&db);
    assert_eq!(
        all,
        [
            ("a".to_string(), 3, "three".to_string()),
            ("c".to_string(), 4, "c".to_string())
        ]
    );
    assert_eq!(counter, 4);
    // A later group continues the counter: no version is ever reused.
    let answers = commit_group(&db, &keys, &[put("a", "four", Expect::Version(3))]).unwrap();
    assert_eq!(outcome(&answers[0]), Ok(5));
}

#[test]
fn an_import_writes_all_its_rows_or_none_inside_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let (db, keys) = db(dir.path());
    let group = [
        put("c", "put", Expect::Absent),
        // Conflicts with the put just before it in the same group.
        import(&["d", "c"]),
        // Repeats a key of its own.
        import(&["e", "e"]),
        import(&["f", "g"]),
    ];
    let answers = commit_group(&db, &keys, &group).unwrap();
    let got: Vec<_> = answers.iter().map(outcome).collect();
    assert_eq!(got, [Ok(1), Err("conflict"), Err("conflict"), Ok(3)]);
    let keys: Vec<_> = contents(&db)
        .0
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    assert_eq!(
        keys,
        [
            ("c".to_string(), 1),
            ("f".to_string(), 2),
            ("g".to_string(), 3)
        ]
    );
    // The sweep index followed each write: the put's record is in
    // progress, the imported ones are not.
    let tx = db.begin_read().unwrap();
    let idx = tx.open_table(UNSETTLED_INSTANCES).unwrap();
    let indexed: Vec<_> = idx
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().to_string())
        .collect();
    assert_eq!(indexed, ["c"]);
}

fn requests(n: usize) -> (Vec<Request>, Vec<oneshot::Receiver<Answer>>) {
    (0..n)
        .map(|i| {
            let (reply, rx) = oneshot::channel();
            let write = put(&format!("k{i}"), "v", Expect::Absent);
            (Request { write, reply }, rx)
        })
        .unzip()
}

#[test]
fn a_failed_commit_answers_every_request_of_its_group_with_the_error() {
    let (group, mut answers) = requests(3);
    serve(group, |writes| {
        assert_eq!(writes.len(), 3);
        Err("disk full".into())
    });
    for a in &mut answers {
        match a.try_recv().expect("answered") {
            Err(StoreError::Backend(m)) => assert_eq!(m, "disk full"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_committed_group_answers_each_request_its_own_outcome() {
    let (group, mut answers) = requests(3);
    let mut committed = false;
    serve(group, |_| {
        committed = true;
        Ok(vec![Ok(7), Err(StoreError::Conflict), Ok(9)])
    });
    assert!(committed);
    let got: Vec<_> = answers
        .iter_mut()
        .map(|a| outcome(&a.try_recv().unwrap()))
        .collect();
    assert_eq!(got, [Ok(7), Err("conflict"), Ok(9)]);
}
