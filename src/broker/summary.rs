//! What the dashboard's instances table shows of each instance, and how a
//! page of them is asked for. A store may keep these summaries as an index
//! ([`super::ports::Store::instance_summaries`]) so a page costs the page,
//! not every record; [`page_of`] is the same answer computed from every
//! summary, for stores that keep none.
//!
//! A summary holds no parameters, context, secrets or credentials: only
//! ids, the namespace, states and times.

use serde::{Deserialize, Serialize};

use super::model::{InstanceState, OpKind, OpState};

/// One row of the instances table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSummary {
    /// Instance id.
    pub id: String,
    /// Service offering id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Namespace of its release.
    pub namespace: String,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Kind and state of its newest operation, if it has one.
    pub(crate) last_op: Option<(OpKind, OpState)>,
    /// Unix seconds its newest operation started (0 without one): the
    /// table's order, newest first.
    pub last_started: u64,
}

impl InstanceSummary {
    /// The summary of a stored instance record (its JSON), or `None` when
    /// the bytes are not one. Reads only the fields a summary keeps.
    pub fn of_record(bytes: &[u8]) -> Option<InstanceSummary> {
        #[derive(Deserialize)]
        struct Op {
            kind: OpKind,
            state: OpState,
            started_at: u64,
        }
        #[derive(Deserialize)]
        struct Peek {
            id: String,
            service_id: String,
            plan_id: String,
            namespace: String,
            state: InstanceState,
            operations: Vec<Op>,
        }
        let p: Peek = serde_json::from_slice(bytes).ok()?;
        let last = p.operations.last();
        Some(InstanceSummary {
            id: p.id,
            service_id: p.service_id,
            plan_id: p.plan_id,
            namespace: p.namespace,
            state: p.state,
            last_op: last.map(|o| (o.kind, o.state)),
            last_started: last.map_or(0, |o| o.started_at),
        })
    }

    /// Where it sorts: newest operation first, then by id. As a string, so
    /// a store can key an ordered table by it.
    pub fn order_key(&self) -> String {
        format!("{:016x}\0{}", u64::MAX - self.last_started, self.id)
    }
}

/// Which instances, and which page of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this service (by id).
    pub service_id: Option<String>,
    /// Only this state.
    pub state: Option<InstanceState>,
    /// Rows to skip, in table order.
    pub offset: usize,
    /// Rows at most.
    pub limit: usize,
}

impl SummaryQuery {
    /// Whether `s` passes the filters.
    pub fn matches(&self, s: &InstanceSummary) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == s.namespace)
            && self.service_id.as_ref().is_none_or(|v| *v == s.service_id)
            && self.state.is_none_or(|v| v == s.state)
    }

    /// Whether it filters nothing out.
    pub fn unfiltered(&self) -> bool {
        self.namespace.is_none() && self.service_id.is_none() && self.state.is_none()
    }
}

/// One page of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryPage {
    /// The rows, in table order.
    pub rows: Vec<InstanceSummary>,
    /// How many instances pass the filters, when the store knows without
    /// reading them all (always without filters).
    pub total: Option<usize>,
    /// Whether rows follow this page.
    pub more: bool,
    /// Records that could not be summarized (unreadable), when counted.
    pub skipped: usize,
}

/// The page `q` asks for out of every summary (any order): what a store
/// without a summary index answers, reading everything.
pub fn page_of(mut all: Vec<InstanceSummary>, q: &SummaryQuery, skipped: usize) -> SummaryPage {
    all.retain(|s| q.matches(s));
    all.sort_by_cached_key(InstanceSummary::order_key);
    let total = all.len();
    let rows: Vec<_> = all.into_iter().skip(q.offset).take(q.limit).collect();
    SummaryPage {
        more: q.offset + rows.len() < total,
        rows,
        total: Some(total),
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, ns: &str, started: u64, state: InstanceState) -> InstanceSummary {
        InstanceSummary {
            id: id.into(),
            service_id: "svc".into(),
            plan_id: "plan".into(),
            namespace: ns.into(),
            state,
            last_op: Some((OpKind::Provision, OpState::Succeeded)),
            last_started: started,
        }
    }

    #[test]
    fn order_is_newest_first_then_by_id() {
        let mut keys = [
            summary("b", "n", 5, InstanceState::Ready).order_key(),
            summary("a", "n", 5, InstanceState::Ready).order_key(),
            summary("z", "n", 9, InstanceState::Ready).order_key(),
            summary("c", "n", 0, InstanceState::Ready).order_key(),
        ];
        keys.sort();
        let ids: Vec<_> = keys.iter().map(|k| k.split('\0').nth(1).unwrap()).collect();
        assert_eq!(ids, ["z", "a", "b", "c"]);
    }

    #[test]
    fn a_summary_keeps_nothing_secret() {
        let record = br#"{"id":"i","service_id":"s","plan_id":"p","namespace":"n","state":"ready",
            "parameters":{"password":"param-secret"},"secrets":{"password":"gen-secret"},
            "context":{"x":"ctx-secret"},"operations":[{"kind":"update","state":"failed",
            "started_at":7,"description":"desc-secret"}]}"#;
        let s = InstanceSummary::of_record(record).unwrap();
        assert_eq!(s.last_op, Some((OpKind::Update, OpState::Failed)));
        assert_eq!((s.last_started, s.state), (7, InstanceState::Ready));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("secret"), "{json}");
        assert_eq!(InstanceSummary::of_record(b"not json"), None);
    }

    #[test]
    fn page_of_filters_orders_and_pages() {
        let all: Vec<_> = (0..10)
            .map(|i| {
                let state = if i % 3 == 0 {
                    InstanceState::ProvisionFailed
                } else {
                    InstanceState::Ready
                };
                summary(&format!("i{i}"), ["a", "b"][i % 2], i as u64, state)
            })
            .collect();
        let q = SummaryQuery {
            namespace: Some("a".into()),
            limit: 2,
            offset: 2,
            ..Default::default()
        };
        let p = page_of(all.clone(), &q, 1);
        let ids: Vec<_> = p.rows.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            (ids, p.total, p.more, p.skipped),
            (vec!["i4", "i2"], Some(5), true, 1)
        );
        let q = SummaryQuery {
            state: Some(InstanceState::ProvisionFailed),
            limit: 10,
            ..Default::default()
        };
        let p = page_of(all, &q, 0);
        let ids: Vec<_> = p.rows.iter().map(|s| s.id.as_str()).collect();
        assert_eq!((ids, p.more), (vec!["i9", "i6", "i3", "i0"], false));
    }
}
