//! Hostile packets: the probe, ICMP and stream decoders take any bytes
//! without panicking, and a spoofed sequence number cannot count as a
//! reply to a probe that was never sent.

use migbench_probes::control::{read_request, MAX_LINE};
use migbench_probes::host::icmp::decode_reply;
use migbench_probes::host::prober::merge;
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
    fn control_lines_are_requests_or_refusals_and_never_read_past_the_bound(
        b in proptest::collection::vec(any::<u8>(), 0..(3 * MAX_LINE / 2))
    ) {
        let mut r = std::io::Cursor::new(b.clone());
        let mut consumed = 0u64;
        while let Some(req) = read_request(&mut r).unwrap() {
            let before = consumed;
            consumed = r.position();
            prop_assert!(consumed - before <= MAX_LINE as u64 + 1);
            if let Err(refusal) = req {
                prop_assert!(!refusal.message.is_empty());
                if refusal.fatal {
                    break;
                }
            }
        }
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

/// The checked-in corpus (`tests/corpus/control/`): each line of each
/// file is a request or a refusal that says why; `refused` files hold no
/// valid request, `accepted` files only valid ones.
#[test]
fn the_control_corpus_is_answered_line_by_line() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/control");
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut r = std::io::BufReader::new(std::fs::File::open(e.path()).unwrap());
        while let Some(req) = read_request(&mut r).unwrap() {
            match (name.starts_with("accepted"), req) {
                (true, Err(refusal)) => panic!("{name}: {refusal:?}"),
                (false, Ok(req)) => panic!("{name}: {req:?} accepted"),
                (false, Err(refusal)) if refusal.fatal => break,
                _ => {}
            }
        }
        files += 1;
    }
    assert!(files >= 3, "{files} corpus files");
}
