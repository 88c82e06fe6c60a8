//! migbench entry point: parse arguments, run the command, print the whole
//! error chain and map errors to exit codes (2 = bad input).

use clap::Parser;
use migbench::cli::{Cli, Cmd, KeysFormat, ScenarioCmd};
use migbench::commands::{self, UsageError};
use migbench::scheduler::Cancel;
use migbench_model::ScenarioError;

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cancel = Cancel::default();
    // Commands that start QEMUs, namespaces or libvirt daemons stop them
    // on the first signal (the run in flight is recorded as interrupted);
    // every other command has nothing to undo and exits at once,
    // whatever it waits on (a silent QMP peer, a slow disk).
    let cleans_up = matches!(
        cli.command,
        Cmd::Run { dry_run: false, .. } | Cmd::Calibrate(_) | Cmd::LabHosts { .. }
    );
    {
        let cancel = cancel.clone();
        rt.spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if !cleans_up {
                    eprintln!("\ninterrupted");
                    std::process::exit(130);
                }
                if cancel.is_cancelled() {
                    eprintln!("\nsecond interrupt: killing this run's QEMUs, removing its namespaces, exiting");
                    migbench::lab::net::remove_own();
                    migbench::lab::rundir::remove_own();
                    std::process::exit(130);
                }
                eprintln!("\ninterrupted: stopping the run in flight and cleaning up (again to force)");
                cancel.cancel();
            }
        });
    }
    let result = match cli.command {
        Cmd::Run {
            scenario,
            dry_run,
            results,
            agent,
            resume,
            allow_concurrent,
            bounds,
        } => commands::run(
            &rt,
            &cancel,
            &scenario,
            dry_run,
            &results,
            agent,
            (resume.as_deref(), allow_concurrent, &bounds.limits()),
        ),
        Cmd::Image {
            agent,
            saved_states: false,
        } => commands::image_cmd(agent),
        Cmd::Image { .. } => commands::saved_states_cmd(),
        Cmd::Scenario {
            what: ScenarioCmd::Keys { format },
        } => {
            let keys = migbench_model::KEYS;
            print!(
                "{}",
                match format {
                    KeysFormat::Text =>
                        migbench_model::reference::text(keys, migbench_model::knobs::SECTIONS),
                    KeysFormat::Markdown =>
                        migbench_model::reference::markdown(keys, migbench_model::knobs::SECTIONS),
                }
            );
            Ok(0)
        }
        Cmd::Calibrate(args) => migbench::calibrate::command(&rt, &cancel, args),
        Cmd::Report { args } => commands::analyze("report", &args),
        Cmd::Compare { args } => commands::analyze("compare", &args),
        Cmd::Summary { args } => commands::analyze("summary", &args),
        Cmd::Export { args } => commands::analyze("export", &args),
        Cmd::LabHosts {
            ram,
            agent,
            logs,
            transport,
            disk,
        } => commands::lab_hosts(
            &rt,
            &cancel,
            &ram,
            agent,
            &logs,
            transport == "ssh",
            disk.as_deref(),
        ),
        Cmd::Predict {
            scenario,
            format,
            json,
            fit,
            model,
            bounds,
        } => migbench::predict::command(
            &scenario,
            if json {
                migbench::predict::Format::Json
            } else {
                format
            },
            &fit,
            model.as_deref(),
            &bounds.limits(),
        ),
        Cmd::Advise(args) => migbench::advise::command(&rt, args),
        Cmd::Cleanup { snapshots } => {
            migbench::cleanup::cleanup(snapshots, &migbench::scheduler::Display::new()).map(|()| 0)
        }
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            let usage = e
                .chain()
                .any(|c| c.is::<ScenarioError>() || c.is::<UsageError>());
            if usage {
                2
            } else {
                1
            }
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
