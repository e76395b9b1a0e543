//! How `hoist push` tells how the push goes, on stderr, from the pipeline's events: a
//! progress bar on a terminal, a plain line every few seconds elsewhere (CI logs: no escape
//! codes, no carriage returns, and never silent for longer than the interval, so a job
//! watchdog sees it alive even while the registry is slow), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use hoist::push::events::Event;
use hoist::report::Outcome;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

/// Where progress goes.
pub enum Mode {
    /// An `indicatif` bar (stderr is a terminal).
    Bar,
    /// A plain line at this interval (stderr is a file or a pipe).
    Lines(Duration),
    /// Nothing (`--quiet`).
    Quiet,
}

impl Mode {
    /// The mode for this process's stderr.
    pub fn choose(quiet: bool, interval: Duration) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bar,
            (false, false) => Mode::Lines(interval),
        }
    }
}

/// What is known so far.
struct State {
    started: Instant,
    received: u64,
    sent: u64,
    blobs: u64,
}

impl State {
    /// `120.00 MiB read, 80.10 MiB sent, 3 blobs, 30.02 MiB/s`.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (self.received as f64 / elapsed) as u64;
        format!(
            "{} read, {} sent, {} blobs, {}/s",
            HumanBytes(self.received),
            HumanBytes(self.sent),
            self.blobs,
            HumanBytes(rate)
        )
    }
}

/// The mode at work.
enum View {
    Bar(ProgressBar),
    Lines,
    Quiet,
}

impl View {
    /// The bar's counters (the lines say them at their own pace).
    fn show(&self, state: &State) {
        if let View::Bar(bar) = self {
            bar.set_position(state.received);
            let blobs = state.blobs;
            bar.set_message(format!("{} sent · {blobs} blobs", HumanBytes(state.sent)));
        }
    }

    /// A line that stays: above the bar, or among the lines.
    fn say(&self, line: &str) {
        match self {
            View::Bar(bar) => bar.println(line),
            View::Lines => eprintln!("hoist: {line}"),
            View::Quiet => {}
        }
    }
}

/// Follows the events until `done` or `error` (or the channel ends). `total` is the
/// archive's size when known (a file, not stdin).
pub async fn follow(mode: Mode, total: Option<u64>, mut rx: UnboundedReceiver<Event>) {
    let (view, every) = match mode {
        Mode::Bar => (View::Bar(bar(total)), None),
        Mode::Lines(every) => (View::Lines, Some(every)),
        Mode::Quiet => (View::Quiet, None),
    };
    // Without lines the interval is never polled.
    let mut tick = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
    tick.tick().await;
    let mut state = State {
        started: Instant::now(),
        received: 0,
        sent: 0,
        blobs: 0,
    };
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = tick.tick(), if every.is_some() => {
                view.say(&state.line());
                continue;
            }
        };
        match event {
            Some(Event::Progress {
                bytes_received,
                bytes_sent,
            }) => (state.received, state.sent) = (bytes_received, bytes_sent),
            Some(Event::Blob {
                digest,
                size,
                outcome,
                ..
            }) => {
                state.blobs += 1;
                view.say(&format!(
                    "blob {digest} {} {}",
                    HumanBytes(size),
                    word(outcome)
                ));
            }
            Some(Event::Image { .. }) => {}
            Some(Event::Done { .. } | Event::Error { .. }) | None => break,
        }
        view.show(&state);
    }
    if let View::Bar(bar) = view {
        bar.finish_and_clear();
    }
}

/// An outcome as the report spells it.
fn word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Uploaded => "uploaded",
        Outcome::Exists => "exists",
        Outcome::Mounted => "mounted",
        Outcome::Foreign => "foreign",
    }
}

/// A bar over the archive's bytes when its size is known, a spinner when not; both with
/// bytes sent, blobs done and throughput.
fn bar(total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => {
            "{spinner} {elapsed:>3} [{wide_bar}] {binary_bytes}/{binary_total_bytes} read · {msg} · {binary_bytes_per_sec}"
        }
        None => "{spinner} {elapsed:>3} {binary_bytes} read · {msg} · {binary_bytes_per_sec}",
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message("0 B sent · 0 blobs");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
