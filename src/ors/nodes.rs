//! ORS nodes: each configured node once, its health, and the order in which a service tries
//! them (`_ors_lb_strategy`: `circular` round robin, `linear` first healthy; contract 6.1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};
use pingora_prometheus::prometheus::IntGauge;

use super::client::NodeAddr;
use crate::config::{ApiConfig, LbStrategy};
use crate::start_error::StartError;

/// One ORS node and what the gateway currently believes about its health.
#[derive(Debug)]
pub struct Node {
    /// Where it is.
    pub addr: NodeAddr,
    healthy: AtomicBool,
    /// `gms_ors_node_up{node}`, resolved once.
    up: IntGauge,
}

impl Node {
    /// A node believed healthy until a check or a request finds otherwise.
    pub fn new(addr: NodeAddr) -> Node {
        let up = crate::metrics::ORS_NODE_UP.with_label_values(&[addr.url.as_str()]);
        up.set(1);
        Node {
            addr,
            healthy: AtomicBool::new(true),
            up,
        }
    }

    /// Whether the last health check (or request) found it reachable.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records reachability; logs changes, which an operator wants to see.
    pub fn set_healthy(&self, up: bool) {
        let changed = self.healthy.swap(up, Ordering::Relaxed) != up;
        // Set on every call, not just on a change: should two racing calls set the gauge out of
        // order, the next health check puts it right.
        self.up.set(i64::from(up));
        if changed {
            if up {
                info!("ORS node {} is reachable again", self.addr.url);
            } else {
                warn!("ORS node {} is unreachable", self.addr.url);
            }
        }
    }
}

/// A service's nodes and its rotation.
#[derive(Debug)]
pub struct NodeList {
    nodes: Vec<Arc<Node>>,
    strategy: LbStrategy,
    next: AtomicUsize,
}

impl NodeList {
    /// The order to try nodes in: healthy nodes first (from the rotation's start for
    /// `circular`, from the top for `linear`), then the unhealthy ones as a last resort.
    pub fn order(&self) -> Vec<Arc<Node>> {
        let n = self.nodes.len();
        let start = match self.strategy {
            LbStrategy::Circular if n > 0 => self.next.fetch_add(1, Ordering::Relaxed) % n,
            _ => 0,
        };
        healthy_first((0..n).map(|k| &self.nodes[(start + k) % n]))
    }

    /// Nodes to fall back on when a session's owner fails: configured order, healthy first,
    /// without moving the rotation.
    pub fn fallbacks(&self) -> Vec<Arc<Node>> {
        healthy_first(self.nodes.iter())
    }
}

fn healthy_first<'a>(nodes: impl Iterator<Item = &'a Arc<Node>>) -> Vec<Arc<Node>> {
    let (mut up, down): (Vec<_>, Vec<_>) = nodes.cloned().partition(|node| node.is_healthy());
    up.extend(down);
    up
}

/// Every configured ORS node, once, and each ORS service's list.
#[derive(Debug, Default)]
pub struct Nodes {
    by_url: HashMap<String, Arc<Node>>,
    lists: HashMap<String, NodeList>,
}

impl Nodes {
    /// Resolves every ORS node of the configured services.
    pub fn from_config(config: &ApiConfig) -> Result<Nodes, StartError> {
        let mut nodes = Nodes::default();
        for (name, svc) in &config.services {
            let Some(ors) = svc.kind.ors() else {
                continue;
            };
            let mut list = Vec::new();
            for url in &ors.nodes {
                let node = match nodes.by_url.get(url) {
                    Some(n) => n.clone(),
                    None => {
                        let addr = NodeAddr::parse(url).map_err(|reason| StartError::OrsNode {
                            path: format!("gms.services.{name}._ors"),
                            reason,
                        })?;
                        let node = Arc::new(Node::new(addr));
                        nodes.by_url.insert(url.clone(), node.clone());
                        node
                    }
                };
                list.push(node);
            }
            nodes.lists.insert(
                name.clone(),
                NodeList {
                    nodes: list,
                    strategy: ors.lb,
                    next: AtomicUsize::new(0),
                },
            );
        }
        Ok(nodes)
    }

    /// The node list of an ORS service.
    pub fn list(&self, service: &str) -> Option<&NodeList> {
        self.lists.get(service)
    }

    /// A configured node by its URL (records name their owning node this way).
    pub fn by_url(&self, url: &str) -> Option<&Arc<Node>> {
        self.by_url.get(url)
    }

    /// The configured node a redirect `Location` points at, and the path on it. Redirects to
    /// anything else are refused: the gateway talks only to configured nodes.
    pub fn resolve_location<'a>(&self, location: &'a str) -> Option<(Arc<Node>, &'a str)> {
        self.by_url
            .values()
            .find_map(|n| n.addr.path_of(location).map(|p| (n.clone(), p)))
    }

    /// Active health checks: a TCP connect to every node each `interval`, for ever.
    pub async fn run_health_checks(&self, interval: Duration, connect_timeout: Duration) {
        if self.by_url.is_empty() {
            return;
        }
        loop {
            for node in self.by_url.values() {
                let up = matches!(
                    tokio::time::timeout(
                        connect_timeout,
                        tokio::net::TcpStream::connect(node.addr.addr)
                    )
                    .await,
                    Ok(Ok(_))
                );
                node.set_healthy(up);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(strategy: LbStrategy, n: usize) -> NodeList {
        let nodes = (0..n)
            .map(|i| {
                Arc::new(Node::new(
                    NodeAddr::parse(&format!("http://127.0.0.1:{}", 7000 + i)).unwrap(),
                ))
            })
            .collect();
        NodeList {
            nodes,
            strategy,
            next: AtomicUsize::new(0),
        }
    }

    fn ports(v: &[Arc<Node>]) -> Vec<u16> {
        v.iter().map(|n| n.addr.addr.port()).collect()
    }

    #[test]
    fn circular_rotates_and_linear_does_not() {
        let c = list(LbStrategy::Circular, 3);
        assert_eq!(ports(&c.order()), [7000, 7001, 7002]);
        assert_eq!(ports(&c.order()), [7001, 7002, 7000]);
        let l = list(LbStrategy::Linear, 3);
        assert_eq!(ports(&l.order()), [7000, 7001, 7002]);
        assert_eq!(ports(&l.order()), [7000, 7001, 7002]);
    }

    #[test]
    fn unhealthy_nodes_go_last() {
        let l = list(LbStrategy::Linear, 3);
        l.nodes[0].set_healthy(false);
        assert_eq!(ports(&l.order()), [7001, 7002, 7000]);
    }

    #[test]
    fn the_up_gauge_follows_health() {
        let node = Node::new(NodeAddr::parse("http://127.0.0.1:7999").unwrap());
        let gauge = || {
            crate::metrics::ORS_NODE_UP
                .with_label_values(&["http://127.0.0.1:7999"])
                .get()
        };
        assert_eq!(gauge(), 1);
        node.set_healthy(false);
        assert_eq!(gauge(), 0);
        node.set_healthy(true);
        assert_eq!(gauge(), 1);
    }
}
