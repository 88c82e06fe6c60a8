//! migbench-agent: runs inside the guest. Echoes UDP probes, serves the TCP
//! stream and request/response services, runs the memory dirtier on
//! request and answers the JSON-lines control protocol.
//! Statically linked so the initramfs needs nothing but busybox beside it.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Instant;

use migbench_probes::control::read_request;
use migbench_probes::guest::dirtier::Dirtier;
use migbench_probes::guest::disk::DiskWorkload;
use migbench_probes::protocol::{Request, Response, CONTROL_PORT, ECHO_PORT, RR_PORT, STREAM_PORT};

fn main() {
    let origin = Instant::now();
    // The lab's kernel command line may ask for the working set's memory
    // now (see `dirtier::reserve`).
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if let Some(bytes) = cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix("mb.reserve="))
        .and_then(|v| v.parse::<u64>().ok())
    {
        if !migbench_probes::guest::dirtier::reserve(bytes) {
            eprintln!("migbench-agent: not reserving {bytes} bytes: too little memory available");
        }
    }
    let echo = UdpSocket::bind(("0.0.0.0", ECHO_PORT)).expect("bind UDP echo port");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            if let Ok((n, from)) = echo.recv_from(&mut buf) {
                migbench_probes::guest::stall::wait();
                let _ = echo.send_to(&buf[..n], from);
            }
        }
    });
    migbench_probes::guest::serve::start(origin).expect("bind the service ports");
    let listener = TcpListener::bind(("0.0.0.0", CONTROL_PORT)).expect("bind control port");
    println!(
        "migbench-agent ready: echo udp/{ECHO_PORT}, control tcp/{CONTROL_PORT}, stream tcp/{STREAM_PORT}, request/response tcp/{RR_PORT}"
    );
    let mut work = Work::default();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if let Err(e) = serve(conn, &mut work, origin) {
            eprintln!("migbench-agent: control connection: {e}");
        }
    }
}

/// The workloads the host started.
#[derive(Default)]
struct Work {
    dirtier: Option<Dirtier>,
    disk: Option<DiskWorkload>,
}

fn serve(conn: TcpStream, work: &mut Work, origin: Instant) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut input = BufReader::new(conn);
    while let Some(req) = read_request(&mut input)? {
        let (reply, fatal) = match req {
            Err(r) => (Response::Error { message: r.message }, r.fatal),
            Ok(req) => (handle(req, work, origin), false),
        };
        let mut text = serde_json::to_string(&reply).expect("serialise reply");
        text.push('\n');
        out.write_all(text.as_bytes())?;
        if fatal {
            break;
        }
    }
    Ok(())
}

fn handle(req: Request, work: &mut Work, origin: Instant) -> Response {
    let now_ms = || origin.elapsed().as_secs_f64() * 1e3;
    let total = || {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| migbench_probes::meminfo::total_bytes(&m))
    };
    if let Some(message) = req.refusal(total) {
        return Response::Error { message };
    }
    match req {
        Request::Ping => Response::Pong { now_ms: now_ms() },
        Request::Start {
            rate,
            working_set,
            compressible,
            disk,
        } => {
            // Dropping old workloads stops them and frees their memory first.
            *work = Work::default();
            work.dirtier = Some(Dirtier::start(rate, working_set, compressible, origin));
            if let Some(d) = disk {
                match DiskWorkload::start(&d) {
                    Ok(w) => work.disk = Some(w),
                    Err(e) => {
                        return Response::Error {
                            message: format!("disk workload on {}: {e}", d.device),
                        }
                    }
                }
            }
            Response::Done
        }
        Request::Stop => {
            if let Some(d) = work.dirtier.as_mut() {
                d.stop();
            }
            if let Some(d) = work.disk.as_mut() {
                d.stop();
            }
            Response::Done
        }
        Request::Stall { ms } => {
            migbench_probes::guest::stall::stall_for(std::time::Duration::from_millis(ms));
            Response::Done
        }
        Request::Samples { after_ms } => Response::Samples {
            now_ms: now_ms(),
            samples: work
                .dirtier
                .as_ref()
                .map(|d| d.samples_after(after_ms))
                .unwrap_or_default(),
        },
        Request::Verify => match work.dirtier.as_ref() {
            None => Response::Error {
                message: "no workload was started, nothing to verify".into(),
            },
            Some(d) => {
                let (pages, bad_pages, writes) = d.verify();
                let disk = match work.disk.as_mut().map(|w| w.verify()) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        return Response::Error {
                            message: format!("disk verification: {e}"),
                        }
                    }
                };
                Response::Verified {
                    pages,
                    bad_pages,
                    writes,
                    disk,
                }
            }
        },
    }
}
