//! Each step's state while a run goes: one live line per step on a
//! terminal, one log line per change otherwise (CI logs, cron mail).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The run's progress display.
pub struct RunDisplay {
    names: Vec<String>,
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    quiet: bool,
    started: Instant,
}

impl RunDisplay {
    /// A display for steps `names`: live lines when `live` and stderr is a
    /// terminal; nothing at all when `quiet`.
    pub fn new(names: &[String], live: bool, quiet: bool) -> Self {
        let bars = (live && !quiet && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {prefix:<24} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bars = names
                .iter()
                .map(|n| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(n.clone());
                    bar.set_message("pending");
                    bar
                })
                .collect();
            (multi, bars)
        });
        Self {
            names: names.to_vec(),
            bars,
            quiet,
            started: Instant::now(),
        }
    }

    /// Step `index` changed: `state` (a word) and an optional detail.
    pub fn update(&self, index: usize, state: &str, detail: &str, finished: bool) {
        let text = if detail.is_empty() {
            state.to_string()
        } else {
            format!("{state}: {detail}")
        };
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(index) {
                    if state == "running" {
                        bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    }
                    bar.set_message(text);
                    if finished {
                        bar.finish();
                    }
                }
            }
            None if !self.quiet => {
                let name = self.names.get(index).map(String::as_str).unwrap_or("?");
                eprintln!(
                    "[{:>7.1}s] step {name}: {text}",
                    self.started.elapsed().as_secs_f64()
                );
            }
            None => {}
        }
    }

    /// A line about the whole run.
    pub fn note(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}
