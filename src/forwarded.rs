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

/// The client's address: the peer, unless the peer is a trusted proxy; then the last address
/// of `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the peer it
/// saw, so the right end is the most trusted), else `X-Real-IP`, else the peer.
pub fn client_ip(session: &ServerSession, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = peer_ip(session)?;
    if proxies.is_empty() || !trusted(peer, proxies) {
        return Some(peer);
    }
    Some(claimed_client(&session.req_header().headers, proxies).unwrap_or(peer))
}

/// What trusted proxies say the client was.
fn claimed_client(headers: &HeaderMap, proxies: &[IpNet]) -> Option<IpAddr> {
    let mut chain: Vec<&str> = Vec::new();
    for v in headers.get_all(X_FORWARDED_FOR) {
        chain.extend(v.to_str().ok()?.split(',').map(str::trim));
    }
    for entry in chain.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            break;
        };
        if !trusted(ip, proxies) {
            return Some(ip);
        }
    }
    if let Some(ip) = chain.first().and_then(|e| e.parse().ok()) {
        return Some(ip);
    }
    headers
        .get(X_REAL_IP)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
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

    #[test]
    fn the_client_is_the_last_address_no_trusted_proxy_added() {
        let p = nets(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
            ("x-forwarded-for", "10.0.0.5"),
        ]);
        assert_eq!(claimed_client(&h, &p), Some("2.2.2.2".parse().unwrap()));
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.5")]);
        assert_eq!(claimed_client(&h, &p), Some("10.0.0.9".parse().unwrap()));
        let h = headers(&[("x-real-ip", " 3.3.3.3 ")]);
        assert_eq!(claimed_client(&h, &p), Some("3.3.3.3".parse().unwrap()));
        let h = headers(&[("x-forwarded-for", "junk")]);
        assert_eq!(claimed_client(&h, &p), None);
    }
}
