//! Listening TCP sockets, read from /proc/net/tcp and tcp6 (Linux), and the
//! process that owns each. Used to tell whether a port is free (apply) and
//! whether Ollama listens beyond loopback (check). Only reads local state.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub address: IpAddr,
    pub port: u16,
    pub inode: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// The process name (`/proc/PID/comm`).
    pub name: String,
}

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
                let word = u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok()?.swap_bytes();
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

/// Every listening TCP socket on this machine (empty where /proc is absent).
pub fn listeners() -> Vec<Listener> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .flat_map(|table| parse_listeners(&table))
        .collect()
}

/// The process holding socket `inode`, by scanning /proc/*/fd. Needs root
/// to see other users' processes; `None` when not found.
pub fn owner(inode: u64) -> Option<Owner> {
    let wanted = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str()) {
                let name = fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_string();
                return Some(Owner { pid, name });
            }
        }
    }
    None
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
