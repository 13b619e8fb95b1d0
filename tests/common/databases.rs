//! Real database servers for tests: MariaDB, PostgreSQL and Redis from
//! Debian's packages (`scripts/install-tools.sh` installs them), each started
//! on loopback with its own data directory and a free port, and stopped when
//! dropped (also when a test fails, and with the test binary when it is
//! killed: the servers get SIGKILL from the kernel when their parent dies).
//!
//! MariaDB and PostgreSQL refuse to run as root: under root the servers run
//! as the packages' own users (`mysql`, `postgres`); otherwise as the
//! current user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process and its data directory.
pub struct Server {
    /// Loopback port.
    pub port: u16,
    /// The administrator's current password.
    pub admin_password: String,
    child: Child,
    dir: tempfile::TempDir,
    name: &'static str,
    /// Starts the server process again on its data directory and port.
    launch: Box<dyn Fn() -> Child + Send + Sync>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

impl Server {
    /// SIGTERM for a clean shutdown; SIGKILL if it lingers.
    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Stops the server like an outage: its port refuses connections until
    /// [`Server::start`]. Data (users, passwords) survives.
    pub fn stop(&mut self) {
        self.terminate();
        assert!(!tcp_open(self.port), "{} still listens", self.name);
    }

    /// Starts a stopped server again on the same data and port.
    pub fn start(&mut self) {
        let starts = self.ready_lines();
        self.child = (self.launch)();
        wait_until(self, |s| s.answers(starts));
    }

    /// Whether it takes logins. PostgreSQL listens while it is still
    /// starting up and refuses logins then (57P03, seen on a loaded
    /// machine), so for it the log must also say it is ready once more than
    /// the `starts` times it said so before this start.
    fn answers(&self, starts: usize) -> bool {
        tcp_open(self.port) && (self.name != "postgresql" || self.ready_lines() > starts)
    }

    /// How often the log says the server is ready (PostgreSQL's wording).
    fn ready_lines(&self) -> usize {
        self.log()
            .matches("database system is ready to accept connections")
            .count()
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/server.log")).unwrap_or_default()
    }

