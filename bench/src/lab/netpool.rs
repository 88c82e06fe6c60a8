//! [`NetPool`]: the lab network kept from one run to the next of a
//! matrix instead of built and torn down for each (namespaces, veths,
//! bridges, taps and `tc` cost ~0.5 s a run). A run gives its network
//! back when its hypervisors are gone ([`LabNet::release`]: whatever
//! still runs in it is killed, the storage host removed); the next takes
//! it [`LabNet::reset`] for its own shaping (link reshaped when it
//! differs, forwarding tables flushed). Dropping the pool (the
//! matrix is over, or interrupted) removes the namespaces. Runs with a
//! fault build their own network and remove it (a fault may leave the
//! link in any state, and its record proves nothing was left behind).

use std::sync::Mutex;

use crate::lab::net::{LabError, LabNet, Shaping};

/// At most one idle lab network.
#[derive(Debug, Default)]
pub struct NetPool {
    idle: Mutex<Option<LabNet>>,
}

impl NetPool {
    /// The idle network reset for `shaping`, or a new one.
    pub fn take(&self, shaping: &Shaping) -> Result<LabNet, LabError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut net) = idle {
            // A network that does not reset is dropped (removed) and
            // replaced by a new one.
            if net.reset(shaping).is_ok() {
                return Ok(net);
            }
        }
        LabNet::create(shaping)
    }

    /// Keep `net` for the next run once what ran in it is gone (a
    /// network already idle is removed).
    pub fn put(&self, mut net: LabNet) {
        net.release();
        let old = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(net);
        drop(old);
    }
}
