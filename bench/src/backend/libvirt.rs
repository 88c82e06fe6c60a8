//! The libvirt backend: migrations the way the users run them, through
//! libvirt daemons and the `virt` crate. [`domain`] builds the guest's
//! domain XML, [`libvirt_settings`] maps migration settings to libvirt's typed
//! parameters and flags (and refuses what libvirt cannot say),
//! [`stats`] reads job statistics, [`calls`] holds the calls the crate
//! lacks, [`libvirt_driver`] implements the migration contract and [`libvirt_lab`] runs
//! it in the local lab with a daemon per host namespace.

pub mod calls;
pub mod domain;
pub mod libvirt_driver;
pub mod libvirt_lab;
pub mod libvirt_preflight;
pub mod libvirt_settings;
pub mod provision;
pub mod reach;
pub mod remote;
pub mod stats;

pub use libvirt_driver::{Ends, LibvirtDriver};

/// How long a libvirt daemon may take to accept a connection, local or
/// over ssh (a host that drops packets, a daemon that never replies).
pub const CONNECT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// `virConnectOpen(uri)` given at most `within`: libvirt's open blocks
/// with no deadline of its own, so it runs on a thread of its own and is
/// left to finish there (a late connection is closed as it drops).
pub fn open_within(
    uri: &str,
    within: std::time::Duration,
) -> Result<virt::connect::Connect, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let u = uri.to_string();
    std::thread::Builder::new()
        .name("libvirt-open".into())
        .spawn(move || {
            let _ = tx
                .send(virt::connect::Connect::open(Some(&u)).map_err(|e| e.message().to_string()));
        })
        .map_err(|e| e.to_string())?;
    match rx.recv_timeout(within) {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}s (is the daemon running, is the host reachable?)",
            within.as_secs()
        )),
    }
}
