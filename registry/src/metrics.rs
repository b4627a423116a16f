//! The registry's metrics, in the OpenMetrics text format (which Prometheus reads), kept by
//! `prometheus-client`.
//!
//! Every label takes its values from a fixed set, so the page cannot grow with what clients
//! send: `route` is the template of the matched route (`/v1/releases/{name}`) or `unmatched`,
//! `method` one of the methods the API uses or `other`, `status` a number. The crate escapes
//! label values and writes `# HELP` and `# TYPE` for each metric.
//!
//! ```text
//! rel_http_requests_total{method="GET",route="/v1/releases/{name}",status="200"} 12
//! rel_http_request_duration_seconds_bucket{method="GET",route="/v1/releases/{name}",le="0.001"} 9
//! rel_chunk_bytes_received_total 6291456
//! rel_manifests_stored_total{kind="release"} 3
//! ```

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request method, from a fixed set.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    DELETE,
    OPTIONS,
    OTHER,
}

impl From<&axum::http::Method> for Method {
    fn from(m: &axum::http::Method) -> Self {
        use axum::http::Method as M;
        match *m {
            M::GET => Method::GET,
            M::HEAD => Method::HEAD,
            M::POST => Method::POST,
            M::PUT => Method::PUT,
            M::DELETE => Method::DELETE,
            M::OPTIONS => Method::OPTIONS,
            _ => Method::OTHER,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Method,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: Method,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

fn latency() -> Histogram {
    // 0.25 ms to about 16 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

/// The registry's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    bytes_received: Counter,
    bytes_sent: Counter,
    manifests: Family<KindLabels, Counter>,
    /// Encoding is serialised: the page is written into one buffer.
    encode: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let bytes_received = Counter::default();
        let bytes_sent = Counter::default();
        let manifests = Family::<KindLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register(
            "rel_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "rel_http_request_duration_seconds",
            "Time from a request's head to its response's head, by method and route template",
            durations.clone(),
        );
        registry.register(
            "rel_chunk_bytes_received",
            "Bytes of packs stored (after every frame was checked)",
            bytes_received.clone(),
        );
        registry.register(
            "rel_chunk_bytes_sent",
            "Bytes of chunk frames sent to pulls",
            bytes_sent.clone(),
        );
        registry.register("rel_manifests_stored", "Manifests stored, by kind", manifests.clone());
        Self {
            registry,
            requests,
            durations,
            bytes_received,
            bytes_sent,
            manifests,
            encode: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the matched template or [`UNMATCHED`].
    pub fn request(&self, method: &axum::http::Method, route: &str, status: u16, took: Duration) {
        let method = Method::from(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn chunk_bytes_received(&self, n: u64) {
        self.bytes_received.inc_by(n);
    }

    pub fn chunk_bytes_sent(&self, n: u64) {
        self.bytes_sent.inc_by(n);
    }

    pub fn manifest_stored(&self, kind: rel_format::Kind) {
        self.manifests
            .get_or_create(&KindLabels { kind: kind.to_string() })
            .inc();
    }

    /// The metrics page.
    pub fn render(&self) -> String {
        let _one = self.encode.lock().expect("not poisoned");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String succeeds");
        out
    }
}
