//! Who is calling, by address, pure: the TCP peer, unless the peer is a configured trusted proxy
//! (`--trusted-proxy`), in which case `X-Forwarded-For` is read from the right, skipping trusted proxies,
//! and the first address that is not one is the client. A client can write anything into that header, but
//! only what it says beyond the last trusted hop is taken — never a header from a caller that connected
//! directly. Then the organization's IP allow-list decides.

use ipnet::IpNet;
use std::net::IpAddr;

/// The client's address as the last trusted hop saw it.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    return ip;
                }
            }
            // A malformed entry ends what can be believed: the hop after it is the client.
            Err(_) => return client,
        }
    }
    client
}

/// Whether `address` may call for an organization with this allow-list (empty: everyone).
pub fn allowed(address: IpAddr, allow_list: &[IpNet]) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    allow_list.is_empty() || allow_list.iter().any(|net| net.contains(&address))
}

/// Parses CIDRs (a bare address is a /32 or /128); the error names the entry.
pub fn parse_networks(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{entry:?} is not a CIDR such as 10.0.0.0/8 or an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        parse_networks(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_direct_caller_is_its_peer_whatever_it_claims() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("198.51.100.7"), Some("203.0.113.9"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_address(ip("198.51.100.7"), None, &[]), ip("198.51.100.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client prepended a fake address; the proxy appended the real one.
        let header = "203.0.113.9, 198.51.100.7, 10.1.2.3";
        assert_eq!(client_address(ip("10.0.0.1"), Some(header), &trusted), ip("198.51.100.7"));
        assert_eq!(client_address(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
        assert_eq!(client_address(ip("10.0.0.1"), Some("junk, 198.51.100.7"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_address(ip("10.0.0.1"), Some("10.9.9.9, 10.1.1.1"), &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn the_allow_list_admits_its_networks_only_and_an_empty_list_everyone() {
        let list = nets(&["203.0.113.0/24", "2001:db8::/32"]);
        assert!(allowed(ip("203.0.113.200"), &list));
        assert!(allowed(ip("::ffff:203.0.113.5"), &list), "IPv4-mapped IPv6");
        assert!(allowed(ip("2001:db8::1"), &list));
        assert!(!allowed(ip("198.51.100.1"), &list));
        assert!(allowed(ip("198.51.100.1"), &[]));
        assert!(parse_networks(&["nope".into()]).unwrap_err().contains("\"nope\""));
        assert_eq!(nets(&["127.0.0.1"])[0].to_string(), "127.0.0.1/32");
    }
}
