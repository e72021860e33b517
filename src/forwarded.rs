//! Who the client is, and what the web tier is told of it (issue 15, item 5). A client may send
//! `X-Forwarded-For`, `X-Real-IP` and `Forwarded` saying anything; they are believed only from
//! a peer in `gms.trusted_proxies` (a load balancer in front of the gateway). The same address
//! feeds the API's rate limits and the web tier's `X-Forwarded-For`.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;

/// `X-Forwarded-For`: the chain of addresses a request came through, client first.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// `X-Forwarded-Proto`: the scheme the client used.
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
/// `X-Forwarded-Host`: the host the client asked for.
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
/// `X-Real-IP`: one proxy's word for the client address.
pub const X_REAL_IP: &str = "x-real-ip";
/// `Forwarded` (RFC 7239).
pub const FORWARDED: &str = "forwarded";

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

/// The peer's IP address.
fn peer_ip(session: &ServerSession) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The client's address: the peer, unless the peer is a trusted proxy; then the address its
/// forwarding headers name ([`claimed_client`]), else the peer.
pub fn client_ip(session: &ServerSession, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = peer_ip(session)?;
    if proxies.is_empty() || !trusted(peer, proxies) {
        return Some(peer);
    }
    Some(claimed_client(&session.req_header().headers, proxies).unwrap_or(peer))
}

/// What trusted proxies say the client was (`None`: the peer itself). Each proxy appends the
/// peer it saw to `X-Forwarded-For`, so the chain is read from the right, past the trusted
/// proxies: the first address that is not one is the client. An entry that is not an address
/// ends the walk: what lies left of it was not written by a trusted hop, so the client is the
/// last trusted hop passed (none: the peer), never an address further left, which the client
/// itself may have written. Without `X-Forwarded-For`, `X-Real-IP`.
fn claimed_client(headers: &HeaderMap, proxies: &[IpNet]) -> Option<IpAddr> {
    let lines = headers.get_all(X_FORWARDED_FOR);
    if lines.iter().next().is_none() {
        return headers
            .get(X_REAL_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
    }
    // A line that is not text counts as one entry that is not an address.
    let entries = lines
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or("").rsplit(','));
    let mut last_hop = None;
    for entry in entries {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        if !trusted(ip, proxies) {
            return Some(ip);
        }
        last_hop = Some(ip);
    }
    last_hop
}

/// Sets the forwarding headers of a request going to the web tier: `X-Forwarded-For` with the
/// peer appended, `X-Forwarded-Proto` and `X-Forwarded-Host`. From a trusted proxy the
/// client's own forwarding headers are kept (and extended); from anyone else they are
/// replaced, and `X-Real-IP` and `Forwarded` dropped.
pub fn set_upstream_headers(
    session: &ServerSession,
    req: &mut RequestHeader,
    proxies: &[IpNet],
) -> pingora::Result<()> {
    let Some(peer) = peer_ip(session) else {
        return Ok(());
    };
    let from_proxy = trusted(peer, proxies);
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let host = session
        .req_header()
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            session
                .get_header(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let chain = if from_proxy {
        let sent: Vec<&str> = req
            .headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if sent.is_empty() {
            peer.to_string()
        } else {
            format!("{}, {peer}", sent.join(", "))
        }
    } else {
        req.remove_header(X_REAL_IP);
        req.remove_header(FORWARDED);
        peer.to_string()
    };
    req.insert_header(X_FORWARDED_FOR, chain)?;
    if !(from_proxy && req.headers.contains_key(X_FORWARDED_PROTO)) {
        req.insert_header(X_FORWARDED_PROTO, if tls { "https" } else { "http" })?;
    }
    if !(from_proxy && req.headers.contains_key(X_FORWARDED_HOST)) {
        match host {
            Some(h) => req.insert_header(X_FORWARDED_HOST, h)?,
            None => {
                req.remove_header(X_FORWARDED_HOST);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_client_is_the_last_address_no_trusted_proxy_added() {
        let p = nets(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
            ("x-forwarded-for", "10.0.0.5"),
        ]);
        assert_eq!(claimed_client(&h, &p), ip("2.2.2.2"));
        // Every hop trusted: the first of them.
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.5")]);
        assert_eq!(claimed_client(&h, &p), ip("10.0.0.9"));
        let h = headers(&[("x-real-ip", " 3.3.3.3 ")]);
        assert_eq!(claimed_client(&h, &p), ip("3.3.3.3"));
        let h = headers(&[("x-forwarded-for", "junk"), ("x-real-ip", "3.3.3.3")]);
        assert_eq!(claimed_client(&h, &p), None);
    }

    /// An entry that is not an address ends the walk: never an address left of it, which the
    /// client may have written itself.
    #[test]
    fn an_entry_that_is_not_an_address_ends_the_walk() {
        let p = nets(&["10.0.0.0/8"]);
        for (chain, client) in [
            ("1.1.1.1, junk", None),
            ("1.1.1.1, junk, 10.0.0.5", ip("10.0.0.5")),
            ("1.1.1.1, 10.0.0.7, , 10.0.0.5", ip("10.0.0.5")),
            ("1.1.1.1:4711, 10.0.0.5", ip("10.0.0.5")),
            ("1.1.1.1, 10.0.0.7, 2.2.2.2, 10.0.0.5", ip("2.2.2.2")),
        ] {
            let h = headers(&[("x-forwarded-for", chain)]);
            assert_eq!(claimed_client(&h, &p), client, "{chain}");
        }
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "junk")]);
        assert_eq!(claimed_client(&h, &p), None);
    }
}
