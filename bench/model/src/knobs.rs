//! The knob table: every scenario dimension defined once. Each line gives
//! the scenario key, the [`RunParams`] field, the type, the default,
//! whether it must be written, and the analyzer's axis title; from it
//! [`crate::dimension::dimensions!`] derives the scenario sections, the
//! run parameters, the matrix expansion and the analyzer's
//! [`DIMENSIONS`]. The matrix expands in table order, `[migration]` and
//! `[policy]` once per `[[variant]]`, repetitions innermost
//! ([`crate::matrix::expand`]). A backend maps [`MigrationSettings`] to its own
//! terms (the QMP lab: `bench/src/backend/qmp/qmp_settings.rs`).

use std::time::Duration;

use crate::dimension::dimensions;
use crate::fault::Fault;
use crate::settings::{
    Announce, AutoConverge, Backend, BandwidthCap, Channels, CompletionAction, Compression,
    DirtyLimit, DiskFormat, DiskPattern, Postcopy, Services, StorageMode, Transport, Xbzrle,
};
use crate::units::{BitRate, ByteRate, Count, Dur, Percent, Size};

const fn ms(n: u64) -> Dur {
    Dur(Duration::from_millis(n))
}

dimensions! {
    /// What drives the migration.
    [backend] BackendSpec => BackendSettings, BackendKey {
        /// qmp (migbench drives QEMU) | libvirt (a libvirt daemon per host,
        /// migration through libvirt's API); a list compares both.
        kind => backend: Backend = Backend::Qmp, optional, "backend";
        /// libvirt's transport: direct | p2p | tunnelled (`virsh migrate
        /// --p2p`, `--p2p --tunnelled`); a list compares them.
        transport => transport: Transport = Transport::Direct, optional, "libvirt transport";
    }

    /// The guest: its size.
    [guest] GuestSpec => GuestSettings, GuestKey {
        /// Guest RAM (QEMU `-m`).
        ram => ram: Size = Size(256 << 20), required, "guest RAM (MiB)";
        /// Number of vCPUs (QEMU `-smp`).
        vcpus => vcpus: Count = Count(1), optional, "vCPUs";
    }

    /// The guest's disk.
    [storage] StorageSpec => StorageSettings, StorageKey {
        /// Where the disk lives: none | shared | shared-nbd | block | block-incremental.
        mode => storage_mode: StorageMode = StorageMode::None, optional, "storage mode";
        /// Virtual disk size.
        disk_size => disk_size: Size = Size(256 << 20), optional, "disk size (MiB)";
        /// Image format (block-incremental needs qcow2 for its overlays).
        format => disk_format: DiskFormat = DiskFormat::Qcow2, optional, "disk format";
        /// Data already on the disk when the guest boots (its "OS image"),
        /// written by migbench into the image; for block-incremental it is
        /// the shared backing image.
        base_data => base_data: Size = Size(0), optional, "base data on the disk (MiB)";
        /// Rate of the storage host's link (shared-nbd).
        link_rate => storage_link_rate: BitRate = BitRate(10_000_000_000), optional,
            "storage link rate (Mbit/s)";
    }

    /// The workload the guest agent runs during migration.
    [workload] WorkloadSpec => WorkloadSettings, WorkloadKey {
        /// Target rate at which the agent rewrites guest memory; 0 = idle guest.
        dirty_rate => dirty_rate: ByteRate = ByteRate(0), optional, "dirty rate (MB/s)";
        /// Memory the dirtier cycles through.
        working_set => working_set: Size = Size(64 << 20), optional, "working set (MiB)";
        /// Share of each dirtied page that is a fixed filler (what
        /// compression and XBZRLE can save); the rest is hashed,
        /// incompressible data.
        compressibility => compressibility: Percent = Percent(0.0), optional,
            "compressible share of dirtied pages (%)";
        /// Rate of checksummed block writes to the guest's disk (0 = none).
        disk_write_rate => disk_write_rate: ByteRate = ByteRate(0), optional,
            "disk write rate (MB/s)";
        /// Size of one disk write.
        disk_block_size => disk_block_size: Size = Size(64 << 10), optional,
            "disk block size (KiB)" * 1024.0;
        /// Order of disk writes.
        disk_pattern => disk_pattern: DiskPattern = DiskPattern::Sequential, optional,
            "disk write pattern";
        /// Data written to the disk before migration starts (what a block
        /// migration must copy).
        disk_fill => disk_fill: Size = Size(0), optional,
            "disk data written before migration (MiB)";
    }

    /// The migration link between the source and destination hosts.
    [link] LinkSpec => LinkSettings, LinkKey {
        /// Link rate, enforced with a `tc` token bucket on both directions.
        rate => link_rate: BitRate = BitRate(1_000_000_000), required, "link rate (Mbit/s)";
        /// One-way delay (needs the kernel's netem).
        delay => link_delay: Dur = ms(0), optional, "link delay (ms)";
        /// Delay variation (needs netem).
        jitter => link_jitter: Dur = ms(0), optional, "link jitter (ms)";
        /// Packet loss (needs netem).
        loss => link_loss: Percent = Percent(0.0), optional, "link loss (%)";
    }

    /// The client-side probe.
    [probe] ProbeSpec => ProbeSettings, ProbeKey {
        /// Interval between UDP probes (0.1 ms – 100 ms).
        interval => probe_interval: Dur = ms(1), optional, "probe interval (ms)";
        /// Probing (and the workload's baseline) before `migrate` (0 – 60 s).
        before => probe_before: Dur = ms(2000), optional, "probing before (ms)";
        /// Probing after the migration ends, before verifying (1 – 60 s: the
        /// probe watches a second past the switchover).
        after => probe_after: Dur = ms(2000), optional, "probing after (ms)";
    }

    /// What a client of the guest's services sees (beside the UDP probe,
    /// which always runs).
    [service] ServiceSpec => ServiceSettings, ServiceKey {
        /// Services run during the migration: "udp" (the probe alone),
        /// "icmp", "tcp-stream", "tcp-rr", joined with + or "all".
        kind => services: Services = Services::default(), optional, "services";
        /// Bitrate of the TCP stream the guest serves.
        stream_rate => stream_rate: BitRate = BitRate(5_000_000), optional,
            "stream bitrate (Mbit/s)";
        /// Requests per second on the request/response connection.
        rr_rate => rr_rate: Count = Count(200), optional, "requests per second";
        /// Size of each request and of each response.
        rr_size => rr_size: Size = Size(1024), optional, "request size (KiB)" * 1024.0;
        /// A request answered later than this counts as over the deadline.
        rr_deadline => rr_deadline: Dur = ms(1000), optional, "request deadline (ms)";
        @ /// Playout buffers the stream is played out with: every buffer is
        /// applied to the same received stream (the playout is a function
        /// of arrival times), so one run answers them all.
        buffer: Vec<Dur> = vec![ms(0), ms(1000), ms(3000)];
    }

    /// A fault injected into the migration (in the QMP lab): a list
    /// makes each its own runs, "none" the control.
    [fault] FaultSpec => FaultSettings, FaultKey {
        /// "none" or "KIND [to RATE] [for DURATION] [at WHEN]", e.g.
        /// "link-down for 3s at pass 2" (see `migbench_model::fault`).
        inject => fault: Fault = Fault::NONE, optional, "fault";
    }

    /// Migration settings and limits.
    [migration] MigrationSpec => MigrationSettings, MigrationKey {
        /// `downtime-limit`: the longest pause the hypervisor may plan for switchover.
        downtime_limit => downtime_limit: Dur = ms(300), optional, "downtime limit (ms)";
        /// `max-bandwidth`: "unlimited" or a byte rate.
        max_bandwidth => max_bandwidth: BandwidthCap = BandwidthCap::Unlimited, optional,
            "max bandwidth (MB/s)", value |p| p.bandwidth_mbs();
        /// Give up (cancel, record `timed_out`) after this long; watched by
        /// migbench, not sent to the hypervisor.
        timeout => timeout: Dur = ms(300_000), optional, "timeout (s)" * 1e-3;
        /// Multifd: "off" or a channel count.
        multifd_channels => multifd_channels: Channels = Channels::Off, optional,
            "multifd channels";
        /// Multifd compression: none | zlib | zstd (| qpl | uadk on QEMU 9.0+).
        multifd_compression => multifd_compression: Compression = Compression::None, optional,
            "multifd compression";
        /// zlib (1–9) or zstd (1–20) level.
        multifd_compression_level => multifd_compression_level: Count = Count(1), optional,
            "compression level";
        /// XBZRLE delta compression: "off" or the page-cache size.
        xbzrle_cache => xbzrle_cache: Xbzrle = Xbzrle::Off, optional, "XBZRLE cache (MiB)";
        /// CPU throttling: "off", "on" or "initial/increment/max" percent.
        auto_converge => auto_converge: AutoConverge = AutoConverge::Off, optional,
            "auto-converge (initial/increment/max %)";
        /// Post-copy: "off", "allowed", "after N passes", "after <duration>".
        postcopy => postcopy: Postcopy = Postcopy::Off, optional, "post-copy";
        /// Destination self-announce timing: "default" or
        /// "initial=..,max=..,rounds=..,step=..".
        announce => announce: Announce = Announce::DEFAULT, optional, "self-announce timing",
            value |p| p.announce.initial.map(|d| d.ms()).unwrap_or(50.0);
        /// QEMU 8.1+ dirty-limit convergence: "off" or a per-vCPU rate.
        dirty_limit => dirty_limit: DirtyLimit = DirtyLimit::Off, optional,
            "dirty limit per vCPU (MB/s)";
        @ /// How often the migration's progress is sampled into the progress series.
        poll_interval: Dur = ms(100);
    }

    /// What migbench does to a migration that does not converge, as
    /// orchestrators do (OpenStack Nova's libvirt driver). Zero turns a
    /// policy off.
    [policy] PolicySpec => PolicySettings, PolicyKey {
        /// Nova's downtime stepping: raise `downtime-limit` from limit/steps
        /// up to `migration.downtime_limit` in this many steps (0 = off).
        downtime_steps => downtime_steps: u32 = 0, optional, "downtime steps";
        /// Seconds between steps per GiB of guest data (Nova's
        /// `live_migration_downtime_delay`; guest data counts at least 2 GiB).
        downtime_delay => downtime_delay: Dur = ms(75_000), optional,
            "downtime step delay per GiB (s)" * 1e-3;
        /// Act when the migration has not completed after this long (0 = off).
        completion_timeout => completion_timeout: Dur = ms(0), optional,
            "completion timeout (s)" * 1e-3;
        /// What the completion timeout does: abort | force-complete.
        completion_action => completion_action: CompletionAction = CompletionAction::Abort,
            optional, "completion action";
        /// Abort when remaining RAM has not reached a new low for this long (0 = off).
        progress_timeout => progress_timeout: Dur = ms(0), optional,
            "no-progress timeout (s)" * 1e-3;
    }
}

/// Look a dimension up by its [`RunParams`] name.
pub fn dimension(name: &str) -> Option<&'static Dimension> {
    DIMENSIONS.iter().find(|d| d.name == name)
}
