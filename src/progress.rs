//! Progress bars for long imports and exports: drawn on terminals only, never with `--json`.
//!
//! Library code takes a [`Progress`] and calls [`Progress::inc`]; whether anything is
//! drawn is decided once by the caller with [`visible`]. A hidden progress costs
//! nothing but a branch.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether a command may draw progress: stdout is a terminal and `--json` is off.
///
/// Bars are drawn on stderr, and indicatif also stays silent when stderr is not a
/// terminal, so logs redirected to a file never get control sequences.
pub fn visible(json: bool) -> bool {
    !json && std::io::stdout().is_terminal()
}

/// A progress indicator that may be hidden (the default draws nothing).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress that draws nothing.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// A bar over `total` items (a spinner when unknown) labelled `what`, drawn when `show`.
    pub fn new(total: Option<u64>, what: &str, show: bool) -> Progress {
        if !show {
            return Progress::hidden();
        }
        Progress::with_target(total, what, ProgressDrawTarget::stderr_with_hz(10))
    }

    fn with_target(total: Option<u64>, what: &str, target: ProgressDrawTarget) -> Progress {
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), target);
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix:>9} [{bar:30}] {pos}/{len} {per_sec} {wide_msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, target);
                if let Ok(style) =
                    ProgressStyle::with_template("{prefix:>9} {spinner} {pos} {wide_msg}")
                {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }
        };
        bar.set_prefix(what.to_string());
        // Dropping the last handle clears the bar instead of leaving it on screen.
        let bar = bar.with_finish(ProgressFinish::AndClear);
        Progress { bar: Some(bar) }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Advances by `n` items.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Items done so far (0 when hidden).
    pub fn position(&self) -> u64 {
        self.bar.as_ref().map_or(0, ProgressBar::position)
    }

    /// Sets the total once it is known.
    pub fn set_total(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    /// Shows a short note beside the bar (e.g. the file being read).
    pub fn set_message(&self, msg: impl Into<std::borrow::Cow<'static, str>>) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests;
