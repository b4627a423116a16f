//! epmd, the Erlang port mapper: on which port a node's distribution listens, and which
//! nodes are registered (`erts/epmd/src/epmd_srv.c`, `lib/kernel/src/erl_epmd.erl`).
//!
//! ```text
//! PORT_PLEASE2_REQ  Len:u16 | 122 'z' | Alive                 the part before `@`, exact bytes
//! PORT2_RESP        119 'w' | Result:u8                       Result > 0: not registered
//!                   119 'w' | 0 | Port:u16 | Type:u8 | Protocol:u8 | Highest:u16 | Lowest:u16
//!                       | Nlen:u16 | Name | Elen:u16 | Extra
//! NAMES_REQ         Len:u16 (= 1) | 110 'n'
//! NAMES_RESP        EpmdPort:u32 | "name <alive> at port <port>\n" …
//! ```
//!
//! A real answer about a node registered as `target` on port 42859:
//!
//! ```text
//! 77 00 a7 6b 4d 00 00 06 00 05 00 06 74 61 72 67 65 74 00 00
//! ```
//!
//! epmd answers once and closes the connection, so an answer is read to its end; a bound
//! keeps a misbehaving listener on that port from growing it without limit.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{DistError, NodeName};

/// More than any `PORT2_RESP` (a name and an "extra" field of at most 64 KiB each).
const MAX_PORT_ANSWER: u64 = 1 << 17;
/// More than the names of thousands of nodes.
const MAX_NAMES_ANSWER: u64 = 1 << 20;

/// What epmd knows about a registered node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    port: u16,
    highest: u16,
    lowest: u16,
}

/// The distribution port of `node`, from epmd at `host:port`.
pub(super) async fn port_please(node: &NodeName, host: &str, port: u16) -> Result<u16, DistError> {
    let unreachable = |source| DistError::EpmdUnreachable {
        node: node.to_string(),
        host: host.to_owned(),
        port,
        source,
    };
    let alive = node.alive().as_bytes();
    let mut request = Vec::with_capacity(3 + alive.len());
    request.extend_from_slice(&u16::try_from(1 + alive.len()).expect("names are short").to_be_bytes());
    request.push(b'z');
    request.extend_from_slice(alive);
    let answer = exchange(host, port, &request, MAX_PORT_ANSWER)
        .await
        .map_err(unreachable)?;
    match parse_port2_resp(&answer) {
        Ok(Some(r)) if r.highest < 6 => Err(DistError::OldProtocol {
            node: node.to_string(),
            lowest: r.lowest,
            highest: r.highest,
        }),
        Ok(Some(r)) => Ok(r.port),
        Ok(None) => Err(DistError::NotRegistered {
            alive: node.alive().to_owned(),
            host: host.to_owned(),
            port,
            registered: names(host, port)
                .await
                .map(|names| names.into_iter().map(|(name, _)| name).collect())
                .ok(),
        }),
        Err(what) => Err(DistError::EpmdProtocol {
            node: node.to_string(),
            host: host.to_owned(),
            port,
            what,
        }),
    }
}

/// The nodes registered with epmd at `host:port`, with their distribution ports.
pub async fn names(host: &str, port: u16) -> std::io::Result<Vec<(String, u16)>> {
    let answer = exchange(host, port, &[0, 1, b'n'], MAX_NAMES_ANSWER).await?;
    parse_names_resp(&answer).map_err(|what| std::io::Error::new(std::io::ErrorKind::InvalidData, what))
}

/// Sends `request` and reads the answer until epmd closes the connection.
async fn exchange(host: &str, port: u16, request: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect((host, port)).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    stream.take(limit).read_to_end(&mut answer).await?;
    Ok(answer)
}

fn parse_port2_resp(b: &[u8]) -> Result<Option<Registration>, String> {
    match b {
        [] => Err("no answer (the connection was closed)".into()),
        [119, 0, rest @ ..] => {
            // Port:u16 Type:u8 Protocol:u8 Highest:u16 Lowest:u16 Nlen:u16 — 10 bytes.
            let Some(head) = rest.get(..10) else {
                return Err(format!(
                    "a registration of {} bytes, shorter than its 10-byte header",
                    rest.len()
                ));
            };
            let u16_at = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
            Ok(Some(Registration {
                port: u16_at(0),
                highest: u16_at(4),
                lowest: u16_at(6),
            }))
        }
        [119, _, ..] => Ok(None),
        [tag, ..] => Err(format!("answer tag {tag}, expected 119 (PORT2_RESP)")),
    }
}

fn parse_names_resp(b: &[u8]) -> Result<Vec<(String, u16)>, String> {
    let Some(text) = b.get(4..) else {
        return Err(format!(
            "a names answer of {} bytes, shorter than its 4-byte header",
            b.len()
        ));
    };
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.strip_prefix("name ")
                .and_then(|rest| rest.rsplit_once(" at port "))
                .and_then(|(name, port)| Some((name.to_owned(), port.trim().parse().ok()?)))
                .ok_or_else(|| format!("unexpected line `{line}` in the names answer"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_answers_epmd_gave_in_the_experiments() {
        let registered = [
            0x77, 0x00, 0xa7, 0x6b, 0x4d, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x06, b't', b'a', b'r', b'g', b'e', b't',
            0x00, 0x00,
        ];
        assert_eq!(
            parse_port2_resp(&registered),
            Ok(Some(Registration {
                port: 42859,
                highest: 6,
                lowest: 5
            }))
        );
        assert_eq!(parse_port2_resp(&[0x77, 0x01]), Ok(None));
        assert!(parse_port2_resp(&[]).unwrap_err().contains("no answer"));
        assert!(parse_port2_resp(&[0x77, 0x00, 1]).unwrap_err().contains("shorter"));
        assert!(parse_port2_resp(&[0x41]).unwrap_err().contains("tag 65"));

        let mut names = 4369u32.to_be_bytes().to_vec();
        names.extend_from_slice(b"name target at port 42859\nname shop-1 at port 40001\n");
        assert_eq!(
            parse_names_resp(&names).unwrap(),
            [("target".to_owned(), 42859), ("shop-1".to_owned(), 40001)]
        );
        assert_eq!(parse_names_resp(&4369u32.to_be_bytes()).unwrap(), []);
        assert!(
            parse_names_resp(b"\0\0\x11\x11garbage\n")
                .unwrap_err()
                .contains("`garbage`")
        );
    }
}
