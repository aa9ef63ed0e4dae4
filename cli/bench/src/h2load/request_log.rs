//! h2load's per-request log (`--log-file`): every request's HTTP status and duration, and the
//! percentiles of those durations.

use std::io::{BufRead, BufReader};
use std::path::Path;

/// Reads h2load's `--log-file` (tab-separated: start time µs, HTTP status, duration µs) and
/// returns the durations, sorted. Every request must have HTTP status 200.
pub fn read_request_log(path: &Path) -> Result<Vec<u64>, String> {
    let file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let mut latencies = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|err| err.to_string())?;
        let (status, micros) = parse_log_line(&line)
            .ok_or_else(|| format!("line {}: cannot parse `{line}`", number + 1))?;
        if status != 200 {
            return Err(format!(
                "line {}: HTTP status {status}, not 200: `{line}`",
                number + 1
            ));
        }
        latencies.push(micros);
    }
    if latencies.is_empty() {
        return Err("no request logged".to_owned());
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// `(status, duration µs)` of one log line.
fn parse_log_line(line: &str) -> Option<(u16, u64)> {
    let mut columns = line.split('\t');
    let _start = columns.next()?;
    let status = columns.next()?.trim().parse().ok()?;
    let micros = columns.next()?.trim().parse().ok()?;
    Some((status, micros))
}

/// The nearest-rank percentile `p` (0..=1) of sorted microsecond values, in milliseconds.
pub fn percentile_ms(sorted_micros: &[u64], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return f64::NAN;
    }
    let n = sorted_micros.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted_micros[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&sorted, 0.50), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
    }

    #[test]
    fn log_lines() {
        assert_eq!(
            parse_log_line("1700000000000000\t200\t1234"),
            Some((200, 1234))
        );
        assert_eq!(parse_log_line("garbage"), None);
    }
}
