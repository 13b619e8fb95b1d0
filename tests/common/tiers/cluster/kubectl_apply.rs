//! Helpers of the tests in tests/cluster/kubectl_apply.rs
//! (helpers live under tests/common: tests/README.md).

pub const MYSQL: &str = "a0f5bc72-baad-493b-bc23-a1955f509a90";
pub const MYSQL_BASIC: &str = "d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1";
pub const POSTGRES: &str = "d342caec-23dd-4125-8813-c110e35db4cf";
pub const POSTGRES_BASIC: &str = "aada5de2-a6b6-4fcf-8229-6e72235083f8";
pub const REDIS: &str = "adecbefe-31f1-4953-9be6-d1a727229fe5";
pub const REDIS_BASIC: &str = "cda88906-87ac-41f7-8914-80a3fb93606c";
pub const WORDPRESS: &str = "c461081c-edf4-464d-a97a-c6bc513221d8";
pub const WORDPRESS_STANDARD: &str = "5d07b801-7bd4-41e1-b993-f981678db0af";
