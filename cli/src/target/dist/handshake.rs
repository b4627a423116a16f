//! The distribution handshake, version 6 (OTP 23 and later), with rel as the side that
//! connects (side A of `lib/kernel/src/dist_util.erl`, `handshake_we_started/1`).
//!
//! Every message has a 2-byte length; 4-byte frames begin right after the last one, with
//! nothing in between, so the reader must be buffered and handed on as it is.
//!
//! ```text
//! A→B  send_name  'N' | Flags:u64 | Creation:u32 | Nlen:u16 | Name
//! B→A  status     's' | "ok" | "ok_simultaneous" | "nok" | "not_allowed" | "alive"
//! B→A  challenge  'N' | Flags:u64 | Challenge:u32 | Creation:u32 | Nlen:u16 | Name
//! A→B  reply      'r' | Challenge:u32 | md5(cookie ++ decimal(B's challenge))
//! B→A  ack        'a' | md5(cookie ++ decimal(A's challenge))
//! ```
//!
//! The digest is `dist_util:gen_digest/2`: the cookie's bytes first, then the challenge as
//! unsigned decimal ASCII (the protocol documentation's prose has the order backwards).
//! A node that does not share the cookie sends no status for it: it closes the socket
//! where the ack would come. A real exchange, cookie `secret`:
//!
//! ```text
//! > 00 17 4e 00 00 00 04 07 07 1f 94 11 22 33 44 00 08 "rel_1@vm"
//! < 00 03 73 "ok"
//! < 00 1c 4e 00 00 00 0d 07 df 7f bd 9c 77 69 c1 6b 0a a6 86 00 09 "target@vm"
//! > 00 15 72 <rel's challenge: 4 bytes> b5 2c 2b 72 96 b0 76 33 0e 60 ca 7e f9 c0 c6 71
//! < 00 11 61 4a 88 03 62 9f ef 8b 29 b1 d8 e1 ed b4 3d 8f c4
//! ```

use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Cookie, DistError, NodeName};

/// Distribution flags (`lib/kernel/include/dist.hrl`, `erts/emulator/beam/dist.h`).
pub mod flags {
    pub const PUBLISHED: u64 = 0x1;
    pub const EXTENDED_REFERENCES: u64 = 0x4;
    pub const FUN_TAGS: u64 = 0x10;
    pub const NEW_FUN_TAGS: u64 = 0x80;
    pub const EXTENDED_PIDS_PORTS: u64 = 0x100;
    pub const EXPORT_PTR_TAG: u64 = 0x200;
    pub const BIT_BINARIES: u64 = 0x400;
    pub const NEW_FLOATS: u64 = 0x800;
    pub const UNICODE_IO: u64 = 0x1000;
    pub const UTF8_ATOMS: u64 = 0x1_0000;
    pub const MAP_TAG: u64 = 0x2_0000;
    pub const BIG_CREATION: u64 = 0x4_0000;
    pub const HANDSHAKE_23: u64 = 0x100_0000;
    pub const UNLINK_ID: u64 = 0x200_0000;
    /// Stands for all of [`MANDATORY_25`]; bit 26, not bit 36 as the protocol
    /// documentation of OTP 25 says.
    pub const MANDATORY_25_DIGEST: u64 = 0x400_0000;
    pub const V4_NC: u64 = 4 << 32;

    /// What an OTP 25 node requires of every peer (`DFLAG_DIST_MANDATORY_25`).
    pub const MANDATORY_25: u64 = EXTENDED_REFERENCES
        | FUN_TAGS
        | NEW_FUN_TAGS
        | EXTENDED_PIDS_PORTS
        | EXPORT_PTR_TAG
        | BIT_BINARIES
        | NEW_FLOATS
        | UTF8_ATOMS
        | MAP_TAG
        | BIG_CREATION
        | HANDSHAKE_23;

