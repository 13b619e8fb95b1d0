//! The redb store's index of instance summaries, the dashboard's table:
//! kept in the write transaction that changes the instance, so it is never
//! behind or ahead of the records. Summaries are keyed by their table
//! order ([`InstanceSummary::order_key`]: newest operation first) and
//! sealed like records; each instance's current order key is kept so an
//! update finds the entry it replaces; and [`summary_filters`] lists each
//! namespace's, service's and state's instances in the same order.
//!
//! A page without filters reads the page (the total is the table's length,
//! which redb keeps). A page with one filter reads its range: the page's
//! summaries, and the range's keys for the total. With two or three, the
//! range of one (namespace, else service) is read in order and each
//! summary opened until the page is full and one more matches. The order
//! key holds the instance id and when its newest operation started;
//! everything else is sealed or keyed.
//!
//! [`summary_filters`]: super::summary_filters

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::seal::Sealer;
use super::summary_filters::{FILTERS, Filters, filters_beyond_range};
use crate::broker::ports::{StoreError, Table};
use crate::broker::summary::{InstanceSummary, SummaryPage, SummaryQuery};

const ORDER: TableDefinition<&str, &[u8]> = TableDefinition::new("instance_summaries");
const KEYS: TableDefinition<&str, &str> = TableDefinition::new("instance_summary_keys");

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn aad(order_key: &str) -> String {
    format!("instance_summaries/{order_key}")
}

fn open_summary(sealer: &Sealer, order_key: &str, sealed: &[u8]) -> Option<InstanceSummary> {
    let plain = sealer.open(&aad(order_key), sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Creates the tables (so readers never meet "no such table") and makes
/// the index whole: every instance summarized when `summarized` is false
/// (a file from before the index; `open` turns a stored value into its
/// record), the filters rebuilt when their tag key is new.
pub(super) fn prepare(
    tx: &WriteTransaction,
    sealer: &Sealer,
    summarized: bool,
    instances: TableDefinition<&str, &[u8]>,
    open: impl Fn(&str, &[u8]) -> Option<Vec<u8>>,
) -> Result<Filters, StoreError> {
    tx.open_table(KEYS).map_err(backend)?;
    let (filters, fresh) = Filters::load(tx, sealer)?;
    if !summarized {
        tx.delete_table(ORDER).map_err(backend)?;
        tx.delete_table(KEYS).map_err(backend)?;
        tx.delete_table(FILTERS).map_err(backend)?;
        tx.open_table(FILTERS).map_err(backend)?;
        let t = tx.open_table(instances).map_err(backend)?;
        for entry in t.iter().map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            if let Some(plain) = open(k.value(), v.value()) {
                let summary = summary_of(Table::Instances, k.value(), &plain);
                index_summary(
                    tx,
                    sealer,
                    &filters,
                    Table::Instances,
                    k.value(),
                    summary.as_ref(),
                )?;
            }
        }
    } else if fresh {
        let order = tx.open_table(ORDER).map_err(backend)?;
        for entry in order.iter().map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            if let Some(s) = open_summary(sealer, k.value(), v.value()) {
                filters.update(tx, &s, k.value(), true)?;
            }
        }
    }
    tx.open_table(ORDER).map_err(backend)?;
    Ok(filters)
}

/// Keeps `key`'s summary in step with its record: `summary` is the new
/// one ([`summary_of`] its plaintext; `None`: removed or none). Call it in the transaction that writes the record.
/// Bindings have no summary; a record that isn't an instance's JSON gets
/// none either.
pub(super) fn index_summary(
    tx: &WriteTransaction,
    sealer: &Sealer,
    filters: &Filters,
    table: Table,
    key: &str,
    summary: Option<&InstanceSummary>,
) -> Result<(), StoreError> {
    if table != Table::Instances {
        return Ok(());
    }
    let mut keys = tx.open_table(KEYS).map_err(backend)?;
    let mut order = tx.open_table(ORDER).map_err(backend)?;
    let old = keys
        .remove(key)
        .map_err(backend)?
        .map(|v| v.value().to_string());
    if let Some(old) = old {
        let gone = order.remove(old.as_str()).map_err(backend)?;
        if let Some(s) = gone.and_then(|v| open_summary(sealer, &old, v.value())) {
            filters.update(tx, &s, &old, false)?;
        }
    }
    let Some(summary) = summary else {
        return Ok(());
    };
    let order_key = summary.order_key();
    let json = serde_json::to_vec(&summary).expect("summaries serialize");
    let sealed = sealer.seal(&aad(&order_key), &json);
    order
        .insert(order_key.as_str(), sealed.as_slice())
        .map_err(backend)?;
    keys.insert(key, order_key.as_str()).map_err(backend)?;
    filters.update(tx, summary, &order_key, true)
}

