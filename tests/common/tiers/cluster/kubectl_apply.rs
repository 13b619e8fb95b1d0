//! Helpers of the tests in tests/cluster/kubectl_apply.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

pub use common::example_catalog::{
    MYSQL, MYSQL_BASIC, POSTGRES, POSTGRES_BASIC, REDIS, REDIS_BASIC, WORDPRESS, WORDPRESS_STANDARD,
};
