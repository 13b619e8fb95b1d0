//! The helpers of tests/alone, one module per test module.

pub mod osb_logs;