/// The summary an instance record written as `plain` gets (none for
/// bindings, nor for a record that isn't an instance's JSON).
pub(super) fn summary_of(table: Table, key: &str, plain: &[u8]) -> Option<InstanceSummary> {
    if table != Table::Instances {
        return None;
    }
    let mut summary = InstanceSummary::of_record(plain)?;
    summary.id = key.to_string();
    Some(summary)
}

/// The page `q` asks for.
pub(super) fn page(
    tx: &redb::ReadTransaction,
    sealer: &Sealer,
    filters: &Filters,
    q: &SummaryQuery,
) -> Result<SummaryPage, StoreError> {
    let order = tx.open_table(ORDER).map_err(backend)?;
    let Some(tag) = filters.range_of(q) else {
        let total = order.len().map_err(backend)? as usize;
        let keys = order.iter().map_err(backend)?.skip(q.offset).take(q.limit);
        let mut page = SummaryPage::default();
        for entry in keys {
            let (k, v) = entry.map_err(backend)?;
            match open_summary(sealer, k.value(), v.value()) {
                Some(s) => page.rows.push(s),
                None => page.skipped += 1,
            }
        }
        page.total = Some(total);
        page.more = q.offset + q.limit < total;
        return Ok(page);
    };
    let range = tx.open_table(FILTERS).map_err(backend)?;
    let every = !filters_beyond_range(q);
    let (mut page, mut matched) = (SummaryPage::default(), 0);
    for entry in range.range(tag.as_slice()..).map_err(backend)? {
        let (k, _) = entry.map_err(backend)?;
        let Some(order_key) = k.value().strip_prefix(tag.as_slice()) else {
            break;
        };
        let order_key = std::str::from_utf8(order_key).map_err(backend)?;
        let wanted = matched >= q.offset && page.rows.len() < q.limit;
        if every && !wanted {
            // One filter: every key of the range matches; count it unread.
            matched += 1;
            continue;
        }
        let found = order.get(order_key).map_err(backend)?;
        let Some(s) = found.and_then(|v| open_summary(sealer, order_key, v.value())) else {
            page.skipped += 1;
            continue;
        };
        if !q.matches(&s) {
            continue;
        }
        if matched >= q.offset {
            if page.rows.len() == q.limit {
                page.more = true;
                return Ok(page);
            }
            page.rows.push(s);
        }
        matched += 1;
    }
    page.more = q.offset + page.rows.len() < matched;
    page.total = Some(matched);
    Ok(page)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::broker::model::{InstanceState, OpKind, OpState};
    use crate::broker::ports::{Expect, Store};
    use crate::store::redb::RedbStore;

    fn store(dir: &Path) -> RedbStore {
        let (sealer, _) = Sealer::load_or_create(&dir.join("key")).unwrap();
        RedbStore::open(&dir.join("db.redb"), sealer).unwrap()
    }

    fn instance(id: &str, ns: &str, state: &str, started: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "service_id": if ns == "b" { "svc-2" } else { "svc-1" }, "plan_id": "p",
            "namespace": ns, "state": state, "secrets": {"password": "hunter2-secret"},
            "parameters": {"token": "param-secret"},
            "operations": [{"kind": "provision", "state": "succeeded", "started_at": started}]
        }))
        .unwrap()
    }

    async fn ids(s: &RedbStore, q: SummaryQuery) -> (Vec<String>, Option<usize>, bool) {
        let p = s.instance_summaries(&q).await.unwrap().unwrap();
        let ids = p.rows.into_iter().map(|r| r.id).collect();
        (ids, p.total, p.more)
    }

    fn q(offset: usize, limit: usize) -> SummaryQuery {
        SummaryQuery {
            offset,
            limit,
            ..Default::default()
        }
    }

    /// Six instances, `i0`..`i5`: even ones in namespace `a` (service
    /// `svc-1`), odd ones in `b` (`svc-2`); `i4` and `i5` provisioning.
    /// Writes instance `id` (see [`instance`]) if `expect` holds.
    async fn put_instance(
        s: &RedbStore,
        id: &str,
        ns: &str,
        state: &str,
        started: u64,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        s.put(
            Table::Instances,
            id,
            instance(id, ns, state, started),
            expect,
        )
        .await
    }

    async fn six(s: &RedbStore) -> Vec<u64> {
        let mut versions = Vec::new();
        for i in 0..6u64 {
            let (ns, state) = (
                ["a", "b"][i as usize % 2],
                ["ready", "provisioning"][(i / 4) as usize],
            );
            let id = format!("i{i}");
            let v = put_instance(s, &id, ns, state, 10 + i, Expect::Absent).await;
            versions.push(v.unwrap());
        }
        versions
    }

    #[tokio::test]
    async fn pages_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        six(&s).await;
        // Bindings have no summaries.
        s.put(
            Table::Bindings,
            "i0\0b",
            instance("b", "a", "ready", 99),
            Expect::Absent,
        )
        .await
        .unwrap();
        let s5 = (vec!["i5".into(), "i4".into()], Some(6), true);
        assert_eq!(ids(&s, q(0, 2)).await, s5);
        assert_eq!(
            ids(&s, q(4, 2)).await,
            (vec!["i1".into(), "i0".into()], Some(6), false)
        );
        let by_ns = SummaryQuery {
            namespace: Some("b".into()),
            ..q(1, 1)
        };
        assert_eq!(ids(&s, by_ns).await, (vec!["i3".into()], Some(3), true));
        let by_svc = SummaryQuery {
            service_id: Some("svc-2".into()),
            ..q(0, 5)
        };
        assert_eq!(
            ids(&s, by_svc).await,
            (vec!["i5".into(), "i3".into(), "i1".into()], Some(3), false)
        );
        let by_state = SummaryQuery {
            state: Some(InstanceState::Provisioning),
            namespace: Some("a".into()),
            ..q(0, 5)
        };
        assert_eq!(ids(&s, by_state).await, (vec!["i4".into()], Some(1), false));
    }

    #[tokio::test]
    async fn the_index_follows_every_write_and_only_those_that_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let versions = six(&s).await;
        let by_state = SummaryQuery {
            state: Some(InstanceState::Provisioning),
            namespace: Some("a".into()),
            ..q(0, 5)
        };
        // An update moves its row (newer operation, new state); a stale
        // write (compare-and-swap failure) changes nothing; a delete drops it.
        let v = put_instance(
            &s,
            "i0",
            "a",
            "provisioning",
            50,
            Expect::Version(versions[0]),
        )
        .await
        .unwrap();
        let stale = put_instance(
            &s,
            "i1",
            "a",
            "provisioning",
            60,
            Expect::Version(versions[0]),
        )
        .await;
        assert!(matches!(stale, Err(StoreError::Conflict)));
        assert_eq!(ids(&s, by_state.clone()).await.0, ["i0", "i4"]);
        s.remove(Table::Instances, "i4", versions[4]).await.unwrap();
        assert!(matches!(
            s.remove(Table::Instances, "i0", v + 100).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(ids(&s, by_state).await.0, ["i0"]);
        assert_eq!(
            ids(&s, q(0, 3)).await,
            (vec!["i0".into(), "i5".into(), "i3".into()], Some(5), true)
        );
        let p = s.instance_summaries(&q(0, 1)).await.unwrap().unwrap();
        assert_eq!(
            p.rows[0].last_op,
            Some((OpKind::Provision, OpState::Succeeded))
        );
        // The index survives a restart; nothing secret or plain in the file.
        drop(s);
        let s = store(dir.path());
        assert_eq!(ids(&s, q(0, 10)).await.1, Some(5));
        let raw = std::fs::read(dir.path().join("db.redb")).unwrap();
        for needle in [&b"secret"[..], b"svc-1", b"provisioning"] {
            assert!(!raw.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[tokio::test]
    async fn a_file_from_before_the_summaries_is_summarized_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        for i in 0..3u64 {
            let id = format!("i{i}");
            s.put(
                Table::Instances,
                &id,
                instance(&id, "a", "ready", i),
                Expect::Absent,
            )
            .await
            .unwrap();
        }
        s.import(
            Table::Instances,
            vec![("junk".into(), b"not json".to_vec())],
        )
        .unwrap();
        drop(s);
        {
            let db = redb::Database::create(dir.path().join("db.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.delete_table(ORDER).unwrap();
            tx.delete_table(KEYS).unwrap();
            tx.delete_table(FILTERS).unwrap();
            let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
            tx.open_table(meta)
                .unwrap()
                .remove("summaries_indexed")
                .unwrap();
            tx.commit().unwrap();
        }
        let s = store(dir.path());
        assert_eq!(
            ids(&s, q(0, 10)).await,
            (vec!["i2".into(), "i1".into(), "i0".into()], Some(3), false)
        );
    }

    #[tokio::test]
    async fn filters_are_rebuilt_when_their_tag_key_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        six(&s).await;
        drop(s);
        {
            let db = redb::Database::create(dir.path().join("db.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            let t: TableDefinition<&str, &[u8]> = TableDefinition::new("instance_summary_tag_key");
            tx.delete_table(t).unwrap();
            tx.commit().unwrap();
        }
        let s = store(dir.path());
        let by_ns = SummaryQuery {
            namespace: Some("b".into()),
            ..q(0, 10)
        };
        let all_b = (vec!["i5".into(), "i3".into(), "i1".into()], Some(3), false);
        assert_eq!(ids(&s, by_ns).await, all_b);
    }
}
