//! The ids of the repository's example catalog (`catalog/*.yaml`), once for
//! every tier: a test naming a service or plan imports it from here.

/// Service `mysql`.
pub const MYSQL: &str = "a0f5bc72-baad-493b-bc23-a1955f509a90";
/// Plan `basic` of `mysql`.
pub const MYSQL_BASIC: &str = "d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1";
/// Plan `standard` of `mysql`.
pub const MYSQL_STANDARD: &str = "37053eab-bdef-4b54-a307-fc8238313cd0";
/// Service `postgresql`.
pub const POSTGRES: &str = "d342caec-23dd-4125-8813-c110e35db4cf";
/// Plan `basic` of `postgresql`.
pub const POSTGRES_BASIC: &str = "aada5de2-a6b6-4fcf-8229-6e72235083f8";
/// Service `redis`.
pub const REDIS: &str = "adecbefe-31f1-4953-9be6-d1a727229fe5";
/// Plan `basic` of `redis`.
pub const REDIS_BASIC: &str = "cda88906-87ac-41f7-8914-80a3fb93606c";
/// Service `wordpress`.
pub const WORDPRESS: &str = "c461081c-edf4-464d-a97a-c6bc513221d8";
/// Plan `standard` of `wordpress`.
pub const WORDPRESS_STANDARD: &str = "5d07b801-7bd4-41e1-b993-f981678db0af";
