//! [`Summary`]: the lines of h2load's standard output the bench reads, and the check that every
//! request succeeded (with exactly one response frame each, for gRPC).

/// The parts of h2load's summary the bench uses.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub req_per_sec: f64,
    /// Requests sent; those not `done` were cut when `-D` ran out.
    pub started: u64,
    pub done: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub timeout: u64,
    pub status_2xx: u64,
    pub data_bytes: u64,
}

impl Summary {
    /// Parses lines such as
    /// `finished in 10.00s, 51234.50 req/s, 2.14MB/s`,
    /// `requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout`,
    /// `status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx` and
    /// `traffic: 1KB (1000) total, 500B (500) headers (space savings 90%), 70B (70) data`.
    pub fn parse(output: &str) -> Result<Self, String> {
        let line = |prefix: &str| {
            output
                .lines()
                .map(str::trim)
                .find_map(|line| line.strip_prefix(prefix))
                .ok_or_else(|| format!("h2load printed no `{prefix}` line"))
        };
        let finished = line("finished in ")?;
        let req_per_sec = finished
            .split(", ")
            .find_map(|part| part.strip_suffix(" req/s"))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no req/s in `finished in {finished}`"))?;
        let requests = line("requests: ")?;
        let status = line("status codes: ")?;
        let traffic = line("traffic: ")?;
        let data_bytes = traffic
            .rsplit(", ")
            .next()
            .and_then(|part| part.strip_suffix(" data"))
            .and_then(|part| part.split_once('(')?.1.split_once(')'))
            .and_then(|(n, _)| n.parse::<u64>().ok())
            .ok_or_else(|| format!("no data byte count in `traffic: {traffic}`"))?;
        Ok(Self {
            req_per_sec,
            started: counted(requests, "started")?,
            done: counted(requests, "done")?,
            succeeded: counted(requests, "succeeded")?,
            failed: counted(requests, "failed")?,
            errored: counted(requests, "errored")?,
            timeout: counted(requests, "timeout")?,
            status_2xx: counted(status, "2xx")?,
            data_bytes,
        })
    }

    /// Every request must have succeeded with HTTP 200; with `frame_bytes`, every response body
    /// must be exactly one frame of that size (an error answer is trailers-only, no body).
    pub fn check(&self, frame_bytes: Option<u64>) -> Result<(), String> {
        if self.succeeded == 0 {
            return Err("h2load completed no request".to_owned());
        }
        if self.failed + self.errored + self.timeout > 0 || self.succeeded != self.done {
            return Err(format!(
                "not every request succeeded: {} done, {} succeeded, {} failed, {} errored, {} timed out",
                self.done, self.succeeded, self.failed, self.errored, self.timeout
            ));
        }
        if self.status_2xx != self.succeeded {
            return Err(format!(
                "{} requests succeeded but only {} answered 2xx",
                self.succeeded, self.status_2xx
            ));
        }
        if let Some(frame_bytes) = frame_bytes {
            let expected = self.succeeded * frame_bytes;
            if self.data_bytes != expected {
                return Err(format!(
                    "response bodies total {} bytes, expected {expected} ({} × one {frame_bytes}-byte \
                     response frame): some calls did not answer OK (grpc-status ≠ 0?)",
                    self.data_bytes, self.succeeded
                ));
            }
        }
        Ok(())
    }
}

/// The number before `label` in `12 done, 3 failed`.
fn counted(line: &str, label: &str) -> Result<u64, String> {
    line.split(", ")
        .find_map(|part| {
            let (n, rest) = part.trim().split_once(' ')?;
            (rest == label).then(|| n.parse::<u64>().ok()).flatten()
        })
        .ok_or_else(|| format!("no `{label}` count in `{line}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
finished in 10.00s, 51234.50 req/s, 2.14MB/s
requests: 512345 total, 512665 started, 512345 done, 512345 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 512345 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.81MB (3994470) total, 1.27MB (1334538) headers (space savings 95.47%), 3.42MB (3586415) data
";

    #[test]
    fn parses_h2load_summary() {
        let summary = Summary::parse(OUTPUT).unwrap();
        assert_eq!(
            summary,
            Summary {
                req_per_sec: 51234.50,
                started: 512665,
                done: 512345,
                succeeded: 512345,
                failed: 0,
                errored: 0,
                timeout: 0,
                status_2xx: 512345,
                data_bytes: 3586415,
            }
        );
        summary.check(Some(7)).unwrap();
        summary.check(None).unwrap();
    }

    #[test]
    fn a_missing_response_frame_fails_the_check() {
        let output = OUTPUT.replace("(3586415) data", "(3586408) data");
        assert!(Summary::parse(&output).unwrap().check(Some(7)).is_err());
    }

    #[test]
    fn a_failed_request_fails_the_check_without_a_frame_size() {
        let output = OUTPUT.replace("0 failed", "1 failed");
        assert!(Summary::parse(&output).unwrap().check(None).is_err());
    }
}
