//! The baseline: wrk POSTing a real delivery's request (its headers and body, as the receiver
//! captured them) to the same receiver, `-t1 -c<connections> -d<secs>`, with a Lua script
//! written to the work directory.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::receiver::Captured;
use crate::error::BenchError;

/// What wrk reported.
#[derive(Debug, Clone)]
pub struct WrkRun {
    pub requests: u64,
    pub per_sec: f64,
    pub connections: u32,
}

/// The Lua script setting method, body and headers.
pub fn script(request: &Captured) -> String {
    let mut lua = String::from("wrk.method = \"POST\"\n");
    let _ = writeln!(lua, "wrk.body = {}", lua_string(&request.body));
    for (name, value) in &request.headers {
        let _ = writeln!(
            lua,
            "wrk.headers[{}] = {}",
            lua_string(name.as_bytes()),
            lua_string(value.as_bytes())
        );
    }
    lua
}

/// A Lua string literal holding exactly `bytes`.
fn lua_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

/// Runs wrk against `http://addr/hook` for `secs` seconds; fails on any socket error or non-2xx
/// answer it reports.
pub fn run(
    dir: &Path,
    request: &Captured,
    addr: SocketAddr,
    connections: u32,
    secs: u64,
) -> Result<WrkRun, BenchError> {
    let path = dir.join("post.lua");
    std::fs::write(&path, script(request))
        .map_err(BenchError::io(format!("cannot write {}", path.display())))?;
    let output = Command::new("wrk")
        .args([
            "-t1".to_owned(),
            format!("-c{connections}"),
            format!("-d{secs}s"),
            "-s".to_owned(),
            path.display().to_string(),
            format!("http://{addr}/hook"),
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(BenchError::io("cannot run wrk"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BenchError::Failed(format!(
            "wrk failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse(&text, connections)
}

fn parse(text: &str, connections: u32) -> Result<WrkRun, BenchError> {
    let bad = || BenchError::Failed(format!("cannot read wrk's summary:\n{text}"));
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        return Err(BenchError::Failed(format!(
            "wrk saw failed requests: {}",
            line.trim()
        )));
    }
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    let per_sec = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(bad)?;
    Ok(WrkRun {
        requests,
        per_sec,
        connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_and_summary() {
        assert_eq!(lua_string(b"a\"b\\c\n\xc3"), "\"a\\\"b\\\\c\\010\\195\"");
        let summary = "Running 1s test @ http://127.0.0.1:1/hook\n  1 threads and 4 connections\n\
                       \x20 12345 requests in 1.00s, 1.00MB read\nRequests/sec:  12345.67\n\
                       Transfer/sec:      1.00MB\n";
        let run = parse(summary, 4).unwrap();
        assert_eq!(run.requests, 12345);
        assert!((run.per_sec - 12345.67).abs() < 1e-9);
        assert!(parse("Socket errors: connect 0, read 1", 4).is_err());
    }
}