    /// What rel sends: the mandatory set, Unicode io requests, `UNLINK_ID` and `V4_NC`
    /// (mandatory from OTP 26), and the digest bit (mandatory from OTP 27). Not
    /// `PUBLISHED` (rel is hidden), nor the atom cache, fragments, aliases, monitors or
    /// `SPAWN`: without them every message is a plain pass-through packet and the node
    /// sends rel nothing it did not ask for. `0x4_0707_1F94`, as `erl_call` sends minus
    /// `DIST_MONITOR` and `SMALL_ATOM_TAGS`, plus `UNICODE_IO`.
    pub const REL: u64 = MANDATORY_25 | UNICODE_IO | UNLINK_ID | MANDATORY_25_DIGEST | V4_NC;

    /// What rel relies on in the node's terms: new pids, references, floats, UTF-8 atoms,
    /// maps, 32-bit creations and the version-6 handshake.
    pub const NEEDED: u64 =
        EXTENDED_REFERENCES | EXTENDED_PIDS_PORTS | NEW_FLOATS | UTF8_ATOMS | MAP_TAG | BIG_CREATION | HANDSHAKE_23;
}

/// rel's side of a connection: its node name and creation.
#[derive(Debug, Clone)]
pub struct Ours {
    /// `rel_<8 hex digits>@<host>`.
    pub name: String,
    /// Random, in 4..=2^32-1 as OTP picks them (0 is reserved, 1 to 3 are old "tiny" ones).
    pub creation: u32,
}

impl Ours {
    /// A fresh name on `host` and a fresh creation. The node does not check the host part
    /// against its own (it would matter only if it connected back, which it never does to a
    /// hidden node that does not listen).
    pub fn new(host: &str) -> Ours {
        let mut creation = 0;
        while creation < 4 {
            creation = random_u32();
        }
        Ours {
            name: format!("rel_{:08x}@{host}", random_u32()),
            creation,
        }
    }
}

/// Four random bytes from the operating system.
pub(super) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).expect("the operating system has a source of randomness");
    u32::from_be_bytes(b)
}

/// The node, as the handshake showed it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its full name, from its challenge.
    pub name: NodeName,
    /// The flags in use on the connection: ours and theirs.
    pub flags: u64,
    pub creation: u32,
}

/// `dist_util:gen_digest/2`.
pub(super) fn digest(challenge: u32, cookie: &Cookie) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(cookie.bytes());
    md5.update(challenge.to_string().as_bytes());
    md5.finalize().into()
}

