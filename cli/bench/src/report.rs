//! [`Report`]: everything one run measured, as a table or one JSON object; and the formatting
//! every suite's report shares (verdicts, JSON numbers, `n/a` cells).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::args::BenchArgs;
use crate::{auth, events, gateway, notification, orders, provisioning, stack};

/// What every suite's result offers the report.
pub trait SuiteReport {
    /// The suite's section of the table.
    fn table(&self, args: &BenchArgs, out: &mut String);
    /// The suite's member of the JSON object.
    fn json(&self) -> Value;
    /// What the suite's server process wrote to stderr (its log).
    fn server_log(&self) -> &str;
}

/// Everything one run measured.
#[derive(Debug)]
pub struct Report {
    pub args: BenchArgs,
    pub stack: Option<stack::StackReport>,
    pub auth: Option<auth::AuthReport>,
    pub gateway: Option<gateway::GatewayReport>,
    pub events: Option<events::EventsReport>,
    pub orders: Option<orders::OrdersReport>,
    pub notification: Option<notification::NotificationReport>,
    pub provisioning: Option<provisioning::ProvisioningReport>,
}

impl Report {
    /// The suites in report order, by name; None for those not run.
    fn suites(&self) -> [(&'static str, Option<&dyn SuiteReport>); 7] {
        [
            ("stack", self.stack.as_ref().map(|s| s as &dyn SuiteReport)),
            ("auth", self.auth.as_ref().map(|a| a as &dyn SuiteReport)),
            (
                "gateway",
                self.gateway.as_ref().map(|g| g as &dyn SuiteReport),
            ),
            (
                "events",
                self.events.as_ref().map(|e| e as &dyn SuiteReport),
            ),
            (
                "orders",
                self.orders.as_ref().map(|o| o as &dyn SuiteReport),
            ),
            (
                "notification",
                self.notification.as_ref().map(|n| n as &dyn SuiteReport),
            ),
            (
                "provisioning",
                self.provisioning.as_ref().map(|p| p as &dyn SuiteReport),
            ),
        ]
    }

    /// Each suite's section, a blank line between two.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for suite in self.suites().into_iter().filter_map(|(_, suite)| suite) {
            if !out.is_empty() {
                let _ = writeln!(out);
            }
            suite.table(&self.args, &mut out);
        }
        out
    }

    pub fn json(&self) -> Value {
        let [
            stack,
            auth,
            gateway,
            events,
            orders,
            notification,
            provisioning,
        ] = self.suites().map(|(_, suite)| suite.map(SuiteReport::json));
        json!({
            "suite": self.args.suite.name(),
            "params": {
                "duration_secs": self.args.duration,
                "warmup_secs": self.args.warmup,
            },
            "stack": stack,
            "auth": auth,
            "gateway": gateway,
            "events": events,
            "orders": orders,
            "notification": notification,
            "provisioning": provisioning,
        })
    }

    /// The servers' logs are not part of the result, but warnings in them deserve a look: says
    /// so on stderr with the first few.
    pub fn note_server_logs(&self) {
        for (name, suite) in self.suites() {
            let lines: Vec<&str> = suite
                .map(SuiteReport::server_log)
                .unwrap_or_default()
                .lines()
                .filter(|line| !is_routine_log_line(line))
                .collect();
            if lines.is_empty() {
                continue;
            }
            eprintln!(
                "ironmesh-bench: note: the {name} server process logged {} line(s) above INFO; the first:",
                lines.len()
            );
            for line in lines.iter().take(3) {
                eprintln!("  {line}");
            }
        }
    }
}

/// A JSON log line at INFO or below (start-up, drain): not worth a note.
fn is_routine_log_line(line: &str) -> bool {
    ["INFO", "DEBUG", "TRACE"]
        .iter()
        .any(|level| line.contains(&format!("\"level\":\"{level}\"")))
}

pub fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// A JSON number with four decimals (`null` for NaN/infinity, which JSON cannot carry).
pub fn num(value: f64) -> Value {
    if value.is_finite() {
        json!((value * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

pub fn opt_num(value: Option<f64>) -> Value {
    value.map_or(Value::Null, num)
}

/// A table cell: `show(value)`, or `n/a` when the figure is unknown.
pub fn or_na(value: Option<f64>, show: impl FnOnce(f64) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), show)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers() {
        assert_eq!(num(1.234_567), json!(1.2346));
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(opt_num(None), Value::Null);
    }

    #[test]
    fn routine_log_lines() {
        assert!(is_routine_log_line(
            r#"{"level":"INFO","message":"listening"}"#
        ));
        assert!(!is_routine_log_line(r#"{"level":"WARN","message":"x"}"#));
        assert!(!is_routine_log_line("thread 'main' panicked"));
    }
}
