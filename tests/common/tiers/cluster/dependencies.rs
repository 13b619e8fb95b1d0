//! Helpers of the tests in tests/cluster/dependencies.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

pub use common::example_catalog::{MYSQL, MYSQL_BASIC, WORDPRESS, WORDPRESS_STANDARD};
