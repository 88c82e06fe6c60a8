//! Hostile packets: the probe, ICMP and stream decoders take any bytes
//! without panicking, and a spoofed sequence number cannot count as a
//! reply to a probe that was never sent.

use migbench_probes::icmp::decode_reply;
use migbench_probes::prober::merge;
use migbench_probes::protocol::{decode_probe, ChunkHeader, Request, StreamHello};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_take_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..200), id in any::<u16>()) {
        let _ = decode_probe(&b);
        let _ = decode_reply(&b, id);
        let _ = ChunkHeader::decode(&b);
        if b.len() >= 12 {
            let _ = StreamHello::decode(b[..12].try_into().unwrap());
        }
        let _ = serde_json::from_slice::<Request>(&b);
    }

    #[test]
    fn spoofed_sequence_numbers_are_not_replies(
        sent in 1usize..50,
        spoofed in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..20)
    ) {
        let times: Vec<u64> = (0..sent as u64).map(|i| i * 1_000_000).collect();
        let replies: Vec<(u64, u64)> = spoofed
            .into_iter()
            .filter(|(seq, _)| *seq >= sent as u64)
            .collect();
        let ev = merge(&times, &replies);
        prop_assert_eq!(ev.len(), sent);
        prop_assert!(ev.iter().all(|e| e.recv_ms.is_none()));
    }
}
