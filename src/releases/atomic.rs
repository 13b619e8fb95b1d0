//! Files the render engine writes: whole or not at all, readable by the
//! broker only.

use std::path::Path;

/// Writes `dir/name` atomically with owner-only permissions (manifests carry
/// generated passwords).
pub(crate) async fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    let name = name.to_string();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        crate::store::seal::write_private(&dir.join(&name), &bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}
