//! CloudWatch Embedded Metric Format output: a function's metrics ([`tds_core::metrics`]) printed to
//! stdout as EMF lines after each invocation. Lambda sends stdout to CloudWatch Logs, which extracts
//! the metrics from those lines: no PutMetricData call, no extra latency or permission.

use std::io::Write;

use tds_core::metrics::Metrics;

/// The namespace when `TDS_METRICS_NAMESPACE` is unset (the template sets `TDS/<stack name>`).
pub const DEFAULT_NAMESPACE: &str = "TDS";

/// Prints what a function's [`Metrics`] recorded as EMF lines, in one namespace.
#[derive(Debug, Clone)]
pub struct EmfWriter {
    metrics: Metrics,
    namespace: String,
}

impl EmfWriter {
    /// A writer of `metrics` in `namespace`.
    pub fn new(metrics: Metrics, namespace: impl Into<String>) -> EmfWriter {
        EmfWriter {
            metrics,
            namespace: namespace.into(),
        }
    }

    /// A writer of `metrics` in the namespace of `TDS_METRICS_NAMESPACE` ([`DEFAULT_NAMESPACE`] when
    /// unset or blank).
    pub fn from_env(metrics: Metrics) -> EmfWriter {
        let namespace = std::env::var("TDS_METRICS_NAMESPACE")
            .ok()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        EmfWriter::new(metrics, namespace)
    }

    /// The metrics written.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// What was recorded since the last flush, as EMF lines stamped now, and forgets it.
    pub fn lines(&self) -> Vec<String> {
        self.metrics
            .flush_emf(&self.namespace, chrono::Utc::now().timestamp_millis())
    }

    /// Prints [`EmfWriter::lines`] to stdout, one per line (a failed write is dropped: metrics never
    /// fail an invocation).
    pub fn flush(&self) {
        let lines = self.lines();
        if lines.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}

/// `router` printing `emf`'s lines after each response (what the HTTP functions serve).
pub fn flush_after_each_response(router: axum::Router, emf: EmfWriter) -> axum::Router {
    router.layer(axum::middleware::map_response_with_state(
        std::sync::Arc::new(emf),
        |axum::extract::State(emf): axum::extract::State<std::sync::Arc<EmfWriter>>,
         response: axum::response::Response| async move {
            emf.flush();
            response
        },
    ))
}
