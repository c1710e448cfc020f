//! Watching the command's traffic during an adaptive hold (`--drain-quiet`): which TCP ports it
//! listens on, and how long ago a connection to them last opened or last received data. Facts
//! only; the timeline decides when the hold ends.
//!
//! One sample is one `sock_diag` dump of the namespace's TCP sockets (see
//! [`crate::sys::tcp_sockets`]). Traffic is seen when a socket on a watched port has data
//! received recently (`tcpi_last_data_recv`, which also covers keep-alive connections), or when
//! a socket appears that the previous sample did not have (a short connection that opened and
//! closed between samples leaves a TIME_WAIT socket behind, or is counted by its cookie).
//! Connections from `--drain-ignore-from` addresses (probes, sidecars) do not count.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use nix::errno::Errno;

use crate::processes::{self, Scope};
use crate::sys::{self, TcpSocket, TCP_LISTEN};

/// An address block: `10.0.0.0/8`, `127.0.0.1` (a /32), `::1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses `ADDRESS[/PREFIX]`.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let bad = || {
        format!("'{text}' is not an address or address block (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)")
    };
    let (address, prefix) = text
        .split_once('/')
        .map_or((text, None), |(a, p)| (a, Some(p)));
    let network: IpAddr = address.parse().map_err(|_| bad())?;
    let longest = if network.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= longest)
            .ok_or_else(bad)?,
        None => longest,
    };
    Ok(Cidr { network, prefix })
}

/// Parses a TCP port, 1-65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| format!("'{text}' is not a TCP port (1-65535)"))
}

/// Every TCP state but LISTEN.
const CONNECTION_STATES: u32 = !(1 << TCP_LISTEN);

/// The watch over one hold.
#[derive(Debug)]
pub struct TrafficWatch {
    ports: Vec<u16>,
    ignore: Vec<Cidr>,
    /// Cookies of the connections the last sample saw.
    known: BTreeSet<u64>,
}

impl TrafficWatch {
    /// Starts watching `ports`, or the ports on which processes in `scope` listen when none
    /// are given. The first sample only records which connections exist.
    pub fn start(scope: Scope, ports: &[u16], ignore: &[Cidr]) -> Result<TrafficWatch, Errno> {
        let ports = if ports.is_empty() {
            let ours = processes::socket_inodes(scope);
            let found: BTreeSet<u16> = sys::tcp_sockets(1 << TCP_LISTEN)?
                .into_iter()
                .filter(|s| ours.contains(&s.inode))
                .map(|s| s.local_port)
                .collect();
            found.into_iter().collect()
        } else {
            ports.to_vec()
        };
        let mut watch = TrafficWatch {
            ports,
            ignore: ignore.to_vec(),
            known: BTreeSet::new(),
        };
        watch.sample()?;
        Ok(watch)
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// How long ago traffic last reached the watched ports, as far as this sample shows;
    /// `None` when it shows none.
    pub fn sample(&mut self) -> Result<Option<Duration>, Errno> {
        let sockets = sys::tcp_sockets(CONNECTION_STATES)?;
        let ours: Vec<&TcpSocket> = sockets
            .iter()
            .filter(|s| self.ports.contains(&s.local_port))
            .filter(|s| !self.ignore.iter().any(|cidr| cidr.contains(s.remote)))
            .collect();
        let new_connection = ours.iter().any(|s| !self.known.contains(&s.cookie));
        let first_sample = self.known.is_empty();
        self.known = ours.iter().map(|s| s.cookie).collect();
        let latest_data = ours.iter().filter_map(|s| s.since_data_received).min();
        Ok(match (new_connection && !first_sample, latest_data) {
            (true, _) => Some(Duration::ZERO),
            (false, since) => since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_blocks_parse_and_match() {
        let block = parse_cidr("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(parse_cidr("127.0.0.1")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
        assert!(!parse_cidr("127.0.0.1")
            .unwrap()
            .contains("127.0.0.2".parse().unwrap()));
        assert!(parse_cidr("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(parse_cidr("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(!parse_cidr("0.0.0.0/0")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129", ""] {
            assert!(parse_cidr(bad).unwrap_err().contains(&format!("'{bad}'")));
        }
    }

    #[test]
    fn ports_must_be_1_to_65535() {
        assert_eq!(parse_port("8080"), Ok(8080));
        for bad in ["0", "65536", "-1", "http"] {
            assert!(parse_port(bad).unwrap_err().contains(&format!("'{bad}'")));
        }
    }
}
