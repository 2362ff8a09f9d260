//! The file a Unix socket made by binding: removed when the socket is closed, but only if
//! it is still that file (deleted meanwhile, the path may hold another listener's now).

use super::stream::connect_unix;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixDatagram;
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

/// Binds a Unix socket (a stream listener's, or a datagram one) at `path` with `bind`,
/// replacing a stale socket file nobody is bound to; returns it with the file it made.
pub(crate) fn bind<S>(
    path: &Path,
    stream: bool,
    bind: impl Fn() -> io::Result<S>,
) -> io::Result<(S, SocketFile)> {
    let socket = match bind() {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && stale_socket(path, stream) => {
            std::fs::remove_file(path)?;
            bind()?
        }
        other => other?,
    };
    Ok((socket, SocketFile::bound(path)))
}

/// Whether `path` is a socket file nobody is bound to (left by a process that ended), which
/// a new listener may replace: never a file of another kind, nor the socket of a listener
/// that is alive but busy (a full backlog or queue), which the probes do not wait for.
fn stale_socket(path: &Path, stream: bool) -> bool {
    let socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    let probe = || match stream {
        true => connect_unix(path).map(drop),
        false => {
            let s = UnixDatagram::unbound()?;
            s.set_nonblocking(true)?;
            // Connecting delivers nothing: a probe sent would reach a live listener.
            s.connect(path).map(drop)
        }
    };
    socket && matches!(probe(), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

/// Refuses a path no Unix socket address can hold (longer than `sun_path`), at `open`
/// rather than at every send or connection attempt.
pub(crate) fn check_path(path: &Path) -> io::Result<()> {
    socket2::SockAddr::unix(path).map(drop)
}
