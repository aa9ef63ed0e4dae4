//! RED metrics per method: calls started, calls handled by code, latency to the final status,
//! calls in flight. Recorded when the call really ends (its trailers), not when the handler
//! returns, so streaming calls are measured whole.
//!
//! Looking a series up by label values hashes and locks inside the registry; the handles of each
//! method are looked up once and cached here, so a call costs a map read and atomic adds.
//! [`super::Observe`] begins and finishes each call's series beside its trace.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::RwLock;
use prometheus::{Histogram, IntCounter, IntGauge};
use tonic::Code;

use crate::grpc::code_name;
use crate::metrics::Metrics;
use crate::policy::PolicyTable;

/// The series of one method.
struct Handles {
    labels: [String; 3],
    started: IntCounter,
    in_flight: IntGauge,
    latency: Histogram,
    /// One counter per status code, created on first use.
    handled: [OnceLock<IntCounter>; 17],
}

impl Handles {
    fn new(labels: [String; 3]) -> Self {
        let metrics = Metrics::global();
        let values = [labels[0].as_str(), labels[1].as_str(), labels[2].as_str()];
        Self {
            started: metrics.server_started.with_label_values(&values),
            in_flight: metrics.server_in_flight.with_label_values(&values),
            latency: metrics.server_handling_seconds.with_label_values(&values),
            handled: Default::default(),
            labels,
        }
    }

    fn handled(&self, code: Code) -> &IntCounter {
        self.handled[code as usize].get_or_init(|| {
            Metrics::global().server_handled.with_label_values(&[
                self.labels[0].as_str(),
                self.labels[1].as_str(),
                self.labels[2].as_str(),
                code_name(code),
            ])
        })
    }
}

/// RED metrics for the calls of `service`; method labels from `policy`.
#[derive(Clone)]
pub struct Red {
    service: &'static str,
    policy: PolicyTable,
    /// By path; every unknown path shares the `unknown` entry, so the map stays bounded.
    handles: Arc<RwLock<HashMap<String, Arc<Handles>, foldhash::fast::RandomState>>>,
}

impl std::fmt::Debug for Red {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Red")
            .field("service", &self.service)
            .finish()
    }
}

impl Red {
    pub fn new(service: &'static str, policy: PolicyTable) -> Self {
        Self {
            service,
            policy,
            handles: Arc::new(RwLock::new(HashMap::default())),
        }
    }

    /// The handles of `path`: its own for a method of the table (looked up by path alone once
    /// made), the shared `unknown` entry for any other path.
    fn handles(&self, path: &str) -> Arc<Handles> {
        if let Some(handles) = self.handles.read().get(path) {
            return handles.clone();
        }
        let key = if self.policy.get(path).is_some() {
            path
        } else {
            ""
        };
        if let Some(handles) = self.handles.read().get(key) {
            return handles.clone();
        }
        let (grpc_service, grpc_method) = self.policy.labels(path);
        let handles = Arc::new(Handles::new([
            self.service.to_owned(),
            grpc_service.to_string(),
            grpc_method.to_string(),
        ]));
        self.handles
            .write()
            .entry(key.to_owned())
            .or_insert(handles)
            .clone()
    }

    /// Counts a call of `path` started and in flight.
    pub(crate) fn begin(&self, path: &str) -> RedCall {
        let handles = self.handles(path);
        handles.started.inc();
        handles.in_flight.inc();
        RedCall {
            handles,
            started: Instant::now(),
        }
    }
}

/// One call being measured; [`RedCall::finish`] records how it ended.
pub(crate) struct RedCall {
    handles: Arc<Handles>,
    started: Instant,
}

impl RedCall {
    pub(crate) fn finish(self, code: Code) {
        let handles = self.handles;
        handles.in_flight.dec();
        handles
            .latency
            .observe(self.started.elapsed().as_secs_f64());
        handles.handled(code).inc();
    }
}
