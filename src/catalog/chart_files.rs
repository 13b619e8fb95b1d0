//! What a chart may contain: regular files in folders, all inside the
//! chart. A symlink (or, in an archive, a hard link, an absolute path or a
//! `..` entry) would let a chart author make helm read, and render into a
//! manifest or an error message, any file the broker can read: its store
//! key, its credentials file, another chart's secrets.

use std::path::{Component, Path, PathBuf};

/// A chart holding something other than regular files and folders.
#[derive(Debug, thiserror::Error)]
#[error("chart {chart}: {file}: {problem}")]
pub(crate) struct ChartFileError {
    /// The chart folder or archive.
    pub(crate) chart: String,
    /// The offending entry, as found.
    pub(crate) file: String,
    /// What is wrong with it.
    pub(crate) problem: String,
}

/// Checks a chart folder and everything below it.
pub(crate) fn check_folder(dir: &Path) -> Result<(), ChartFileError> {
    let fail = |file: &Path, problem: String| ChartFileError {
        chart: dir.display().to_string(),
        file: file.display().to_string(),
        problem,
    };
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| fail(&path, format!("can't be read: {e}")))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            return Err(fail(
                &path,
                format!(
                    "is a symbolic link (to {target}); charts may only hold regular files and folders"
                ),
            ));
        }
        if kind.is_dir() {
            let entries =
                std::fs::read_dir(&path).map_err(|e| fail(&path, format!("can't be read: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| fail(&path, format!("can't be read: {e}")))?;
                todo.push(entry.path());
            }
        } else if !kind.is_file() {
            return Err(fail(
                &path,
                "is not a regular file (a device, pipe or socket)".into(),
            ));
        }
    }
    Ok(())
}

/// Checks every entry of a chart archive (`.tgz`).
pub(crate) fn check_archive(archive: &Path) -> Result<(), ChartFileError> {
    let fail = |file: String, problem: String| ChartFileError {
        chart: archive.display().to_string(),
        file,
        problem,
    };
    let whole = |problem: String| fail("the archive".into(), problem);
    let file = std::fs::File::open(archive).map_err(|e| whole(format!("can't be read: {e}")))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = tar
        .entries()
        .map_err(|e| whole(format!("is not a gzipped tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| whole(format!("is corrupt: {e}")))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry
            .path()
            .map_err(|e| fail(raw.clone(), format!("has an unreadable name: {e}")))?
            .into_owned();
        for component in path.components() {
            match component {
                Component::ParentDir => {
                    return Err(fail(raw, "has a `..` component, leaving the chart".into()));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(fail(raw, "is an absolute path".into()));
                }
                Component::CurDir | Component::Normal(_) => {}
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.display().to_string())
                .unwrap_or_else(|| "?".into());
            let what = if kind.is_symlink() {
                "symbolic"
            } else {
                "hard"
            };
            return Err(fail(
                raw,
                format!(
                    "is a {what} link (to {target}); charts may only hold regular files and folders"
                ),
            ));
        }
        if !(kind.is_file() || kind.is_dir()) {
            return Err(fail(raw, "is not a regular file or folder".into()));
        }
        // Reading through to the next entry also proves the data is whole.
        std::io::copy(&mut entry, &mut std::io::sink())
            .map_err(|e| whole(format!("is corrupt: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Build = dyn FnOnce(&mut tar::Builder<Vec<u8>>);

    fn archive(dir: &Path, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let chart = b"apiVersion: v2\nname: c\nversion: 0.1.0\n";
        h.set_size(chart.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "c/Chart.yaml", &chart[..]).unwrap();
        build(&mut b);
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let path = dir.join("c-0.1.0.tgz");
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        path
    }

    fn link(
        kind: tar::EntryType,
        name: &str,
        target: &str,
    ) -> impl FnOnce(&mut tar::Builder<Vec<u8>>) {
        let (name, target) = (name.to_owned(), target.to_owned());
        move |b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        }
    }

    /// Writes a raw name the tar builder would refuse (`..`, absolute).
    fn raw_name(name: &'static str) -> impl FnOnce(&mut tar::Builder<Vec<u8>>) {
        move |b| {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
        }
    }

    #[test]
    fn archives_with_links_or_escaping_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_archive(&archive(dir.path(), |_| {})).is_ok());
        let cases: Vec<(Box<Build>, &str, &str)> = vec![
            (
                Box::new(link(
                    tar::EntryType::Symlink,
                    "c/values.yaml",
                    "/data/store.key",
                )),
                "c/values.yaml",
                "symbolic link (to /data/store.key)",
            ),
            (
                Box::new(link(
                    tar::EntryType::Link,
                    "c/templates/x.yaml",
                    "c/Chart.yaml",
                )),
                "c/templates/x.yaml",
                "hard link",
            ),
            (
                Box::new(raw_name("c/../../etc/passwd")),
                "c/../../etc/passwd",
                "`..`",
            ),
            (Box::new(raw_name("/etc/passwd")), "/etc/passwd", "absolute"),
        ];
        for (build, file, problem) in cases {
            let err = check_archive(&archive(dir.path(), build)).unwrap_err();
            assert_eq!(err.file, file, "{err}");
            assert!(err.problem.contains(problem), "{err}");
        }
        std::fs::write(dir.path().join("junk.tgz"), b"not gzip").unwrap();
        assert!(check_archive(&dir.path().join("junk.tgz")).is_err());
    }

    #[test]
    fn folders_with_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("c");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: c").unwrap();
        assert!(check_folder(&chart).is_ok());
        std::os::unix::fs::symlink("/etc", chart.join("templates/etc")).unwrap();
        let err = check_folder(&chart).unwrap_err();
        assert!(err.file.ends_with("templates/etc"), "{err}");
        assert!(err.to_string().contains("symbolic link (to /etc)"), "{err}");
        // A chart folder that is itself a link is refused too.
        std::fs::remove_file(chart.join("templates/etc")).unwrap();
        std::os::unix::fs::symlink(&chart, dir.path().join("alias")).unwrap();
        assert!(check_folder(&dir.path().join("alias")).is_err());
    }
}
