//! Tests that need a process of their own (rule: tests/README.md). The log
//! capture uses a thread-scoped `tracing` subscriber, and `tracing` caches
//! each callsite's interest process-wide: in a binary shared with other
//! tests the `operation failed` line went missing about one run in four,
//! even with the cache rebuilt. Nothing else belongs here.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/tiers/alone/mod.rs"]
mod helpers;

mod osb_logs;
