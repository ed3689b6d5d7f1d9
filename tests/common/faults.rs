//! A fault-injecting HTTP proxy, for tests.
//!
//! It sits between the SDK clients and the emulators (the SDK is pointed at
//! it with the standard `AWS_ENDPOINT_URL` settings, as a reader would point
//! it at any endpoint) and, by service and operation, answers the first N
//! matching requests with a fault instead of passing them on:
//!
//! - `Status(500|503)`: a server error, in the service's protocol;
//! - `Throttle`: `Throttling` (IAM, Redshift, STS: the query protocol),
//!   `ThrottlingException` (Data API: JSON), `SlowDown` (S3);
//! - `Slow(d)`: waits `d`, then passes the request on;
//! - `Drop`: closes the connection without an answer;
//! - `Truncate`: passes the request on (the emulator acts on it!) and sends
//!   back only half of the reply's body before closing the connection.
//!
//! The service is read from the request's SigV4 credential scope, the
//! operation from `X-Amz-Target` (JSON protocols), the `Action` form field
//! (query protocols) or the method (S3). It is bounded: it serves at most
//! `MAX_REQUESTS` requests and lives at most `MAX_LIFETIME`, and it stops
//! when the `FaultProxy` is dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const MAX_REQUESTS: usize = 20_000;
const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// What to do to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a service error body.
    Status(u16),
    /// Answer with the service's throttling error.
    Throttle,
    /// Wait, then pass the request on.
    Slow(Duration),
    /// Close the connection without answering.
    Drop,
    /// Pass the request on, then send half the reply and close.
    Truncate,
}

