//! Reading QEMU's `query-migrate` reply into migbench's [`Status`]: QEMU's
//! state names mapped to [`MigrationState`], counters that drift between
//! QEMU versions read leniently (absent = zero).

use serde_json::Value;

use migbench_model::series::XbzrleStats;
use migbench_model::ProgressSample;

use crate::migrate::{BackendTimes, MigrationState, Status};

/// QEMU's `MigrationStatus` name as a [`MigrationState`].
pub fn state_named(name: &str) -> MigrationState {
    match name {
        "none" => MigrationState::None,
        "setup" => MigrationState::Setup,
        "active" => MigrationState::Active,
        "pre-switchover" => MigrationState::PreSwitchover,
        "device" => MigrationState::Device,
        "postcopy-active" => MigrationState::PostcopyActive,
        "postcopy-paused" => MigrationState::PostcopyPaused,
        "postcopy-recover" => MigrationState::PostcopyRecover,
        "completed" => MigrationState::Completed,
        "failed" => MigrationState::Failed,
        "cancelling" => MigrationState::Cancelling,
        "cancelled" => MigrationState::Cancelled,
        _ => MigrationState::Other,
    }
}

/// Parse a `query-migrate` reply. Fields absent in a QEMU version stay
/// zero/None rather than failing (replies drift between versions).
pub fn parse_query_migrate(v: &Value) -> Status {
    let u = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64);
    let status = v.get("status").and_then(Value::as_str).unwrap_or("none");
    Status {
        state: state_named(status),
        progress: ProgressSample {
            t_ms: 0.0,
            status: status.to_string(),
            transferred: u("/ram/transferred"),
            remaining: u("/ram/remaining"),
            total: u("/ram/total"),
            passes: u("/ram/dirty-sync-count"),
            zero_pages: u("/ram/duplicate"),
            dirty_pages_rate: u("/ram/dirty-pages-rate"),
            mbps: f("/ram/mbps").unwrap_or(0.0),
            expected_downtime_ms: f("/expected-downtime"),
            throttle_pct: f("/cpu-throttle-percentage"),
            multifd_bytes: u("/ram/multifd-bytes"),
            normal_bytes: u("/ram/normal-bytes"),
            postcopy_requests: u("/ram/postcopy-requests"),
            xbzrle: v.get("xbzrle-cache").map(|_| XbzrleStats {
                bytes: u("/xbzrle-cache/bytes"),
                pages: u("/xbzrle-cache/pages"),
                cache_miss: u("/xbzrle-cache/cache-miss"),
                cache_miss_rate: f("/xbzrle-cache/cache-miss-rate").unwrap_or(0.0),
                overflow: u("/xbzrle-cache/overflow"),
                encoding_rate: f("/xbzrle-cache/encoding-rate").unwrap_or(0.0),
            }),
        },
        times: BackendTimes {
            total_time_ms: f("/total-time"),
            setup_time_ms: f("/setup-time"),
            downtime_ms: f("/downtime"),
            ..BackendTimes::default()
        },
        error: v
            .get("error-desc")
            .and_then(Value::as_str)
            .map(str::to_string),
        // QMP's disk copy runs before `migrate` (migbench's own mirror).
        disk: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_qemu_7_2_completed_reply() {
        let v: Value = serde_json::from_str(
            r#"{"status":"completed","setup-time":2,"downtime":155,"total-time":8123,
               "ram":{"transferred":97000000,"remaining":0,"total":285212672,"duplicate":45000,
                      "skipped":0,"normal":23000,"normal-bytes":94208000,"dirty-sync-count":3,
                      "page-size":4096,"mbps":95.4,"pages-per-second":2900,"precopy-bytes":97000000,
                      "downtime-bytes":12000,"postcopy-bytes":0,"dirty-pages-rate":0,"multifd-bytes":0,
                      "postcopy-requests":0}}"#,
        )
        .unwrap();
        let s = parse_query_migrate(&v);
        assert_eq!(s.state, MigrationState::Completed);
        assert_eq!(s.progress.status, "completed");
        assert!(s.state.finished());
        assert_eq!(s.progress.transferred, 97_000_000);
        assert_eq!(s.progress.passes, 3);
        assert_eq!(s.times.downtime_ms, Some(155.0));
        assert_eq!(s.times.total_time_ms, Some(8123.0));
    }

    #[test]
    fn missing_fields_do_not_fail() {
        let s = parse_query_migrate(&serde_json::json!({"status": "setup"}));
        assert_eq!(s.state, MigrationState::Setup);
        assert!(!s.state.finished());
        assert_eq!(s.progress.transferred, 0);
    }
}
