//! What every long-running part shares: the interruption flag set by
//! Ctrl-C / SIGTERM ([`Cancel`]) and the progress display ([`Display`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressDrawTarget};

/// Set by Ctrl-C / SIGTERM; every long wait checks it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Ask everything to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Progress display shared by the scheduler and the executor.
#[derive(Clone)]
pub struct Display {
    /// All bars.
    pub multi: MultiProgress,
    /// True when stderr is a terminal (bars are drawn).
    pub interactive: bool,
}

impl Display {
    /// Bars on stderr if it is a terminal, plain lines otherwise.
    pub fn new() -> Display {
        use std::io::IsTerminal;
        let interactive = std::io::stderr().is_terminal();
        let target = if interactive {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Display {
            multi: MultiProgress::with_draw_target(target),
            interactive,
        }
    }

    /// Print a line above the bars (or plainly without a terminal).
    pub fn line(&self, s: &str) {
        if self.interactive {
            let _ = self.multi.println(s);
        } else {
            eprintln!("{s}");
        }
    }
}

impl Default for Display {
    fn default() -> Self {
        Self::new()
    }
}
