//! The rules for a plan's chart: its folder, version, digest, name, and
//! repository or OCI reference.

use super::*;

impl Lint {
    /// Checks a chart folder: inside the charts directory, present, a chart.
    pub(crate) fn chart_dir(&mut self, path: &str, rel: &Path, resolved: &Path) {
        let path = join(path, "chart.path");
        let relative = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if rel.as_os_str().is_empty() || !relative {
            let msg = format!(
                "`{}` must be a folder name under the charts directory",
                rel.display()
            );
            self.issue(path, msg);
        } else if !resolved.is_dir() {
            self.issue(
                path,
                format!("chart folder {} does not exist", resolved.display()),
            );
        } else if let Err(e) = crate::catalog::chart_files::check_folder(resolved) {
            self.issue(path, format!("{}: {}", e.file, e.problem));
        } else if !resolved.join("Chart.yaml").is_file() {
            self.issue(path, format!("{} has no Chart.yaml", resolved.display()));
        }
    }

    /// The directory of the file being read: relative paths in it resolve
    /// against it.
    pub(crate) fn file_dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A remote chart's version: present and exact, so a plan never changes
    /// under the platform.
    pub(crate) fn chart_version(&mut self, path: &str, version: Option<&str>) {
        match version {
            None => self.issue(path, "a remote chart needs an exact `version` (like 1.2.3)"),
            Some(v) if !is_semver(v) => self.issue(
                path,
                format!(
                    "`{v}` is not an exact version (like 1.2.3); ranges are refused so a plan \
                     never changes under the platform"
                ),
            ),
            Some(_) => {}
        }
    }

    /// A pinned archive digest: `sha256:` and 64 hex digits.
    pub(crate) fn chart_digest(&mut self, path: &str, digest: &str) {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            self.issue(
                path,
                format!("`{digest}` is not a digest like sha256:<64 hex digits>"),
            );
        }
    }

    /// A chart name as a repository index lists it; never an option to helm.
    pub(crate) fn chart_name(&mut self, path: &str, name: &str) {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            self.issue(
                path,
                format!("`{name}` is not a chart name (letters, digits, `.`, `_`, `-`)"),
            );
        }
    }

    /// A Helm repository URL: HTTPS only, no credentials.
    pub(crate) fn repository_url(&mut self, path: &str, url: &str) {
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return self.issue(path, format!("`{url}` is not a URL: {e}")),
        };
        match parsed.scheme() {
            "https" => {}
            "http" => {
                return self.issue(
                    path,
                    format!("`{url}`: plain http is refused; chart repositories must use https"),
                );
            }
            other => {
                return self.issue(
                    path,
                    format!("`{url}`: scheme `{other}` is not supported; use https://"),
                );
            }
        }
        self.remote_url_rules(path, url, &parsed);
    }

    /// An OCI chart reference: `oci://host[:port]/path/name`, the version
    /// given apart.
    pub(crate) fn oci_reference(&mut self, path: &str, reference: &str) {
        if !reference.starts_with("oci://") {
            return self.issue(
                path,
                format!("`{reference}` must start with oci:// (like oci://registry.example.com/charts/mysql)"),
            );
        }
        let parsed = match reqwest::Url::parse(reference) {
            Ok(u) => u,
            Err(e) => return self.issue(path, format!("`{reference}` is not a reference: {e}")),
        };
        if !self.remote_url_rules(path, reference, &parsed) {
            return;
        }
        let repo = parsed.path().trim_start_matches('/');
        if repo.contains([':', '@']) {
            return self.issue(
                path,
                format!("`{reference}`: no tag or digest here; the version goes in `version`"),
            );
        }
        let component = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if repo.is_empty() || !repo.split('/').all(component) {
            self.issue(
                path,
                format!(
                    "`{reference}` needs a repository path of lowercase letters, digits, `.`, \
                     `_`, `-` (like oci://registry.example.com/charts/mysql)"
                ),
            );
        }
    }

    /// Rules shared by repository URLs and OCI references; false when one
    /// failed.
    pub(super) fn remote_url_rules(&mut self, path: &str, text: &str, url: &reqwest::Url) -> bool {
        let problem = if !url.username().is_empty() || url.password().is_some() {
            Some(
                "credentials in the URL are refused (a URL is shown in messages and logs); name them under `auth:`",
            )
        } else if url.host_str().is_none_or(str::is_empty) {
            Some("no host")
        } else if url.query().is_some() || url.fragment().is_some() {
            Some("no query or fragment allowed")
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.issue(path, format!("`{text}`: {p}"));
                false
            }
            None => true,
        }
    }
}