/// One injection rule.
#[derive(Debug)]
struct Rule {
    service: String,
    operation: Option<String>,
    fault: Fault,
    /// Matching requests to let through untouched before faulting.
    skip: u32,
    /// Inactive until this many requests with this operation have passed.
    armed_after: Option<(String, u32)>,
    /// Matching requests still to fault.
    remaining: u32,
    /// Told each time this rule fires.
    fired: Arc<Notify>,
}

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The SigV4 service name: `iam`, `redshift`, `redshift-data`, `s3`, `sts`.
    pub service: String,
    /// The operation, e.g. `DescribeClusters`; the method for S3.
    pub operation: String,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// The running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy that sends `redshift-data` to `data_upstream` and
    /// everything else to `upstream`.
    pub async fn start(upstream: String, data_upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let upstreams = Arc::new(HashMap::from([
            ("redshift-data".to_string(), data_upstream),
            ("*".to_string(), upstream),
        ]));
        let st = state.clone();
        let task = tokio::spawn(async move {
            let serve = async {
                let mut served = 0usize;
                while served < MAX_REQUESTS {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    served += 1;
                    let (st, client, upstreams) = (st.clone(), client.clone(), upstreams.clone());
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            handle(req, st.clone(), client.clone(), upstreams.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            };
            let _ = tokio::time::timeout(MAX_LIFETIME, serve).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// Faults the next `count` requests to `service` (and `operation`, if
    /// given), after letting `skip` of them through. Returns a handle told
    /// each time the rule fires.
    pub fn inject(
        &self,
        service: &str,
        operation: Option<&str>,
        fault: Fault,
        skip: u32,
        count: u32,
    ) -> Arc<Notify> {
        self.inject_after(service, operation, fault, skip, count, None)
    }

    /// As [`FaultProxy::inject`], but the rule only starts counting once `n`
    /// requests for operation `op` have gone through (`Some((op, n))`): "the
    /// polls after the second batch", say.
    pub fn inject_after(
        &self,
        service: &str,
        operation: Option<&str>,
        fault: Fault,
        skip: u32,
        count: u32,
        armed_after: Option<(&str, u32)>,
    ) -> Arc<Notify> {
        let fired = Arc::new(Notify::new());
        self.state.lock().unwrap().rules.push(Rule {
            service: service.into(),
            operation: operation.map(Into::into),
            fault,
            skip,
            armed_after: armed_after.map(|(op, n)| (op.to_string(), n)),
            remaining: count,
            fired: fired.clone(),
        });
        fired
    }

    /// Removes every rule: from now on requests pass through.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// How many requests got `fault`.
    pub fn injected(&self, fault: Fault) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.fault == Some(fault))
            .count()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// The service from `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
fn service_of(req: &Request<Incoming>) -> String {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string()
}

/// The error reply `service` would send, in its protocol.
fn error_reply(service: &str, status: u16, code: &str) -> Response<Body> {
    let (content_type, body) = match service {
        "redshift-data" => (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#),
        ),
        "s3" => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>"
            ),
        ),
        _ => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            ),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "fault")
        .body(full(body))
        .expect("valid response")
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstreams: Arc<HashMap<String, String>>,
) -> Result<Response<Body>, std::io::Error> {
    let service = service_of(&req);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let operation = {
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string());
        match target {
            Some(t) => t,
            None if service == "s3" => parts.method.to_string(),
            None => String::from_utf8_lossy(&body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("unknown")
                .to_string(),
        }
    };
    let fault = {
        let mut st = state.lock().unwrap();
        for r in st.rules.iter_mut() {
            if let Some((op, n)) = &mut r.armed_after
                && *op == operation
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    r.armed_after = None;
                    // The arming request itself passes untouched.
                    r.skip += u32::from(r.operation.as_deref() == Some(operation.as_str()));
                }
            }
        }
        let fault = st.rules.iter_mut().find_map(|r| {
            let matches = r.armed_after.is_none()
                && r.service == service
                && r.operation.as_deref().is_none_or(|o| o == operation)
                && r.remaining > 0;
            if !matches {
                return None;
            }
            if r.skip > 0 {
                r.skip -= 1;
                return None;
            }
            r.remaining -= 1;
            r.fired.notify_one();
            Some(r.fault)
        });
        st.seen.push(Seen {
            service: service.clone(),
            operation: operation.clone(),
            fault,
        });
        fault
    };
    match fault {
        Some(Fault::Status(code)) => {
            let name = if code == 503 {
                "ServiceUnavailable"
            } else {
                "InternalFailure"
            };
            return Ok(error_reply(&service, code, name));
        }
        Some(Fault::Throttle) => {
            return Ok(match service.as_str() {
                "redshift-data" => error_reply(&service, 400, "ThrottlingException"),
                "s3" => error_reply(&service, 503, "SlowDown"),
                _ => error_reply(&service, 400, "Throttling"),
            });
        }
        Some(Fault::Drop) => return Err(std::io::Error::other("dropped by the test proxy")),
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::Truncate) | None => {}
    }

    let base = upstreams
        .get(&service)
        .or_else(|| upstreams.get("*"))
        .expect("a default upstream");
    let uri = format!(
        "{base}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut up = Request::builder().method(parts.method.clone()).uri(uri);
    // Every header but Host, which the client sets from the upstream's
    // address, as a reverse proxy does: the sandbox answers only to
    // requests that name it.
    for (k, v) in parts
        .headers
        .iter()
        .filter(|(k, _)| *k != hyper::header::HOST)
    {
        up = up.header(k, v);
    }
    let up = up.body(Full::new(body)).map_err(std::io::Error::other)?;
    let resp = client.request(up).await.map_err(std::io::Error::other)?;
    let (rparts, rbody) = resp.into_parts();
    let bytes = rbody
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if fault == Some(Fault::Truncate) {
        // Keep the upstream's Content-Length, send half, then fail the
        // stream: hyper closes the connection mid-body.
        let half = bytes.slice(..bytes.len() / 2);
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(half)),
            Err(std::io::Error::other("truncated by the test proxy")),
        ];
        let stream = futures_util::stream::iter(frames);
        return Ok(Response::from_parts(
            rparts,
            StreamBody::new(stream).boxed(),
        ));
    }
    Ok(Response::from_parts(rparts, full(bytes)))
}
