//! What the embedded store's file costs on disk (target 5).

use std::path::Path;

/// Bytes the file's blocks take: redb grows its file ahead of use and
/// leaves the unwritten part sparse, so the length overstates the disk.
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}
