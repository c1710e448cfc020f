//! The TCP sockets of grace-init's network namespace, from the kernel's `sock_diag` netlink
//! interface (INET_DIAG, the one `ss` uses): unprivileged, no daemon, IPv4 and IPv6. Only facts:
//! what to make of them is the caller's business.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use nix::errno::Errno;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const INET_DIAG_INFO: u16 = 2;
/// TCP_LISTEN in the kernel's state numbering.
pub const TCP_LISTEN: u8 = 10;

/// Offsets in `struct tcp_info` (stable kernel ABI).
const TCPI_LAST_DATA_RECV: usize = 52;

/// One TCP socket of the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    /// The kernel's TCP state (1 ESTABLISHED ... 10 LISTEN).
    pub state: u8,
    pub local_port: u16,
    pub remote: IpAddr,
    pub inode: u32,
    /// Names this socket for its whole life, unlike addresses and ports.
    pub cookie: u64,
    /// How long ago data last arrived on it (`tcpi_last_data_recv`), for full sockets.
    pub since_data_received: Option<Duration>,
}

/// Every TCP socket in one of `states` (bit N for state N), IPv4 and IPv6.
pub fn tcp_sockets(states: u32) -> Result<Vec<TcpSocket>, Errno> {
    // SAFETY: socket() with constant arguments returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    let result =
        [libc::AF_INET, libc::AF_INET6]
            .into_iter()
            .try_fold(Vec::new(), |mut all, family| {
                dump(fd, family as u8, states).map(|mut found| {
                    all.append(&mut found);
                    all
                })
            });
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    result
}

fn dump(fd: i32, family: u8, states: u32) -> Result<Vec<TcpSocket>, Errno> {
    // nlmsghdr (16) + inet_diag_req_v2 (56).
    let mut request = [0u8; 72];
    request[0..4].copy_from_slice(&72u32.to_ne_bytes());
    request[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request[16] = family;
    request[17] = libc::IPPROTO_TCP as u8;
    request[18] = 1 << (INET_DIAG_INFO - 1);
    request[20..24].copy_from_slice(&states.to_ne_bytes());
    // SAFETY: sending a fully initialised buffer of its length to the kernel (address: none,
    // the socket talks to the kernel).
    if unsafe { libc::send(fd, request.as_ptr().cast(), request.len(), 0) } < 0 {
        return Err(Errno::last());
    }
    let mut sockets = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: receiving into a buffer of its length.
        let length = unsafe { libc::recv(fd, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        if length < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                errno => return Err(errno),
            }
        }
        let mut messages = &buffer[..length as usize];
        while messages.len() >= 16 {
            let message_length = u32_at(messages, 0) as usize;
            let kind = u16::from_ne_bytes([messages[4], messages[5]]);
            if message_length < 16 || message_length > messages.len() {
                return Err(Errno::EBADMSG);
            }
            match kind {
                NLMSG_DONE => return Ok(sockets),
                NLMSG_ERROR => {
                    let code = i32::from_ne_bytes([
                        messages[16],
                        messages[17],
                        messages[18],
                        messages[19],
                    ]);
                    return Err(Errno::from_raw(-code));
                }
                SOCK_DIAG_BY_FAMILY => sockets.extend(parse_socket(&messages[16..message_length])),
                _ => {}
            }
            messages = &messages[align(message_length).min(messages.len())..];
        }
    }
}

/// Parses one `inet_diag_msg` and its attributes.
fn parse_socket(message: &[u8]) -> Option<TcpSocket> {
    // inet_diag_msg: family, state, timer, retrans, then inet_diag_sockid (48 bytes: sport,
    // dport (big-endian), src[16], dst[16], if, cookie[2]), expires, rqueue, wqueue, uid, inode.
    if message.len() < 72 {
        return None;
    }
    let family = message[0];
    let remote = match i32::from(family) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(
            message[24],
            message[25],
            message[26],
            message[27],
        )),
        _ => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&message[24..40]);
            let v6 = Ipv6Addr::from(octets);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
    };
    let cookie = u64::from(u32_at(message, 44)) | (u64::from(u32_at(message, 48)) << 32);
    let mut socket = TcpSocket {
        state: message[1],
        local_port: u16::from_be_bytes([message[4], message[5]]),
        remote,
        inode: u32_at(message, 68),
        cookie,
        since_data_received: None,
    };
    let mut attributes = &message[72..];
    while attributes.len() >= 4 {
        let length = usize::from(u16::from_ne_bytes([attributes[0], attributes[1]]));
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]);
        if length < 4 || length > attributes.len() {
            break;
        }
        let payload = &attributes[4..length];
        if kind == INET_DIAG_INFO && payload.len() >= TCPI_LAST_DATA_RECV + 4 {
            let millis = u32_at(payload, TCPI_LAST_DATA_RECV);
            socket.since_data_received = Some(Duration::from_millis(u64::from(millis)));
        }
        attributes = &attributes[align(length).min(attributes.len())..];
    }
    Some(socket)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_listener_and_its_connection_are_seen_with_their_last_data() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).unwrap();
        let all = tcp_sockets(u32::MAX).unwrap();
        let listening = all
            .iter()
            .find(|s| s.state == TCP_LISTEN && s.local_port == port)
            .expect("the listener");
        assert_ne!(listening.inode, 0);
        let accepted = all
            .iter()
            .find(|s| s.state == 1 && s.local_port == port)
            .expect("the accepted connection");
        assert_eq!(accepted.remote, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let since = accepted.since_data_received.expect("tcp_info");
        assert!(since < Duration::from_secs(5), "{since:?}");
    }
}