/// Reads one message with a 2-byte length; `None` when the node closed the connection first.
async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    match r.read_exact(&mut body).await {
        Ok(_) => Ok(Some(body)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(body.len()).expect("handshake messages are short");
    let mut framed = Vec::with_capacity(2 + body.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(body);
    w.write_all(&framed).await?;
    w.flush().await
}

/// Runs the handshake on a fresh connection to the node rel meant to reach (`dialled`).
pub async fn run<R, W>(
    r: &mut R,
    w: &mut W,
    ours: &Ours,
    cookie: &Cookie,
    dialled: &NodeName,
) -> Result<Peer, DistError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let failed = |what: String| DistError::Handshake {
        node: dialled.to_string(),
        what,
    };
    let io = |step: &'static str| move |e: std::io::Error| failed(format!("{step}: {e}"));
    let closed = |step: &str| failed(format!("the node closed the connection {step}"));

    let mut send_name = vec![b'N'];
    send_name.extend_from_slice(&flags::REL.to_be_bytes());
    send_name.extend_from_slice(&ours.creation.to_be_bytes());
    send_name.extend_from_slice(&u16::try_from(ours.name.len()).expect("a short name").to_be_bytes());
    send_name.extend_from_slice(ours.name.as_bytes());
    write_message(w, &send_name).await.map_err(io("sending rel's name"))?;

    let status = read_message(r)
        .await
        .map_err(io("reading the status"))?
        .ok_or_else(|| closed("instead of sending a status"))?;
    let status = match status.split_first() {
        Some((b's', text)) => String::from_utf8_lossy(text).into_owned(),
        _ => return Err(failed(format!("expected a status (`s…`), got {status:02x?}"))),
    };
    let refused = |meaning| DistError::HandshakeRefused {
        node: dialled.to_string(),
        status: status.clone(),
        meaning,
    };
    match status.as_str() {
        "ok" | "ok_simultaneous" => {}
        "alive" => {
            // A node of rel's (random) name is connected already. Answering `true` would
            // take its connection away from it; rel declines (and gives up either way).
            let _ = write_message(w, b"sfalse").await;
            return Err(refused("a node of rel's own name is connected already; try again"));
        }
        "nok" => return Err(refused("the node is connecting to rel at the same moment; try again")),
        "not_allowed" => {
            return Err(refused(
                "the node does not accept rel's flags or its name (`net_kernel:allow/1`); its log says which",
            ));
        }
        _ => return Err(refused("a status this protocol version does not define")),
    }

    let challenge = read_message(r)
        .await
        .map_err(io("reading the challenge"))?
        .ok_or_else(|| closed("instead of sending its challenge"))?;
    // 'N' | Flags:u64 | Challenge:u32 | Creation:u32 | Nlen:u16 | Name (and maybe more).
    let (peer_flags, their_challenge, creation, name) = match challenge.as_slice() {
        [b'N', head @ ..] if head.len() >= 18 => {
            let flags = u64::from_be_bytes(head[0..8].try_into().expect("8 bytes"));
            let challenge = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
            let creation = u32::from_be_bytes(head[12..16].try_into().expect("4 bytes"));
            let nlen = usize::from(u16::from_be_bytes([head[16], head[17]]));
            let name = head
                .get(18..18 + nlen)
                .ok_or_else(|| failed(format!("its challenge names a node of {nlen} bytes but holds fewer")))?;
            (flags, challenge, creation, String::from_utf8_lossy(name).into_owned())
        }
        _ => return Err(failed(format!("expected a challenge (`N…`), got {challenge:02x?}"))),
    };
    let name: NodeName = name
        .parse()
        .map_err(|_| failed(format!("the node calls itself `{name}`, which is no node name")))?;
    if name.alive() != dialled.alive() {
        return Err(failed(format!(
            "the port belongs to `{name}`, not to `{}`; did the node restart on another port?",
            dialled.alive()
        )));
    }
    let peer_flags = if peer_flags & flags::MANDATORY_25_DIGEST == 0 {
        peer_flags
    } else {
        peer_flags | flags::MANDATORY_25
    };
    if peer_flags & flags::NEEDED != flags::NEEDED {
        return Err(failed(format!(
            "the node lacks distribution flags rel needs ({:#x}); it is older than OTP 23",
            flags::NEEDED & !peer_flags
        )));
    }

    let our_challenge = random_u32();
    let mut reply = vec![b'r'];
    reply.extend_from_slice(&our_challenge.to_be_bytes());
    reply.extend_from_slice(&digest(their_challenge, cookie));
    write_message(w, &reply).await.map_err(io("answering the challenge"))?;

    let ack = read_message(r).await.map_err(io("reading the acknowledgement"))?;
    match ack.as_deref() {
        None => Err(DistError::CookieRefused { node: name.to_string() }),
        Some([b'a', theirs @ ..]) if theirs == digest(our_challenge, cookie) => Ok(Peer {
            name,
            flags: flags::REL & peer_flags,
            creation,
        }),
        Some([b'a', ..]) => Err(failed(
            "the node's answer to rel's challenge does not match the cookie: it is not the node that was meant".into(),
        )),
        Some(other) => Err(failed(format!("expected an acknowledgement (`a…`), got {other:02x?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_erlang_and_the_recorded_handshake() {
        let cookie = Cookie::new("secret").unwrap();
        // erlang:md5("secret0"), as the experiments computed it on a node.
        assert_eq!(hex(&digest(0, &cookie)), "175ec77a7f63082590987d0d8b051aff");
        // The recorded trace: the node's challenge 0x9c7769c1 and the digest rel sent back.
        assert_eq!(hex(&digest(0x9c77_69c1, &cookie)), "b52c2b7296b076330e60ca7ef9c0c671");
        assert_eq!(flags::REL, 0x4_0707_1F94);
        assert_eq!(flags::MANDATORY_25, 0x107_0F94);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
