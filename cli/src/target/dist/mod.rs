//! Talking to a running node as a hidden Erlang distribution node written in Rust.
//!
//! # Why
//!
//! An upgrade asks the node a dozen questions (`which_releases`, `unpack_release`,
//! `check_install_release`, `install_release`, `make_permanent`, …). Running `bin/shop rpc`
//! for each starts a whole Erlang VM, 0.3–0.4 s a call, and hands back text that must be
//! parsed again. Here rel joins the node's distribution itself: one TCP connection serves a
//! whole upgrade, a call costs a round trip (a tenth of a millisecond on loopback) and
//! arguments and replies travel as [`Term`]s in the external term format
//! ([`rel_format::etf`]).
//!
//! # How, as OTP 25 speaks it
//!
//! 1. **epmd** ([`epmd`]): `PORT_PLEASE2_REQ` with the node's short name (the part before
//!    `@`) gives its distribution port. epmd listens on `ERL_EPMD_PORT` (4369 unless set),
//!    and `erl` honours the same variable, so [`Route::local_epmd`] does too. A node started
//!    without epmd (relx's `ERL_DIST_PORT`) is reached with [`Route::Port`]. When the name is
//!    not registered, `NAMES_REQ` lists what is, for the error message.
//! 2. **Handshake** ([`handshake`]), version 6 (`dist_util.erl`), with 2-byte frames: rel
//!    sends its name and flags, reads the status and the node's challenge, answers with
//!    `md5(cookie ++ decimal(challenge))` and its own challenge, and checks the node's
//!    answer the same way. rel leaves `PUBLISHED` out of its flags, so it is a *hidden*
//!    node: the node lists it only in `nodes(hidden)`, `global` does not sync with it, and
//!    no other node learns of it. It also leaves out the atom cache, fragments, aliases and
//!    monitors, so every message is a plain pass-through packet and nothing unsolicited
//!    arrives. A wrong cookie gets no status: the node just closes the socket after rel's
//!    answer, which [`DistError::CookieRefused`] says in words.
//! 3. **Connected** ([`connection`]): 4-byte frames; a frame of length 0 is a tick, anything
//!    else is `112, 131 control-term [, 131 message]`. The node drops a connection it has
//!    not heard from within its `net_ticktime` (45–75 s by default), also while rel waits for
//!    a long `install_release`; so a background task reads all the time, answers every tick
//!    at once, and writes a tick of its own whenever nothing was written for
//!    [`Options::tick_interval`].
//! 4. **Calls** go to the node's `rex` server as a `gen_server` call:
//!    `{'$gen_call', {Pid, Ref}, {call, M, F, Args, GroupLeader}}` from a fresh pid of ours
//!    with a fresh plain reference (never an alias: without the `ALIAS` flag the node drops
//!    replies addressed to one). rex runs each call in a process of its own, so calls on one
//!    connection run concurrently on the node, and replies `{Ref, Reply}` to our pid;
//!    `{badrpc, Reason}` becomes [`DistError::BadRpc`].
//!
//! # Output of a call
//!
//! By default a call's group leader is the node's `user`: what the function prints goes
//! where the node's own output goes (for a release started as a daemon, its `erlang.log`),
//! as it would for any other process there, and processes the call starts (an application
//! started by `install_release`) never hold a group leader that vanishes with rel.
//! [`Connection::call_capturing`] asks rex for `{send_stdout_to_caller, Pid}` instead: the
//! node formats the output and sends it to rel as text, before the reply. rel still answers
//! any io request that reaches one of its pids (`ok` to output, `{error, enotsup}` to input),
//! so that nothing on the node waits forever on a process that cannot answer.
//!
//! # What the node sees
//!
//! A hidden node named `rel_<8 hex digits>@<host of the node>` (unique, so two rel runs
//! never take over each other's connection; each name is one atom on the node, forever) and
//! a random creation. The cookie is sent only as the digest; [`Cookie`]'s `Debug` hides it,
//! and no error or log line carries it.
//!
//! ```no_run
//! # async fn example() -> Result<(), rel::target::dist::DistError> {
//! use std::time::Duration;
//! use rel::target::dist::{Cookie, NodeName, Options, Route, connect};
//! use rel_format::term::Term;
//!
//! let node: NodeName = "shop@127.0.0.1".parse()?;
//! let cookie = Cookie::new("secret")?;
//! let conn = connect(&node, &cookie, &Route::local_epmd()?, &Options::default()).await?;
//! let releases = conn
//!     .call("release_handler", "which_releases", vec![], Duration::from_secs(30))
//!     .await?;
//! let unpacked = conn
//!     .call("release_handler", "unpack_release", vec![Term::string("shop")], Duration::from_secs(300))
//!     .await?;
//! # Ok(()) }
//! ```

