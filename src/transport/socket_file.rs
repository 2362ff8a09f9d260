//! The file a Unix socket made by binding: removed when the socket is closed, but only if
//! it is still that file (deleted meanwhile, the path may hold another listener's now).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// Device and inode of the file the bind made.
    id: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl SocketFile {
    /// The file a socket has just bound at `path`.
    pub(crate) fn bound(path: &Path) -> SocketFile {
        SocketFile {
            path: path.to_path_buf(),
            id: identity(path),
        }
    }

    /// Removes the file if it is still this socket's.
    pub(crate) fn remove(self) {
        if self.id.is_some() && identity(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Refuses a path no Unix socket address can hold (longer than `sun_path`), at `open`
/// rather than at every send or connection attempt.
pub(crate) fn check_path(path: &Path) -> std::io::Result<()> {
    socket2::SockAddr::unix(path).map(drop)
}
