//! Who may call: only a client on this machine that addressed the sandbox
//! by its own address.
//!
//! Why the `Host` header: the sandbox listens on loopback, but a web page
//! the reader visits can still reach it through the reader's browser. With
//! DNS rebinding, the page's own host name is made to resolve to 127.0.0.1,
//! and the browser then treats the sandbox as the page's origin: no
//! preflight, and the replies readable. What such a request cannot change
//! is its `Host` header, which names the attacker's host. So only requests
//! whose `Host` is the address the sandbox listens on (or `localhost` with
//! its port) are served. A request with an `Origin` header came from a
//! browser page; it is served only when that origin is the sandbox itself.
//! The AWS SDKs, boto3 and the CLI send `Host: 127.0.0.1:PORT` (the
//! endpoint they were given) and no `Origin`.

use std::net::SocketAddr;

use axum::http::HeaderMap;

/// The `Host` values the sandbox answers to.
#[derive(Clone, Debug)]
pub struct Guard {
    hosts: Vec<String>,
}

impl Guard {
    /// The guard for a server listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let port = addr.port();
        let mut hosts = vec![addr.to_string(), format!("localhost:{port}")];
        if addr.ip().is_loopback() && addr.is_ipv4() {
            hosts.push(format!("[::1]:{port}"));
        }
        Self { hosts }
    }

    /// Why a request with these headers is refused, or `None` to serve it.
    pub fn refuse(&self, headers: &HeaderMap) -> Option<String> {
        let host = match headers.get("host").map(|h| h.to_str()) {
            Some(Ok(h)) => h.to_ascii_lowercase(),
            Some(Err(_)) => return Some("the Host header is not text".into()),
            None => return Some("a request must name the sandbox in its Host header".into()),
        };
        if !self.hosts.contains(&host) {
            return Some(format!(
                "the sandbox answers only to Host {} (this request named {host:?}): \
                 a request for another host name is refused (DNS rebinding protection)",
                self.hosts.join(" or ")
            ));
        }
        if let Some(origin) = headers.get("origin") {
            let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
            let ours = self.hosts.iter().any(|h| origin == format!("http://{h}"));
            if !ours {
                return Some(format!(
                    "requests from web pages are refused (Origin {origin:?}); \
                     call the sandbox with an AWS SDK or the AWS CLI"
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_our_own_host_and_origin_are_served() {
        let g = Guard::new("127.0.0.1:4567".parse().unwrap());
        assert_eq!(g.refuse(&headers(&[("host", "127.0.0.1:4567")])), None);
        assert_eq!(g.refuse(&headers(&[("host", "LOCALHOST:4567")])), None);
        assert_eq!(
            g.refuse(&headers(&[
                ("host", "127.0.0.1:4567"),
                ("origin", "http://127.0.0.1:4567")
            ])),
            None
        );
        for bad in [
            vec![],
            vec![("host", "evil.example:4567")],
            vec![("host", "127.0.0.1:4568")],
            vec![("host", "127.0.0.1")],
            vec![
                ("host", "127.0.0.1:4567"),
                ("origin", "http://evil.example"),
            ],
            vec![("host", "127.0.0.1:4567"), ("origin", "null")],
            vec![
                ("host", "127.0.0.1:4567"),
                ("origin", "https://127.0.0.1:4567"),
            ],
        ] {
            assert!(g.refuse(&headers(&bad)).is_some(), "{bad:?}");
        }
    }
}
