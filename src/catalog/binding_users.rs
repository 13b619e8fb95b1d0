//! `chart.binding_users`: a plan whose bindings each get their own database
//! user, created on bind and dropped on unbind (`crate::dbusers` does it).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The database engines the broker can create users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DbEngine {
    /// MySQL 8 and MariaDB 10.4+.
    Mysql,
    /// PostgreSQL 12+.
    Postgresql,
    /// Redis 6+ ACL users.
    Redis,
}

impl DbEngine {
    /// The port the engine listens on by default.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            DbEngine::Mysql => 3306,
            DbEngine::Postgresql => 5432,
            DbEngine::Redis => 6379,
        }
    }

    /// The administrator the official images create.
    pub(crate) fn default_admin(self) -> &'static str {
        match self {
            DbEngine::Mysql => "root",
            DbEngine::Postgresql => "postgres",
            DbEngine::Redis => "default",
        }
    }

    /// The engine's name in messages.
    pub(crate) fn display_name(self) -> &'static str {
        match self {
            DbEngine::Mysql => "MySQL",
            DbEngine::Postgresql => "PostgreSQL",
            DbEngine::Redis => "Redis",
        }
    }

    /// Whether users are scoped to one database (`database:` required).
    pub(crate) fn has_databases(self) -> bool {
        !matches!(self, DbEngine::Redis)
    }
}

/// How the broker reaches a plan's database as its administrator. Every
/// string is a template over the instance (like `chart.values`).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminEndpoint {
    /// Default: the release's Service by cluster DNS,
    /// `{{instance.release}}.{{instance.namespace}}.svc.cluster.local`.
    pub(crate) host: Option<String>,
    /// A number or a template; default: the engine's port.
    pub(crate) port: Option<Value>,
    /// Default: `root`, `postgres` or `default`.
    pub(crate) username: Option<String>,
    /// Usually the instance's generated secret, `{{secrets.root_password}}`.
    pub(crate) password: String,
}

impl std::fmt::Debug for AdminEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A template, but an admin may have written a literal password.
        f.debug_struct("AdminEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The user bindings share when the plan falls back to it.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharedUser {
    /// Template over the instance.
    pub(crate) username: String,
    /// Template over the instance.
    pub(crate) password: String,
}

impl std::fmt::Debug for SharedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `chart.binding_users`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BindingUsers {
    /// Which server the plan's chart runs.
    pub(crate) engine: DbEngine,
    /// Where and as whom the broker connects.
    pub(crate) admin: AdminEndpoint,
    /// The database each binding user gets all privileges on (template;
    /// SQL engines only).
    pub(crate) database: Option<String>,
    /// When the database can't be reached, bind with this user instead of
    /// failing (`fallback_to_shared: true` needs it).
    pub(crate) shared: Option<SharedUser>,
    /// Fall back to `shared` instead of failing when unreachable.
    #[serde(default)]
    pub(crate) fallback_to_shared: bool,
    /// How long connecting may take before the database counts as
    /// unreachable.
    /// Seconds (`5`) or a duration text (`5s`, `1m`).
    #[serde(default = "default_connect_timeout")]
    pub(crate) connect_timeout_seconds: crate::duration::Secs,
    /// Whether the database runs inside the release, so uninstalling the
    /// release deletes it with every user. Default: true unless
    /// `admin.host` names another server. See [`Self::database_in_release`].
    #[serde(default)]
    pub(crate) in_release: Option<bool>,
}

fn default_connect_timeout() -> crate::duration::Secs {
    crate::duration::Secs(std::time::Duration::from_secs(5))
}

impl BindingUsers {
    /// Whether deprovisioning deletes the database with the release: then
    /// binding users need no dropping when the database can't be reached
    /// (the default host is the release's own Service).
    pub(crate) fn database_in_release(&self) -> bool {
        self.in_release.unwrap_or(self.admin.host.is_none())
    }

    /// Every template of the section with its path below `binding_users`,
    /// for lint.
    pub(crate) fn templates(&self) -> Vec<(String, Value)> {
        let mut out = vec![(
            "admin.password".to_string(),
            Value::String(self.admin.password.clone()),
        )];
        let opt = |path: &str, v: &Option<String>| {
            v.clone().map(|s| (path.to_string(), Value::String(s)))
        };
        out.extend(opt("admin.host", &self.admin.host));
        out.extend(opt("admin.username", &self.admin.username));
        out.extend(opt("database", &self.database));
        if let Some(Value::String(p)) = &self.admin.port {
            out.push(("admin.port".into(), Value::String(p.clone())));
        }
        if let Some(s) = &self.shared {
            out.push(("shared.username".into(), Value::String(s.username.clone())));
            out.push(("shared.password".into(), Value::String(s.password.clone())));
        }
        out
    }

    /// What is wrong with the section beyond its templates: (path, message).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match (self.engine.has_databases(), &self.database) {
            (true, None) => out.push((
                "database",
                "mysql and postgresql users are granted one database: set `database` (e.g. \"{{parameters.database}}\")".to_string(),
            )),
            (false, Some(_)) => out.push((
                "database",
                "redis users are not scoped to a database: remove `database`".to_string(),
            )),
            _ => {}
        }
        if self.fallback_to_shared && self.shared.is_none() {
            out.push((
                "shared",
                "fallback_to_shared needs `shared: {username, password}` to fall back to"
                    .to_string(),
            ));
        }
        match &self.admin.port {
            None | Some(Value::String(_)) => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|p| (1..=65535).contains(&p)) => {}
            Some(other) => out.push((
                "admin.port",
                format!("{other} is not a port (1-65535) or a template"),
            )),
        }
        let t = self.connect_timeout_seconds.0;
        if !(std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(300)).contains(&t) {
            out.push((
                "connect_timeout_seconds",
                format!("{} must be between 1s and 5m", crate::duration::format(t)),
            ));
        }
        out
    }
}
