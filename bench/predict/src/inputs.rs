//! What the model needs of a run ([`Inputs`]), read from a run's
//! parameters, and Nova's downtime limit over time.

/// When post-copy takes over.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Switch {
    /// Pre-copy only.
    #[default]
    Off,
    /// Enabled, used only by a forced completion.
    Allowed,
    /// After QEMU's N-th bitmap sync.
    AfterPasses(u32),
    /// This long after `migrate`, ms.
    AfterMs(f64),
}

/// What the model needs of a run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Inputs {
    /// Guest RAM, bytes.
    pub ram: f64,
    /// Memory the workload rewrites, bytes (at most `ram`).
    pub working_set: f64,
    /// Rate the workload rewrites it, bytes/s.
    pub dirty_rate: f64,
    /// Share of each page that compresses away (0–1).
    pub compressibility: f64,
    /// Link rate, bits/s.
    pub link_bps: f64,
    /// QEMU's `max-bandwidth`, bytes/s (`None`: unlimited).
    pub max_bandwidth: Option<f64>,
    /// `downtime-limit`, ms (Nova's final limit when stepping).
    pub downtime_limit_ms: f64,
    /// Give up after this long, ms.
    pub timeout_ms: f64,
    /// multifd channels (0: one migration stream).
    pub multifd_channels: u32,
    /// multifd compresses pages (zlib, zstd).
    pub compression: bool,
    /// XBZRLE cache, bytes (0: off).
    pub xbzrle_cache: f64,
    /// Auto-converge's initial, increment and maximum throttle (0–1).
    pub auto_converge: Option<(f64, f64, f64)>,
    /// Post-copy.
    pub postcopy: Switch,
    /// Nova's downtime steps (0: the limit from the start).
    pub downtime_steps: u32,
    /// Nova's delay per step per GiB of data, ms.
    pub downtime_delay_ms: f64,
    /// Nova's completion timeout, ms (0: none).
    pub completion_timeout_ms: f64,
    /// The completion timeout forces completion instead of aborting.
    pub completion_force: bool,
    /// Disk data copied before memory (block migration), bytes.
    pub disk_bytes: f64,
}

impl Inputs {
    /// A run's inputs.
    pub fn of(p: &migbench_model::knobs::RunParams) -> Inputs {
        use migbench_model::settings::{
            AutoConverge, BandwidthCap, Channels, CompletionAction, Compression, Postcopy,
            StorageMode, Xbzrle,
        };
        let gib = (1u64 << 30) as f64;
        let disk_bytes = match p.storage_mode {
            StorageMode::Block => (p.base_data.0 + p.disk_fill.0) as f64,
            StorageMode::BlockIncremental => p.disk_fill.0 as f64,
            _ => 0.0,
        };
        Inputs {
            ram: p.ram.0 as f64,
            working_set: p.working_set.0 as f64,
            dirty_rate: p.dirty_rate.0 as f64,
            compressibility: p.compressibility.0 / 100.0,
            link_bps: p.link_rate.0 as f64,
            max_bandwidth: match p.max_bandwidth {
                BandwidthCap::Unlimited => None,
                BandwidthCap::Limit(r) => Some(r.0 as f64),
            },
            downtime_limit_ms: p.downtime_limit.ms(),
            timeout_ms: p.timeout.ms(),
            multifd_channels: match p.multifd_channels {
                Channels::Off => 0,
                Channels::On(n) => n,
            },
            compression: p.multifd_channels != Channels::Off
                && p.multifd_compression != Compression::None,
            xbzrle_cache: match p.xbzrle_cache {
                Xbzrle::Off => 0.0,
                Xbzrle::Cache(s) => s.0 as f64,
            },
            auto_converge: match p.auto_converge {
                AutoConverge::Off => None,
                AutoConverge::On {
                    initial,
                    increment,
                    max,
                } => Some((
                    initial as f64 / 100.0,
                    increment as f64 / 100.0,
                    max as f64 / 100.0,
                )),
            },
            postcopy: match p.postcopy {
                Postcopy::Off => Switch::Off,
                Postcopy::Allowed => Switch::Allowed,
                Postcopy::AfterPasses(n) => Switch::AfterPasses(n),
                Postcopy::AfterTime(d) => Switch::AfterMs(d.ms()),
            },
            downtime_steps: p.downtime_steps,
            // Nova counts the guest's data (RAM and copied disk), at least 2 GiB.
            downtime_delay_ms: p.downtime_delay.ms()
                * ((p.ram.0 as f64 + disk_bytes) / gib).max(2.0),
            completion_timeout_ms: p.completion_timeout.ms(),
            completion_force: p.completion_action == CompletionAction::ForceComplete,
            disk_bytes,
        }
    }

    /// The downtime limit in force `t_ms` after `migrate` (Nova's
    /// stepping: `limit/steps` at first, rising evenly to `limit`).
    pub fn limit_at(&self, t_ms: f64) -> f64 {
        if self.downtime_steps == 0 || self.downtime_delay_ms <= 0.0 {
            return self.downtime_limit_ms;
        }
        let n = self.downtime_steps as f64;
        let step = (t_ms / self.downtime_delay_ms).floor().clamp(0.0, n);
        let base = self.downtime_limit_ms / n;
        (base + (self.downtime_limit_ms - base) / n * step).floor()
    }

    /// When the next step after `t_ms` raises the limit, ms.
    pub(super) fn next_step_after(&self, t_ms: f64) -> Option<f64> {
        if self.downtime_steps == 0 || self.downtime_delay_ms <= 0.0 {
            return None;
        }
        let k = (t_ms / self.downtime_delay_ms).floor() + 1.0;
        (k <= self.downtime_steps as f64).then_some(k * self.downtime_delay_ms)
    }
}
