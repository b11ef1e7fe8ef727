//! `laissez consume --metrics ADDR`: the worker's metrics as Prometheus text at `/metrics` and
//! its readiness at `/healthz` (200 when ready, 503 with what is not), over plain HTTP/1.
//! Nothing else is served: any other path is 404. The recorder is installed before the
//! sidecar makes its middleware, so every metric of `docs/amqp.md` ("Metrics") is recorded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use laissez_amqp::sidecar::Health;
use laissez_amqp::telemetry;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::failure::Failure;

/// The Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the exporter's histograms are drained between scrapes (memory stays bounded
/// when nobody scrapes).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// How long a client may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The bound listener and the installed recorder, ready to serve once a runtime runs.
#[derive(Debug)]
pub(crate) struct MetricsEndpoint {
    listener: std::net::TcpListener,
    handle: PrometheusHandle,
}

/// Binds `addr` and installs the Prometheus recorder as the global one; prints the bound
/// address on stderr (so that port 0 is usable). A bind error is exit 3.
pub(crate) fn bind(addr: SocketAddr) -> Result<MetricsEndpoint, Failure> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| Failure::io(format!("--metrics {addr}: cannot listen: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure::io(format!("--metrics {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::io(format!("--metrics {addr}: {e}")))?;
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(telemetry::DECISION_SECONDS.to_owned()),
            &telemetry::DECISION_SECONDS_BUCKETS,
        )
        .map_err(|e| Failure::io(format!("--metrics: {e}")))?
        .set_buckets_for_metric(
            Matcher::Full(telemetry::HANDLER_SECONDS.to_owned()),
            &telemetry::HANDLER_SECONDS_BUCKETS,
        )
        .map_err(|e| Failure::io(format!("--metrics: {e}")))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| Failure::io(format!("--metrics: cannot install the recorder: {e}")))?;
    telemetry::describe();
    // A log line, so that `--log-format json` writes it as JSON too.
    tracing::info!(
        "laissez: metrics on http://{bound}/metrics, readiness on http://{bound}/healthz"
    );
    Ok(MetricsEndpoint { listener, handle })
}

impl MetricsEndpoint {
    /// Serves in tasks of the current Tokio runtime until it stops.
    pub(crate) fn serve(self, health: Health) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let upkeep = self.handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        tokio::spawn(accept(listener, self.handle, health));
        Ok(())
    }
}

async fn accept(listener: tokio::net::TcpListener, handle: PrometheusHandle, health: Health) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%error, "laissez: metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| answer(request, handle.clone(), health.clone()));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "laissez: metrics connection");
            }
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    handle: PrometheusHandle,
    health: Health,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    Ok(match (request.uri().path(), readable) {
        ("/metrics", true) => text(StatusCode::OK, handle.render(), PROMETHEUS_TEXT),
        ("/healthz", true) => match health.check().await {
            Ok(()) => plain(StatusCode::OK, "ready\n".to_owned()),
            Err(why) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        ("/metrics" | "/healthz", false) => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned());
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: /metrics and /healthz only\n".to_owned(),
        ),
    })
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    text(status, body, "text/plain; charset=utf-8")
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
