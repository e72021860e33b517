//! The `proxy` baseline: a `ProxyHttp` that passes every request to one backend, as the
//! gateway passes what is not the API's to its web tier; a request for a rewritten path goes
//! to its own upstreams in turn (round robin) with its path replaced, as nginx's `proxy_pass`
//! of the ORS create in `bench/nginx.conf.tmpl`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use http::Uri;
use pingora::http::RequestHeader;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::{http_proxy_service, HttpProxy};
use pingora::server::Server;
use pingora::services::listening::Service;
use pingora::Result;

use crate::Failure;

/// Requests for `path` go to `upstreams` in turn, as `target`.
struct Rewrite {
    path: String,
    upstreams: Vec<SocketAddr>,
    target: Uri,
    next: AtomicUsize,
}

/// The proxy's backend and rewrites.
pub struct Bare {
    backend: SocketAddr,
    rewrites: Vec<Rewrite>,
}

impl Bare {
    /// From `BACKEND` and `PATH=UPSTREAM,...=TARGET` arguments.
    pub fn parse(backend: &str, rewrites: &[String]) -> Result<Bare, Failure> {
        let mut list = Vec::new();
        for r in rewrites {
            let mut parts = r.splitn(3, '=');
            let (Some(path), Some(ups), Some(target)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("a rewrite is PATH=UPSTREAM,...=TARGET, not '{r}'").into());
            };
            list.push(Rewrite {
                path: path.to_string(),
                upstreams: ups
                    .split(',')
                    .map(|u| u.parse())
                    .collect::<Result<_, _>>()?,
                target: target.parse()?,
                next: AtomicUsize::new(0),
            });
        }
        Ok(Bare {
            backend: backend.parse()?,
            rewrites: list,
        })
    }
}

/// Pingora's proxy service over [`Bare`], as `http_proxy_service` makes it.
pub fn service(server: &Server, bare: Bare) -> Service<HttpProxy<Bare>> {
    http_proxy_service(&server.configuration, bare)
}

#[async_trait]
impl ProxyHttp for Bare {
    /// The rewrite the request matched, by index.
    type CTX = Option<usize>;

    fn new_ctx(&self) -> Option<usize> {
        None
    }

    /// No downstream modules, as the gateway (the default adds a disabled compression module).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Option<usize>,
    ) -> Result<Box<HttpPeer>> {
        let path = session.req_header().uri.path();
        *ctx = self.rewrites.iter().position(|r| r.path == path);
        let addr = match *ctx {
            Some(i) => {
                let r = &self.rewrites[i];
                r.upstreams[r.next.fetch_add(1, Ordering::Relaxed) % r.upstreams.len()]
            }
            None => self.backend,
        };
        Ok(Box::new(HttpPeer::new(addr, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Option<usize>,
    ) -> Result<()> {
        if let Some(i) = *ctx {
            req.set_uri(self.rewrites[i].target.clone());
        }
        Ok(())
    }
}