pub mod connection;
pub mod epmd;
pub mod handshake;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rel_format::etf::EncodeError;
use rel_format::term::Term;
use tokio::io::BufReader;
use tokio::net::TcpStream;

pub use connection::{Captured, Connection};

/// The environment variable that moves epmd off its default port, for `erl` and for rel.
pub const ERL_EPMD_PORT: &str = "ERL_EPMD_PORT";

/// epmd's port when `ERL_EPMD_PORT` is not set.
pub const DEFAULT_EPMD_PORT: u16 = 4369;

/// A node's name, `alive@host` (`shop@127.0.0.1`), or only `alive` when the host is not
/// known: epmd needs only the alive part, and the node tells its full name in the handshake
/// ([`Connection::node`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeName {
    full: String,
    at: Option<usize>,
}

impl NodeName {
    /// The part before `@`: what the node is registered under in epmd.
    pub fn alive(&self) -> &str {
        &self.full[..self.at.unwrap_or(self.full.len())]
    }

    /// The part after `@`, if the name has one.
    pub fn host(&self) -> Option<&str> {
        self.at.map(|at| &self.full[at + 1..])
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl FromStr for NodeName {
    type Err = DistError;

    fn from_str(s: &str) -> Result<NodeName, DistError> {
        let bad = |why| DistError::InvalidNodeName {
            name: s.to_owned(),
            why,
        };
        if s.chars().count() > 255 {
            return Err(bad("node names are atoms, at most 255 characters"));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("it has a space or a control character"));
        }
        let at = s.find('@');
        match at {
            _ if s.matches('@').count() > 1 => Err(bad("it has more than one `@`")),
            Some(0) => Err(bad("nothing before the `@`")),
            Some(at) if at + 1 == s.len() => Err(bad("nothing after the `@`")),
            None if s.is_empty() => Err(bad("it is empty")),
            _ => Ok(NodeName { full: s.to_owned(), at }),
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// The distribution cookie: a secret shared by the node and whoever may run code on it.
/// Its `Debug` form hides it, and no error message includes it.
#[derive(Clone)]
pub struct Cookie(Vec<u8>);

impl Cookie {
    /// A cookie as `-setcookie` or `RELEASE_COOKIE` gives it. Erlang hashes the cookie
    /// atom's characters as bytes, so it must be Latin-1 (mix's and relx's are ASCII).
    pub fn new(cookie: &str) -> Result<Cookie, DistError> {
        Cookie::checked(cookie, None)
    }

    fn checked(cookie: &str, file: Option<&Path>) -> Result<Cookie, DistError> {
        let bad = |why| DistError::InvalidCookie {
            file: file.map(Path::to_owned),
            why,
        };
        if cookie.is_empty() {
            return Err(bad("it is empty"));
        }
        if cookie.chars().count() > 255 {
            return Err(bad("it is longer than 255 characters, the longest atom"));
        }
        cookie
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
            .map(Cookie)
            .ok_or_else(|| bad("it has a character beyond Latin-1, which no Erlang cookie can have"))
    }

    /// The cookie in a file, as a release keeps it (`releases/COOKIE`, `~/.erlang.cookie`):
    /// trailing whitespace is not part of it, as neither `auth.erl` nor the release scripts'
    /// `$(cat …)` keep it.
    pub fn from_file(path: &Path) -> Result<Cookie, DistError> {
        let text = std::fs::read_to_string(path).map_err(|source| DistError::CookieFile {
            path: path.to_owned(),
            source,
        })?;
        Cookie::checked(text.trim_end(), Some(path))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

/// Where the node's distribution port is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Ask epmd at `host:port` for the node's port, then connect to `host`.
    Epmd { host: String, port: u16 },
    /// Connect to this distribution port directly: a node started with `ERL_DIST_PORT` and
    /// without epmd (relx's `-start_epmd false -erl_epmd_port P`).
    Port { host: String, port: u16 },
}

impl Route {
    /// epmd on this host (127.0.0.1), at `ERL_EPMD_PORT` when set, as `erl` itself looks
    /// for it, else on 4369.
    pub fn local_epmd() -> Result<Route, DistError> {
        let port = match std::env::var(ERL_EPMD_PORT) {
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| DistError::InvalidEpmdPort { value: v.clone() })?,
            Err(_) => DEFAULT_EPMD_PORT,
        };
        Ok(Route::Epmd {
            host: "127.0.0.1".into(),
            port,
        })
    }

    /// The distribution port `port` on this host (127.0.0.1).
    pub fn local_port(port: u16) -> Route {
        Route::Port {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn host(&self) -> &str {
        match self {
            Route::Epmd { host, .. } | Route::Port { host, .. } => host,
        }
    }
}

/// Time limits and bounds of a connection.
#[derive(Debug, Clone)]
pub struct Options {
    /// For all of setting up: the epmd lookup, the TCP connection and the handshake. The
    /// node itself gives a handshake `net_setuptime`, 7 s by default.
    pub connect_timeout: Duration,
    /// rel writes a tick when it has written nothing for this long. The node's own interval
    /// is `net_ticktime / 4`, 15 s by default; rel also answers each of the node's ticks at
    /// once, which keeps a node with a shorter `net_ticktime` content.
    pub tick_interval: Duration,
    /// The connection counts as lost when the node has sent nothing, not even a tick, for
    /// this long, or has not taken what rel wrote for this long. An idle node ticks every
    /// `net_ticktime / 4`, 15 s by default: 90 s is six of those intervals, and longer than
    /// the interval of a node whose `net_ticktime` is as long as 300 s.
    pub peer_silence: Duration,
    /// A packet longer than this is refused, before anything is allocated for it, and the
    /// connection is dropped. The node sends each message as one packet (rel does not
    /// negotiate fragments), so this is the largest reply rel accepts. A packet may also
    /// decode to no more terms than take this much memory (a [`Term`] is 64 bytes, and a
    /// character of a string one byte on the wire): decoding a reply takes at most about
    /// three times this bound (the packet, its terms, the bytes they hold).
    pub max_packet: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(10),
            tick_interval: Duration::from_secs(15),
            peer_silence: Duration::from_secs(90),
            max_packet: 256 << 20,
        }
    }
}

/// Why rel could not talk to a node. Each names the node and says what to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    #[error("`{name}` is not a node name: {why}")]
    InvalidNodeName { name: String, why: &'static str },
    #[error(
        "the cookie{} cannot be used: {why}",
        file.as_ref().map(|f| format!(" in `{}`", f.display())).unwrap_or_default()
    )]
    InvalidCookie { file: Option<PathBuf>, why: &'static str },
    #[error("cannot read the cookie from `{}`", path.display())]
    CookieFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{ERL_EPMD_PORT}` is `{value}`, not a port number")]
    InvalidEpmdPort { value: String },
    #[error(
        "cannot reach epmd on {host}:{port} to find `{node}`: is the node running, and does it use this epmd port (`{ERL_EPMD_PORT}`)?"
    )]
    EpmdUnreachable {
        node: String,
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("epmd on {host}:{port} gave an invalid answer about `{node}`: {what}")]
    EpmdProtocol {
        node: String,
        host: String,
        port: u16,
        what: String,
    },
    #[error(
        "no node `{alive}` is registered with epmd on {host}:{port}; registered: {}",
        listed(registered.as_deref())
    )]
    NotRegistered {
        alive: String,
        host: String,
        port: u16,
        /// What epmd listed instead (`None` if it would not say).
        registered: Option<Vec<String>>,
    },
    #[error("`{node}` speaks distribution versions {lowest} to {highest}; rel needs 6 (OTP 23 or later)")]
    OldProtocol { node: String, lowest: u16, highest: u16 },
    #[error("cannot connect to `{node}` at {host}:{port}")]
    Connect {
        node: String,
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the node `{node}` refused the cookie: it closed the connection on rel's answer to its challenge; use the cookie the node was started with (`RELEASE_COOKIE`, `releases/COOKIE`, `-setcookie`)"
    )]
    CookieRefused { node: String },
    #[error("the node `{node}` refused the handshake with status `{status}`: {meaning}")]
    HandshakeRefused {
        node: String,
        status: String,
        meaning: &'static str,
    },
    #[error("the handshake with `{node}` failed: {what}")]
    Handshake { node: String, what: String },
    #[error("lost the connection to `{node}`{}: {reason}", during(call.as_deref()))]
    ConnectionLost {
        node: String,
        call: Option<String>,
        reason: String,
    },
    #[error(
        "connecting to `{node}` (epmd lookup, TCP connection, handshake) did not finish within {}",
        seconds(*after)
    )]
    ConnectTimedOut { node: String, after: Duration },
    #[error(
        "`{call}` on `{node}` did not return within {}; it may still be running there (the node sets no time limit of its own)",
        seconds(*after)
    )]
    CallTimedOut {
        node: String,
        call: String,
        after: Duration,
    },
    #[error("`{call}` failed on `{node}`: {reason}")]
    BadRpc { node: String, call: String, reason: Term },
    #[error("cannot send `{call}` to `{node}`")]
    Encode {
        node: String,
        call: String,
        #[source]
        source: EncodeError,
    },
}

fn listed(names: Option<&[String]>) -> String {
    match names {
        None => "unknown (epmd did not list them)".into(),
        Some([]) => "none".into(),
        Some(names) => names.join(", "),
    }
}

fn during(call: Option<&str>) -> String {
    call.map(|c| format!(" while waiting for `{c}` (it may have run, or may still run, on the node)"))
        .unwrap_or_default()
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Connects to `node` as a hidden node and returns the connection, ready for calls.
///
/// The whole setup (epmd, TCP, handshake) must finish within
/// [`Options::connect_timeout`]. Needs a tokio runtime: the connection keeps two tasks
/// (reading and writing) until its last handle is dropped.
pub async fn connect(
    node: &NodeName,
    cookie: &Cookie,
    route: &Route,
    options: &Options,
) -> Result<Connection, DistError> {
    match tokio::time::timeout(options.connect_timeout, connect_within(node, cookie, route, options)).await {
        Ok(result) => result,
        Err(_) => Err(DistError::ConnectTimedOut {
            node: node.to_string(),
            after: options.connect_timeout,
        }),
    }
}

async fn connect_within(
    node: &NodeName,
    cookie: &Cookie,
    route: &Route,
    options: &Options,
) -> Result<Connection, DistError> {
    let (host, port) = match route {
        Route::Epmd { host, port } => (host.as_str(), epmd::port_please(node, host, *port).await?),
        Route::Port { host, port } => (host.as_str(), *port),
    };
    let connect_error = |source| DistError::Connect {
        node: node.to_string(),
        host: host.to_owned(),
        port,
        source,
    };
    let stream = TcpStream::connect((host, port)).await.map_err(connect_error)?;
    stream.set_nodelay(true).map_err(connect_error)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let ours = handshake::Ours::new(node.host().unwrap_or(route.host()));
    let peer = handshake::run(&mut reader, &mut writer, &ours, cookie, node).await?;
    tracing::debug!(node = %peer.name, local = %ours.name, "connected as a hidden node");
    Ok(Connection::start(reader, writer, ours, peer, options))
}
