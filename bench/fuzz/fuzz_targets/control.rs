//! Fuzz target: bytes on the guest agent's control connection, read as
//! the agent reads them (line by line, bounded), each request parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migbench_probes::control::{parse_request, read_request};

fuzz_target!(|data: &[u8]| {
    let _ = parse_request(data);
    let mut r = std::io::Cursor::new(data);
    // A read never loops without consuming: at most one request a byte.
    for _ in 0..=data.len() {
        match read_request(&mut r) {
            Ok(Some(Err(refusal))) if refusal.fatal => break,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
