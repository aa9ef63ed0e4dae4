//! CPU time of a process's threads, from `/proc/<pid>/task/*/{schedstat,comm}`: in total (a
//! server child's, [`crate::child`]) or split by thread between two readings (this process's
//! services against the bench's own clients, the provisioning suite).

use std::collections::HashMap;
use std::time::Duration;

/// Every thread of a process at one moment: its name (`comm`) and the CPU time it has run.
#[derive(Debug, Default)]
pub struct Threads(HashMap<u32, (String, u64)>);

/// The threads of process `pid` (`self` for this one); None if /proc could not tell.
pub fn threads(pid: &str) -> Option<Threads> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let entry = entry.ok()?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended between the listing and the read is simply not counted.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        out.insert(tid, (comm.trim_end().to_owned(), ns));
    }
    Some(Threads(out))
}

impl Threads {
    /// CPU time all the threads have run.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.values().map(|(_, ns)| ns).sum())
    }

    /// CPU time run since `before` by the threads `include(tid, name)` picks: a thread started
    /// in between counts whole, one that ended in between is missing.
    pub fn since(&self, before: &Threads, include: impl Fn(u32, &str) -> bool) -> Duration {
        let ns = self
            .0
            .iter()
            .filter(|(tid, (name, _))| include(**tid, name))
            .map(|(tid, (_, ns))| {
                let earlier = before.0.get(tid).map_or(0, |(_, ns)| *ns);
                ns.saturating_sub(earlier)
            })
            .sum();
        Duration::from_nanos(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_splits_by_thread() {
        let before = threads("self").expect("/proc");
        let spin = std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(|| {
                let until = std::time::Instant::now() + Duration::from_millis(30);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                // Keep the thread alive until the reading below.
                std::thread::sleep(Duration::from_millis(200));
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let after = threads("self").expect("/proc");
        spin.join().unwrap();
        let spun = after.since(&before, |_, name| name == "cpu-test-spin");
        assert!(spun >= Duration::from_millis(10), "{spun:?}");
        assert!(after.total() >= spun);
    }
}
