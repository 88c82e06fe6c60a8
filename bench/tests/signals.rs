//! Signals and silent peers at the command line (unit tier: no root, no
//! QEMU): a command that waits on a peer which accepts and never speaks
//! gives up at its deadline naming the peer and what it waited for, and
//! SIGTERM or SIGINT ends it at once.

use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Unix socket that accepts connections and never writes a byte (the
/// connections are kept open until the test ends).
fn silent_socket(path: &std::path::Path) -> std::thread::JoinHandle<()> {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            match c {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    })
}

fn advise_measuring(sock: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_migbench"))
        .args([
            "advise",
            "--ram",
            "1GiB",
            "--dirty-rate",
            "measure",
            "--qmp",
        ])
        .arg(sock)
        .args(["--link", "1gbit", "--max-downtime", "300ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migbench starts")
}

/// Wait for `child` at most `limit`; its exit code and stderr, or a
/// failure (after killing it) if it is still running.
fn exit_within(mut child: std::process::Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (status.code(), String::from_utf8_lossy(&out.stderr).into());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_qmp_peer_that_never_greets_is_given_up_at_the_deadline_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("silent.qmp");
    let _peer = silent_socket(&sock);
    let start = Instant::now();
    // The greeting deadline is 10 s; allow start-up either side.
    let (code, err) = exit_within(advise_measuring(&sock), Duration::from_secs(20));
    let took = start.elapsed();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "QMP socket {}: no greeting within 10s",
            sock.display()
        )),
        "{err}"
    );
    assert!(took >= Duration::from_secs(9), "gave up after {took:?}");
}

#[test]
fn sigterm_and_sigint_end_a_command_waiting_on_a_silent_peer_within_2s() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("silent.qmp");
    let _peer = silent_socket(&sock);
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let child = advise_measuring(&sock);
        // Let it connect and start waiting for the greeting.
        std::thread::sleep(Duration::from_millis(1000));
        let sent = Instant::now();
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let (code, err) = exit_within(child, Duration::from_secs(2));
        eprintln!("{sig}: exit {code:?} after {:?}", sent.elapsed());
        assert_eq!(code, Some(130), "{sig}: {err}");
        assert!(err.contains("interrupted"), "{err}");
    }
}
