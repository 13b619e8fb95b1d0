//! The table `scripts/bench.sh` prints: one row per target, what was
//! measured, the reference measured in the same run, and whether the target
//! is met. A measurement adds itself with `rows.push(row(..))`, optionally
//! `.reference(..)`; notes and extra tables go after it.

use std::io::Write as _;

/// One target's line.
pub struct Row {
    pub target: String,
    pub measured: String,
    /// What it is compared with, measured in the same run (or "—").
    pub reference: String,
    pub met: Option<bool>,
}

/// A row without a reference (add one with [`Row::reference`]).
pub fn row(target: &str, measured: String, met: Option<bool>) -> Row {
    Row {
        target: target.into(),
        measured,
        reference: "—".into(),
        met,
    }
}

impl Row {
    /// The same row with its reference.
    pub fn reference(mut self, reference: impl Into<String>) -> Row {
        self.reference = reference.into();
        self
    }
}

/// The whole printout: machine, table, notes, then `extra` (the profile,
/// other tables) as they are.
pub fn render(machine: &str, rows: &[Row], notes: &[String], extra: &[String]) -> String {
    let mut out = format!("Machine: {machine}\n\n");
    out.push_str(
        "| target | measured | reference (same run) | met? |\n| --- | --- | --- | --- |\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.target,
            r.measured,
            r.reference,
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            }
        ));
    }
    for n in notes {
        out.push_str(&format!("\n{n}\n"));
    }
    for e in extra {
        out.push_str(&format!("\n{e}"));
    }
    out
}

/// Prints `out` and writes it to `BENCH_OUT` when set.
pub fn publish(out: &str) {
    println!("{out}");
    if let Ok(path) = std::env::var("BENCH_OUT") {
        let mut f = std::fs::File::create(&path).expect("BENCH_OUT");
        f.write_all(out.as_bytes()).unwrap();
    }
}

/// Target 5: the whole `scripts/bench.sh` run, release build included,
/// from the start time it passes (`BENCH_STARTED`, seconds since the
/// epoch); `None` when run some other way.
pub fn whole_run() -> Option<Row> {
    let started: u64 = std::env::var("BENCH_STARTED").ok()?.parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let total = now.saturating_sub(started);
    let build: u64 = std::env::var("BENCH_BUILD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cache = std::env::var("BENCH_CACHE_STATE").unwrap_or_else(|_| "unknown".into());
    Some(row(
        "5. `scripts/bench.sh` on a fresh clone, release build included, ≤ 10 min",
        format!(
            "{:.1} min, of it {:.1} min building (build cache {cache})",
            total as f64 / 60.0,
            build as f64 / 60.0
        ),
        Some(total <= 600),
    ))
}
