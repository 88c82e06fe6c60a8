//! Helpers shared by the analyzer's integration tests: the checked-in
//! golden results, copies of them to spoil, and the built binary run with
//! its exit code.
#![allow(dead_code)] // each test file uses some of them

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `fixtures/golden/results`: real runs of quick.toml's matrix.
pub fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/results")
}

/// Every file and folder below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// Copy the tree at `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for p in walk(from) {
        let dest = to.join(p.strip_prefix(from).unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A copy of the golden results at `dir`.
pub fn copy_golden(dir: &Path) -> PathBuf {
    copy_dir(&golden(), dir);
    dir.to_owned()
}

/// Run `migbench-analyze ARGS`: its exit code (a signal fails the test),
/// stdout and stderr (also echoed to the test's stderr).
pub fn analyze<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
        .args(args)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    eprintln!("{out}{err}");
    let code = status
        .code()
        .unwrap_or_else(|| panic!("migbench-analyze ended by a signal: {status}"));
    (code, out, err)
}
