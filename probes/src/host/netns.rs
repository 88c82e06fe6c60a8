//! Open sockets inside a named network namespace (`ip netns` style, under
//! `/run/netns`). A socket keeps the namespace it was created in, so a short
//! thread enters the namespace, creates the socket and returns it; the rest
//! of the program uses it from anywhere.

use std::fs::File;
use std::io;

use nix::sched::{setns, CloneFlags};

/// Run `f` on a thread that has entered network namespace `name` (or the
/// current one when `name` is `None`) and return its result.
pub fn in_netns<T, F>(name: Option<&str>, f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce() -> io::Result<T> + Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(name) = name {
                let path = format!("/run/netns/{name}");
                let ns = File::open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("open {path}: {e}")))?;
                setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io::Error::other(format!("setns {path}: {e}")))?;
            }
            f()
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    })
}
