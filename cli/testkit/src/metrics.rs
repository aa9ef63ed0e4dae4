//! Reading a component's `/metrics` in tests: scrape it, pick one series' value, and have
//! `promtool` (Debian package `prometheus`) check the exposition format — required in CI,
//! skipped with a note elsewhere.

use std::net::SocketAddr;

/// The text of `http://{admin}/metrics`.
pub async fn scrape(admin: SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .expect("a /metrics body")
}

/// The value of series `name` whose labels include every `(label, value)` of `labels`; `None`
/// when no such series is exposed. Counters are process-wide, so tests compare before/after.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| {
            labels
                .iter()
                .all(|(label, value)| line.contains(&format!("{label}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// Fails the test if `promtool check metrics` refuses `text`. Without promtool on the PATH it
/// says so and passes — except in CI (`CI=true`), which must have it.
pub fn check_with_promtool(text: &str) {
    use std::io::Write;
    let Some(promtool) = which("promtool") else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "promtool is required in CI (Debian package `prometheus`)"
        );
        eprintln!("promtool not found: the exposition format is not checked");
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(tool))
        .find(|path| path.is_file())
}
