//! libvirt's job statistics (`virDomainGetJobStats`) in migbench's terms:
//! the job type becomes a [`MigrationState`], the memory counters a
//! [`ProgressSample`], libvirt's own timing [`BackendTimes`].

use migbench_model::series::XbzrleStats;
use migbench_model::ProgressSample;
use virt::domain::JobStats;
use virt::sys;

use crate::migrate::{BackendTimes, DiskProgress, MigrationState, Status};

/// The job's state; `postcopy`: the domain runs in post-copy mode.
pub fn state_of(job_type: i32, postcopy: bool) -> MigrationState {
    match job_type as u32 {
        sys::VIR_DOMAIN_JOB_NONE => MigrationState::Setup,
        sys::VIR_DOMAIN_JOB_BOUNDED | sys::VIR_DOMAIN_JOB_UNBOUNDED if postcopy => {
            MigrationState::PostcopyActive
        }
        sys::VIR_DOMAIN_JOB_BOUNDED | sys::VIR_DOMAIN_JOB_UNBOUNDED => MigrationState::Active,
        sys::VIR_DOMAIN_JOB_COMPLETED => MigrationState::Completed,
        sys::VIR_DOMAIN_JOB_FAILED => MigrationState::Failed,
        sys::VIR_DOMAIN_JOB_CANCELLED => MigrationState::Cancelled,
        _ => MigrationState::Other,
    }
}

/// libvirt's name of a state, for `progress.jsonl`'s `status`.
fn state_name(s: MigrationState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One job-statistics reading as a [`Status`].
pub fn status_of(j: &JobStats, postcopy: bool) -> Status {
    let state = match state_of(j.r#type, postcopy) {
        // The job runs from Begin, but RAM is counted only once QEMU's
        // migration is under way: before, libvirt is still preparing the
        // destination (QMP's `setup`). Policies act on copying only.
        MigrationState::Active if j.mem_total.unwrap_or(0) == 0 => MigrationState::Setup,
        s => s,
    };
    let u = |v: Option<u64>| v.unwrap_or(0);
    let page = j.mem_page_size.unwrap_or(4096).max(1);
    let ms = |v: Option<u64>| v.map(|x| x as f64);
    let xbzrle = j.compression_cache.map(|_| XbzrleStats {
        bytes: u(j.compression_bytes),
        pages: u(j.compression_pages),
        cache_miss: u(j.compression_cache_misses),
        cache_miss_rate: 0.0,
        overflow: u(j.compression_overflow),
        encoding_rate: 0.0,
    });
    Status {
        state,
        progress: ProgressSample {
            t_ms: 0.0,
            status: state_name(state),
            transferred: u(j.mem_processed),
            remaining: u(j.mem_remaining),
            total: u(j.mem_total),
            passes: u(j.mem_iteration),
            zero_pages: u(j.mem_constant),
            // libvirt reports pages/s.
            dirty_pages_rate: u(j.mem_dirty_rate),
            mbps: u(j.mem_bps) as f64 * 8.0 / 1e6,
            expected_downtime_ms: None,
            throttle_pct: j.auto_converge_throttle.map(f64::from),
            multifd_bytes: 0,
            normal_bytes: u(j.mem_normal_bytes).max(u(j.mem_normal) * page),
            postcopy_requests: u(j.mem_postcopy_reqs),
            xbzrle,
        },
        times: BackendTimes {
            total_time_ms: ms(j.time_elapsed),
            setup_time_ms: ms(j.setup_time),
            downtime_ms: None,
            libvirt_downtime_ms: ms(j.downtime),
            libvirt_downtime_net_ms: ms(j.downtime_net),
        },
        error: j.error_message.clone(),
        // libvirt mirrors block-migrated disks before it moves memory.
        disk: j.disk_total.filter(|&t| t > 0).map(|total| DiskProgress {
            processed: u(j.disk_processed),
            total,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(t: u32) -> JobStats {
        let mut j: JobStats = (t as i32, Vec::new()).into();
        j.mem_processed = Some(100 << 20);
        j.mem_remaining = Some(10 << 20);
        j.mem_total = Some(256 << 20);
        j.mem_iteration = Some(3);
        j.mem_bps = Some(12_500_000);
        j.mem_normal = Some(10);
        j
    }

    #[test]
    fn job_types_map_to_states() {
        assert_eq!(
            state_of(sys::VIR_DOMAIN_JOB_UNBOUNDED as i32, false),
            MigrationState::Active
        );
        assert_eq!(
            state_of(sys::VIR_DOMAIN_JOB_UNBOUNDED as i32, true),
            MigrationState::PostcopyActive
        );
        assert_eq!(
            state_of(sys::VIR_DOMAIN_JOB_NONE as i32, false),
            MigrationState::Setup
        );
        assert_eq!(
            state_of(sys::VIR_DOMAIN_JOB_FAILED as i32, false),
            MigrationState::Failed
        );
    }

    #[test]
    fn a_job_that_counts_no_ram_yet_is_still_setting_up() {
        // libvirt's job exists while it prepares the destination; the
        // no-progress policy must not take its zero "remaining" as a low.
        let mut j = stats(sys::VIR_DOMAIN_JOB_UNBOUNDED);
        assert_eq!(status_of(&j, false).state, MigrationState::Active);
        (j.mem_total, j.mem_remaining, j.mem_processed) = (None, None, None);
        assert_eq!(status_of(&j, false).state, MigrationState::Setup);
        j.mem_total = Some(0);
        assert_eq!(status_of(&j, false).state, MigrationState::Setup);
    }

    #[test]
    fn a_disk_mirror_inside_the_migration_is_reported() {
        let mut j = stats(sys::VIR_DOMAIN_JOB_UNBOUNDED);
        assert_eq!(status_of(&j, false).disk, None);
        (j.mem_total, j.disk_total, j.disk_processed) = (Some(0), Some(96 << 20), Some(40 << 20));
        let s = status_of(&j, false);
        assert_eq!(s.state, MigrationState::Setup, "memory not moving yet");
        assert_eq!(
            s.disk,
            Some(DiskProgress {
                processed: 40 << 20,
                total: 96 << 20
            })
        );
    }

    #[test]
    fn counters_and_libvirt_timing_are_carried_over() {
        let mut j = stats(sys::VIR_DOMAIN_JOB_COMPLETED);
        j.downtime = Some(61);
        j.downtime_net = Some(60);
        j.setup_time = Some(1);
        j.time_elapsed = Some(729);
        let s = status_of(&j, false);
        assert_eq!(s.state, MigrationState::Completed);
        assert_eq!(s.progress.status, "completed");
        assert_eq!(s.progress.passes, 3);
        assert_eq!(s.progress.remaining, 10 << 20);
        assert!((s.progress.mbps - 100.0).abs() < 1e-9);
        assert_eq!(s.progress.normal_bytes, 10 * 4096);
        assert_eq!(s.times.libvirt_downtime_ms, Some(61.0));
        assert_eq!(s.times.libvirt_downtime_net_ms, Some(60.0));
        assert_eq!(
            s.times.downtime_ms, None,
            "libvirt does not pass QEMU's own figure on"
        );
        assert_eq!(s.times.total_time_ms, Some(729.0));
    }
}
