//! Listening TCP sockets in the text of /proc/net/tcp and tcp6 (Linux).
//! Pure: `System::tcp_listeners` reads the files, this parses them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::system::Listener;

const TCP_LISTEN: &str = "0A";

/// Parses the hex `ADDR:PORT` of /proc/net/tcp (IPv4 is one little-endian
/// u32; IPv6 is four of them).
fn parse_address(hex: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(addr, 16).ok()?.swap_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?.swap_bytes();
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Listening sockets in the text of a /proc/net/tcp or tcp6 file.
pub fn parse_listeners(table: &str) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != TCP_LISTEN {
                return None;
            }
            let (address, port) = parse_address(cols[1])?;
            Some(Listener { address, port, inode: cols[9].parse().ok()? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_listeners() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:2CAB 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 999 1\n   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n";
        let ls = parse_listeners(tcp);
        assert_eq!(
            ls,
            vec![
                Listener { address: "127.0.0.1".parse().unwrap(), port: 11434, inode: 12345 },
                Listener { address: "0.0.0.0".parse().unwrap(), port: 8080, inode: 777 },
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st\n   0: 00000000000000000000000001000000:2CAA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n";
        assert_eq!(parse_listeners(tcp6), vec![Listener { address: "::1".parse().unwrap(), port: 11434, inode: 4242 }]);
    }
}
