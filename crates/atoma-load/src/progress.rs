//! What the progress callback receives, and a one-line text bar to draw from it.
//!
//! ```
//! # use atoma_load::{Phase, Progress, Stop};
//! # use std::time::Duration;
//! let p = Progress {
//!     phase: Phase::Running,
//!     elapsed: Duration::from_secs(2),
//!     stop: Stop::Transactions(1000),
//!     sent: 520,
//!     succeeded: 500,
//!     failed: 0,
//!     errors: 0,
//!     retries: 3,
//! };
//! assert_eq!(p.line(20), "[##########----------]  500/1000 txs  50%  250 tx/s  0 errors  3 retries");
//! ```

use std::io::Write;
use std::time::Duration;

use crate::config::Stop;

/// Where a run is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Funding accounts and preparing the market: `done` of `total` steps.
    Setup {
        /// Steps finished.
        done: u64,
        /// Steps in all.
        total: u64,
    },
    /// Sending the load.
    Running,
    /// Every client finished; the report follows.
    Finished,
}

/// Counts so far, given to the progress callback every `progress_interval` and once at the end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Progress {
    /// Where the run is.
    pub phase: Phase,
    /// Since the load started (zero during setup).
    pub elapsed: Duration,
    /// When the run stops.
    pub stop: Stop,
    /// Transactions sent at least once.
    pub sent: u64,
    /// Executed and applied by the contract.
    pub succeeded: u64,
    /// Executed and refused by the contract (the nonce is consumed; it is on the chain).
    pub failed: u64,
    /// Never executed: a final error (see the report's `errors_by_name`).
    pub errors: u64,
    /// Busy and not-yet answers that were retried.
    pub retries: u64,
}

impl Progress {
    /// Transactions that got a result from the chain (succeeded or failed).
    pub fn executed(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Transactions finished one way or another.
    pub fn done(&self) -> u64 {
        self.executed() + self.errors
    }

    /// How far the run is, 0.0 to 1.0.
    pub fn fraction(&self) -> f64 {
        let f = match (self.phase, self.stop) {
            (Phase::Setup { .. }, _) => 0.0,
            (Phase::Finished, _) => 1.0,
            (Phase::Running, Stop::Transactions(n)) => self.done() as f64 / n.max(1) as f64,
            (Phase::Running, Stop::Duration(d)) => self.elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9),
        };
        f.clamp(0.0, 1.0)
    }

    /// Executed transactions per second so far.
    pub fn tps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.executed() as f64 / secs } else { 0.0 }
    }

    /// `[#####-----]` of `width` cells.
    pub fn bar(&self, width: usize) -> String {
        let filled = ((self.fraction() * width as f64).round() as usize).min(width);
        format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
    }

    /// A bar and the counts on one line, for a terminal.
    pub fn line(&self, width: usize) -> String {
        let bar = self.bar(width);
        match self.phase {
            Phase::Setup { done, total } => format!("{bar}  setting up: {done}/{total}"),
            _ => {
                let goal = match self.stop {
                    Stop::Transactions(n) => format!("{}/{n} txs", self.done()),
                    Stop::Duration(d) => {
                        format!(
                            "{} txs  {:.0}/{:.0} s",
                            self.done(),
                            self.elapsed.as_secs_f64(),
                            d.as_secs_f64()
                        )
                    }
                };
                format!(
                    "{bar}  {goal}  {:.0}%  {:.0} tx/s  {} errors  {} retries",
                    self.fraction() * 100.0,
                    self.tps(),
                    self.errors,
                    self.retries
                )
            }
        }
    }
}

/// A ready-made progress callback: redraws [`Progress::line`] in place on stderr (a carriage
/// return, no newline until the run finishes).
///
/// ```no_run
/// # async fn demo(config: atoma_load::LoadConfig) -> Result<(), atoma_load::LoadError> {
/// let report = atoma_load::run(&config, atoma_load::progress::stderr_bar(30)).await?;
/// println!("{}", report.table());
/// # Ok(()) }
/// ```
pub fn stderr_bar(width: usize) -> impl FnMut(&Progress) + Send {
    move |p: &Progress| {
        let mut err = std::io::stderr().lock();
        let end = if p.phase == Phase::Finished { "\n" } else { "" };
        // Progress output is best effort.
        let _ = write!(err, "\r{}\x1b[K{end}", p.line(width));
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(phase: Phase, stop: Stop) -> Progress {
        Progress {
            phase,
            elapsed: Duration::from_secs(5),
            stop,
            sent: 40,
            succeeded: 30,
            failed: 5,
            errors: 5,
            retries: 0,
        }
    }

    #[test]
    fn fractions_follow_the_stop_rule() {
        let by_count = progress(Phase::Running, Stop::Transactions(80));
        assert_eq!((by_count.done(), by_count.fraction()), (40, 0.5));
        assert_eq!(by_count.bar(4), "[##--]");
        assert_eq!(by_count.tps(), 7.0);
        let by_time = progress(Phase::Running, Stop::Duration(Duration::from_secs(20)));
        assert_eq!(by_time.fraction(), 0.25);
        assert_eq!(progress(Phase::Finished, Stop::Transactions(1000)).bar(3), "[###]");
        let setup = progress(Phase::Setup { done: 2, total: 9 }, Stop::Transactions(10));
        assert_eq!(setup.line(2), "[--]  setting up: 2/9");
    }
}
