//! Progress display: a line (bench) or a bar (cp) on standard output when it is a terminal,
//! nothing otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display that does nothing unless standard output is a terminal.
pub struct Progress(Option<ProgressBar>);

fn on_terminal() -> bool {
    std::io::stdout().is_terminal()
}

impl Progress {
    /// Nothing shown (JSON output, say).
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// A one-line status (a spinner and a message).
    pub fn line() -> Progress {
        if !on_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(bar))
    }

    /// A bar over `total` bytes.
    pub fn bytes(total: u64) -> Progress {
        if !on_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template(
                "{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("a valid template"),
        );
        Progress(Some(bar))
    }

    /// Whether anything is shown.
    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    /// Sets the message of a line.
    pub fn message(&self, msg: String) {
        if let Some(b) = &self.0 {
            b.set_message(msg);
        }
    }

    /// Sets the position of a bar.
    pub fn position(&self, pos: u64) {
        if let Some(b) = &self.0 {
            b.set_position(pos);
        }
    }

    /// Removes the display.
    pub fn clear(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