    /// What failed, with the end of the server's log.
    fn fail(&self, what: &str) -> ! {
        let log = self.log();
        let tail: String = log
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!("{}: {what}\n{tail}", self.name);
    }
}

pub use super::process::free_port;

thread_local! {
    static TMP: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// (uid, gid) of a system user.
/// Writes `text` to `path`, owned by `user` when the servers run as their
/// packages' users (under root).
fn write_for(user: &str, path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    if is_root() {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn ids_of(user: &str) -> (u32, u32) {
    let out = Command::new("id").arg("-u").arg(user).output().unwrap();
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| {
        panic!("system user {user} missing: run scripts/install-tools.sh (it installs the database packages)")
    });
    let out = Command::new("id").arg("-g").arg(user).output().unwrap();
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (uid, gid)
}

/// A command that runs as `user` when we are root, and dies with us.
fn command(program: impl AsRef<std::ffi::OsStr>, user: Option<&str>) -> Command {
    let mut cmd = Command::new(program);
    // Each server's temporary files stay in its own directory: concurrent
    // mariadb-install-db runs collide in a shared /tmp.
    if let Some(tmp) = TMP.with(|t| t.borrow().clone()) {
        cmd.env("TMPDIR", tmp);
    }
    if let Some(user) = user.filter(|_| is_root()) {
        let (uid, gid) = ids_of(user);
        cmd.uid(uid).gid(gid);
    }
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// A data directory the server's user may write (a root-owned temporary
/// directory is closed to it).
fn data_dir(user: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}

fn find(candidates: &[&str], what: &str) -> PathBuf {
    for c in candidates {
        for p in glob(c) {
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{what} not found ({candidates:?}): run scripts/install-tools.sh (it installs Debian's database packages)"
    );
}

/// `*` in one path segment (enough for `/usr/lib/postgresql/*/bin/x`).
fn glob(pattern: &str) -> Vec<PathBuf> {
    let Some((before, after)) = pattern.split_once('*') else {
        return vec![PathBuf::from(pattern)];
    };
    let (dir, prefix) = before.rsplit_once('/').unwrap();
    let (mid, rest) = after.split_once('/').unwrap_or((after, ""));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix) && n.ends_with(mid))
                .map(|n| Path::new(dir).join(n).join(rest))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.reverse();
    out
}

/// The server `launch` starts on `port` with this administrator password,
/// once `ready` says it serves.
fn started(
    name: &'static str,
    (port, admin_password): (u16, String),
    dir: tempfile::TempDir,
    launch: Box<dyn Fn() -> Child + Send + Sync>,
    ready: impl FnMut(&Server) -> bool,
) -> Server {
    let mut server = Server {
        port,
        admin_password,
        child: launch(),
        dir,
        name,
        launch,
    };
    wait_until(&mut server, ready);
    server
}

fn wait_until(server: &mut Server, mut ready: impl FnMut(&Server) -> bool) {
    let until = Instant::now() + Duration::from_secs(90);
    while Instant::now() < until {
        if let Ok(Some(status)) = server.child.try_wait() {
            server.fail(&format!("exited with {status}"));
        }
        if ready(server) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.fail("not ready after 90 s");
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tcp_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// MariaDB with `root@127.0.0.1` and an empty password (set one with
/// [`mariadb_set_root_password`]).
pub fn mariadb() -> Server {
    let user = "mysql";
    let dir = data_dir(user);
    let data = dir.path().join("data");
    TMP.with(|t| *t.borrow_mut() = Some(data.clone()));
    let mut install = command(
        find(
            &["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"],
            "mariadb-install-db",
        ),
        None,
    );
    install
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if is_root() {
        install.arg(format!("--user={user}"));
    }
    run_ok(&mut install, "mariadb-install-db");
    let port = free_port();
    TMP.with(|t| *t.borrow_mut() = None);
    let program = find(&["/usr/sbin/mariadbd", "/usr/sbin/mysqld"], "mariadbd");
    let launch = move || {
        let mut cmd = command(&program, None);
        cmd.env("TMPDIR", &data);
        mariadb_args(&mut cmd, &data, port);
        cmd.spawn().expect("mariadbd starts")
    };
    started(
        "mariadb",
        (port, String::new()),
        dir,
        Box::new(launch),
        |s| tcp_open(s.port),
    )
}

fn mariadb_args(cmd: &mut Command, data: &Path, port: u16) {
    let user = "mysql";
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", data.join("sock").display()))
        .arg(format!("--pid-file={}", data.join("pid").display()))
        .arg(format!("--log-error={}", data.join("server.log").display()))
        .arg(format!("--port={port}"))
        .arg(format!("--tmpdir={}", data.display()))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if is_root() {
        cmd.arg(format!("--user={user}"));
    }
}

/// PostgreSQL with the superuser `postgres` and password auth over TCP.
pub fn postgresql() -> Server {
    let user = "postgres";
    let dir = data_dir(user);
    let data = dir.path().join("data");
    let pwfile = data.join("pw");
    let password = "initial-postgres-pw".to_string();
    write_for(user, &pwfile, &password);
    let pgdata = data.join("pgdata");
    run_ok(
        command(
            find(
                &["/usr/lib/postgresql/*/bin/initdb", "/usr/local/bin/initdb"],
                "initdb",
            ),
            Some(user),
        )
        .arg("-D")
        .arg(&pgdata)
        .args(["-U", "postgres", "-A", "scram-sha-256", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display())),
        "initdb",
    );
    let port = free_port();
    let program = find(
        &[
            "/usr/lib/postgresql/*/bin/postgres",
            "/usr/local/bin/postgres",
        ],
        "postgres",
    );
    let launch = move || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("server.log"))
            .unwrap();
        command(&program, Some(user))
            .arg("-D")
            .arg(&pgdata)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .arg("-k")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts")
    };
    started("postgresql", (port, password), dir, Box::new(launch), |s| {
        s.answers(0)
    })
}

/// Redis with a password on the `default` user and a config file (so
/// `CONFIG REWRITE` can keep ACL users).
pub fn redis() -> Server {
    let user = "redis";
    let dir = data_dir(user);
    let data = dir.path().join("data");
    let port = free_port();
    let password = "initial-redis-pw".to_string();
    let conf = data.join("redis.conf");
    let text = format!(
        "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile {}\nrequirepass {password}\n",
        data.display(),
        data.join("server.log").display()
    );
    write_for(user, &conf, &text);
    let program = find(&["/usr/bin/redis-server"], "redis-server");
    let launch = move || {
        command(&program, Some(user))
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts")
    };
    started("redis", (port, password), dir, Box::new(launch), |s| {
        tcp_open(s.port)
    })
}

/// The `chart:` block of a catalog plan (YAML at a plan's indentation) on
/// the repository's chart `chart` with `values`, two generated secrets, and
/// binding users that `engine` makes at the admin endpoint on `port` with
/// `password` (literal or template). `database` is the `database:` line or
/// empty; `more` holds further `binding_users` lines, each ending in a newline.
pub fn binding_users_chart(
    (chart, values): (&str, &str),
    (engine, port, password): (&str, u16, &str),
    (database, more): (&str, &str),
    in_release: bool,
) -> String {
    format!(
        r#"        chart:
          path: {chart}
          namespace: context
          values: {values}
          secrets:
            root_password: {{length: 24, alphabet: alphanumeric}}
            user_password: {{length: 24, alphabet: alphanumeric}}
          binding_users:
            engine: {engine}
            admin: {{host: 127.0.0.1, port: {port}, password: "{password}"}}
            {database}
{more}            connect_timeout_seconds: 2
            in_release: {in_release}
"#
    )
}

/// [`mariadb`] with database `app` and `root`'s password over TCP set to
/// `root_password` (what a chart's catalog gives its admin endpoint).
pub async fn mariadb_with_app(root_password: &str) -> Server {
    use sqlx::Connection;
    let server = mariadb();
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(server.port)
        .username("root");
    let mut con = sqlx::MySqlConnection::connect_with(&opts).await.unwrap();
    for q in [
        "CREATE DATABASE app".to_string(),
        format!("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{root_password}'"),
    ] {
        sqlx::Executor::execute(&mut con, q.as_str()).await.unwrap();
    }
    server
}
