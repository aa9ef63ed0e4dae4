//! What a server's admin `/metrics` (Prometheus text) says, read the way the auth and gateway
//! suites check and report it: the handled counters by method and code, and the handling-time
//! histogram's buckets, compared between two scrapes around a run; and any one family by one
//! label (a service's own series, as the provisioning suite reads them).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::calls::CALL_TIMEOUT;

/// One counter family by (`grpc_method`, another label).
type Series = BTreeMap<(String, String), u64>;

/// Calls by status code (`OK`, `CANCELLED`, …).
pub type Codes = BTreeMap<String, u64>;

/// What the server's admin `/metrics` said at one moment.
#[derive(Debug, Default)]
pub struct Scrape {
    /// `ironmesh_grpc_server_handled_total` by (method, code).
    pub handled: Series,
    /// `ironmesh_grpc_server_handling_seconds_bucket` by (method, le).
    buckets: Series,
}

pub async fn scrape(admin: SocketAddr) -> Result<Scrape, String> {
    Ok(Scrape::parse(&metrics_text(admin).await?))
}

/// The Prometheus text of the server's admin `/metrics`.
pub async fn metrics_text(admin: SocketAddr) -> Result<String, String> {
    reqwest::Client::new()
        .get(format!("http://{admin}/metrics"))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| format!("GET /metrics: {err}"))?
        .text()
        .await
        .map_err(|err| format!("GET /metrics: {err}"))
}

/// The samples of `metric` by the value of `label`, summed over the other labels (samples
/// without it are left out; a metric without labels has none).
pub fn samples_by(text: &str, metric: &str, label: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, count) in samples(text, metric) {
        if let Some(value) = label_value(labels, label) {
            *out.entry(value).or_default() += count as u64;
        }
    }
    out
}

/// Every sample of `metric` (with labels) in a Prometheus text exposition: its label text and
/// value.
fn samples<'a>(text: &'a str, metric: &str) -> impl Iterator<Item = (&'a str, f64)> {
    let prefix = format!("{metric}{{");
    text.lines().filter_map(move |line| {
        let (labels, value) = line.strip_prefix(&prefix)?.split_once("} ")?;
        Some((labels, value.trim().parse::<f64>().ok()?))
    })
}

fn label_value(labels: &str, name: &str) -> Option<String> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        Self {
            handled: parse_series(text, "ironmesh_grpc_server_handled_total", "grpc_code"),
            buckets: parse_series(text, "ironmesh_grpc_server_handling_seconds_bucket", "le"),
        }
    }

    /// The `method` calls the server completed since `before`, by code (only codes it counted
    /// at least once in between).
    pub fn handled_since(&self, before: &Scrape, method: &str) -> Codes {
        let mut codes = Codes::new();
        for ((m, code), count) in &self.handled {
            let earlier = before
                .handled
                .get(&(m.clone(), code.clone()))
                .copied()
                .unwrap_or(0);
            let n = count.saturating_sub(earlier);
            if m == method && n > 0 {
                codes.insert(code.clone(), n);
            }
        }
        codes
    }
}

/// The samples of `metric` in a Prometheus text exposition, by (`grpc_method`, `label`).
fn parse_series(text: &str, metric: &str, label: &str) -> Series {
    let mut out = Series::new();
    for (labels, count) in samples(text, metric) {
        let (Some(method), Some(other)) = (
            label_value(labels, "grpc_method"),
            label_value(labels, label),
        ) else {
            continue;
        };
        *out.entry((method, other)).or_default() += count as u64;
    }
    out
}

/// `3 × CANCELLED, 1 × INTERNAL` (`none` if empty).
pub fn describe(codes: &Codes) -> String {
    if codes.is_empty() {
        return "none".to_owned();
    }
    codes
        .iter()
        .map(|(code, n)| format!("{n} × {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The server's own p99 for `method` between two scrapes, as the upper bound (ms) of the
/// histogram bucket that holds it (infinite beyond the last bucket); None without calls.
pub fn server_p99_ms(before: &Scrape, after: &Scrape, method: &str) -> Option<f64> {
    let mut buckets: Vec<(f64, u64)> = after
        .buckets
        .iter()
        .filter(|((m, _), _)| m == method)
        .filter_map(|((m, le), count)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().ok()?
            };
            let earlier = before
                .buckets
                .get(&(m.clone(), le.clone()))
                .copied()
                .unwrap_or(0);
            Some((bound, count.saturating_sub(earlier)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    // Cumulative buckets: the first whose count reaches 99 % of all calls.
    let needed = (total as f64 * 0.99).ceil() as u64;
    buckets
        .iter()
        .find(|(_, count)| *count >= needed)
        .map(|(bound, _)| bound * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_family_by_one_label() {
        let text = "# TYPE x counter\n\
            x_total{service=\"p\",kind=\"board\"} 3\n\
            x_total{service=\"p\",kind=\"single\"} 5\n\
            x_total{service=\"q\",kind=\"single\"} 1\n\
            x_totally{kind=\"board\"} 7\n";
        let kinds = samples_by(text, "x_total", "kind");
        assert_eq!(kinds.get("board"), Some(&3));
        assert_eq!(kinds.get("single"), Some(&6));
        assert_eq!(samples_by(text, "x_total", "le"), BTreeMap::new());
    }

    #[test]
    fn server_p99_from_the_histogram() {
        let bucket = |le: &str, n: u64| {
            format!(
                "ironmesh_grpc_server_handling_seconds_bucket{{grpc_method=\"GetMe\",grpc_service=\"x\",service=\"auth\",le=\"{le}\"}} {n}\n"
            )
        };
        let before =
            Scrape::parse(&[bucket("0.001", 50), bucket("0.005", 50), bucket("+Inf", 50)].concat());
        let after = Scrape::parse(
            &[
                bucket("0.001", 140),
                bucket("0.005", 150),
                bucket("+Inf", 150),
            ]
            .concat(),
        );
        // 100 calls in the window, 90 within 1 ms, all within 5 ms.
        assert_eq!(server_p99_ms(&before, &after, "GetMe"), Some(5.0));
        assert_eq!(server_p99_ms(&after, &after, "GetMe"), None);
        let slow = Scrape::parse(&[bucket("0.001", 0), bucket("+Inf", 100)].concat());
        assert_eq!(
            server_p99_ms(&Scrape::default(), &slow, "GetMe"),
            Some(f64::INFINITY)
        );
    }
}
