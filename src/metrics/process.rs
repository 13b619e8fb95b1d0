//! The standard `process_*` metrics, read from `/proc/self` at each scrape
//! (Linux only: elsewhere they are left out).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads the process's CPU time, memory, descriptors and start time.
#[derive(Debug, Default)]
pub(crate) struct ProcessCollector;

/// What `/proc/self` says; `None` where it can't be read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sample {
    /// User plus system CPU seconds.
    pub(crate) cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub(crate) resident_bytes: Option<i64>,
    /// Virtual memory size, bytes.
    pub(crate) virtual_bytes: Option<i64>,
    /// Open file descriptors.
    pub(crate) open_fds: Option<i64>,
    /// The soft limit on file descriptors.
    pub(crate) max_fds: Option<i64>,
    /// Start time, unix seconds.
    pub(crate) start_time_seconds: Option<f64>,
}

impl Sample {
    /// Reads `/proc/self` now.
    pub(crate) fn read() -> Sample {
        let mut s = Sample::default();
        // SAFETY: sysconf has no memory effects.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command, which may hold spaces, in parentheses.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            // `rest` starts at field 3 (state); field n is f[n - 3].
            let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
            if ticks > 0 {
                if let (Some(u), Some(k)) = (num(14), num(15)) {
                    s.cpu_seconds = Some((u + k) / ticks as f64);
                }
                if let (Some(start), Some(boot)) = (num(22), boot_time()) {
                    s.start_time_seconds = Some(boot + start / ticks as f64);
                }
            }
            s.virtual_bytes = num(23).map(|v| v as i64);
            if page > 0 {
                s.resident_bytes = num(24).map(|p| p as i64 * page);
            }
        }
        s.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as i64);
        s.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse().ok())
            });
        s
    }
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Sample::read();
        if let Some(v) = s.cpu_seconds {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                m.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        if let Some(v) = s.start_time_seconds {
            let m = ConstGauge::new(v);
            m.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                None,
                m.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = Sample::read();
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0), "{s:?}");
        assert!(s.resident_bytes.is_some_and(|r| r > 1024 * 1024), "{s:?}");
        assert!(
            s.virtual_bytes
                .zip(s.resident_bytes)
                .is_some_and(|(v, r)| v >= r),
            "{s:?}"
        );
        let fds = s.open_fds.unwrap();
        assert!(fds >= 3, "stdin, stdout, stderr at least: {s:?}");
        assert!(s.max_fds.is_some_and(|m| m >= fds), "{s:?}");
        let now = crate::broker::now() as f64;
        assert!(
            s.start_time_seconds
                .is_some_and(|t| t <= now + 1.0 && t > now - 3600.0),
            "{s:?}"
        );
    }
}
