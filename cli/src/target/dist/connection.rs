//! A connection after the handshake: framing, ticks, the reader and writer tasks, calls.
//!
//! # Packets
//!
//! ```text
//! Len:u32 = 0                                  a tick: "still here"
//! Len:u32 | 112 | 131 Control [| 131 Message]  everything else, without a distribution
//!                                              header (pass-through: no atom cache)
//! ```
//!
//! rel sends `REG_SEND {6, FromPid, '', rex}` with a call, `SEND {2, '', ToPid}` with an
//! io reply, and `UNLINK_ID_ACK {36, Id, From, To}` when asked. It acts on `SEND` (2),
//! `SEND_TT` (12), `SEND_SENDER` (22, 23) to one of its pids, and on `UNLINK_ID` (35); any
//! other control message is logged and ignored. With rel's flags a node sends nothing
//! else anyway. A packet that does not decode ends the connection: the stream can no longer
//! be trusted, and a reply lost in it would otherwise leave its caller waiting.
//!
//! # Tasks
//!
//! The *reader* reads all the time, so ticks are answered even while a call waits: it
//! answers each tick at once, routes replies to their callers, answers io requests, and
//! declares the connection lost when the node closes it, sends something invalid or too
//! large, or is silent for [`Options::peer_silence`]. The *writer* sends what callers and
//! the reader queue, and a tick of its own whenever it wrote nothing for
//! [`Options::tick_interval`]. Losing the connection fails every waiting call at once with
//! the reason. Both tasks end when the last handle on the connection is dropped, which
//! closes the socket.
//!
//! # Calls
//!
//! Each call has its own pid (so that captured output and replies cannot be mixed up
//! between concurrent calls) and its own plain reference as the `gen_server` tag. A call
//! that times out, or whose future is dropped, forgets its pid: a late reply is dropped.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rel_format::etf::{self, EncodeError};
use rel_format::term::Term;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::handshake::{Ours, Peer, random_u32};
use super::{DistError, NodeName, Options};

/// A tick: an empty packet.
const TICK: [u8; 4] = [0; 4];

/// `112`: a packet without a distribution header.
const PASS_THROUGH: u8 = 112;

/// A reply and what the call printed, when it was asked to capture it.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub reply: Term,
    /// The call's output, formatted on the node (UTF-8).
    pub output: String,
}

/// A connection to one node, for as many calls as needed, one at a time or concurrently.
/// Cheap to clone: clones share the connection, which closes when the last is dropped.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    peer: NodeName,
    ours: Ours,
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    next_call: AtomicU64,
    /// Part of every reference rel makes on this connection.
    salt: u32,
    tasks: [AbortHandle; 2],
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

enum Outgoing {
    Packet(Vec<u8>),
    /// The reader is done: close the socket.
    Close,
}

/// What the reader, the writer and the callers share.
struct Shared {
    node: String,
    local: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Why the connection is gone, once it is.
    lost: Option<String>,
    /// Waiting calls, by the id and serial of their pid.
    calls: HashMap<(u32, u32), Pending>,
}

struct Pending {
    tag: Term,
    output: String,
    done: oneshot::Sender<Result<Captured, String>>,
}

/// Where a call's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The node's `user`: its own log.
    Node,
    /// Sent to rel by rex's `send_stdout_to_caller` group leader.
    Capture,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the map is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection lost (the first reason stays) and fails every waiting call.
    fn lose(&self, reason: String) {
        let mut state = self.state();
        if state.lost.is_none() {
            tracing::debug!(node = %self.node, %reason, "distribution connection lost");
            state.lost = Some(reason.clone());
        }
        for (_, call) in state.calls.drain() {
            let _ = call.done.send(Err(reason.clone()));
        }
    }

    /// Acts on one packet from the node.
    fn dispatch(&self, control: &Term, message: Option<Term>, out: &mpsc::UnboundedSender<Outgoing>) {
        let items = control.as_tuple().unwrap_or_default();
        match (items.first(), items, message) {
            // SEND {2, '', To}, SEND_TT {12, '', To, Token}, SEND_SENDER {22, From, To} and
            // SEND_SENDER_TT {23, From, To, Token}: the addressee is the third element.
            (Some(Term::Integer(2 | 12 | 22 | 23)), [_, _, to, ..], Some(message)) => self.deliver(to, message, out),
            // UNLINK_ID {35, Id, From, To} wants UNLINK_ID_ACK {36, Id, To, From} at once.
            (Some(Term::Integer(35)), [_, id, from, to], None) => {
                let ack = Term::Tuple(vec![Term::Integer(36), id.clone(), to.clone(), from.clone()]);
                self.send(out, &ack, None);
            }
            _ => tracing::debug!(node = %self.node, %control, "ignored a control message rel does not act on"),
        }
    }

    fn deliver(&self, to: &Term, message: Term, out: &mpsc::UnboundedSender<Outgoing>) {
        let Term::Pid { node, id, serial, .. } = to else {
            return tracing::debug!(node = %self.node, %to, "ignored a message to something that is not a pid");
        };
        if *node != self.local {
            return tracing::debug!(node = %self.node, %to, "ignored a message to another node's pid");
        }
        let key = (*id, *serial);
        let mut items = match message {
            Term::Tuple(items) => items,
            other => return tracing::debug!(node = %self.node, message = %other, "ignored a message"),
        };
        // {io_request, From, ReplyAs, Request}: answer, or the process waits forever.
        if let [Term::Atom(io_request), from, reply_as, request] = items.as_slice()
            && io_request == "io_request"
        {
            let mut text = String::new();
            let answer = io_answer(request, &mut text);
            let reply = Term::Tuple(vec![Term::atom("io_reply"), reply_as.clone(), answer]);
            let send = Term::Tuple(vec![Term::Integer(2), Term::atom(""), from.clone()]);
            self.send(out, &send, Some(&reply));
            if let Some(call) = self.state().calls.get_mut(&key) {
                call.output.push_str(&text);
            }
            return;
        }
        // {rex_stdout, Text}: output from a `send_stdout_to_caller` group leader.
        if let [Term::Atom(rex_stdout), Term::Binary(text)] = items.as_slice()
            && rex_stdout == "rex_stdout"
        {
            if let Some(call) = self.state().calls.get_mut(&key) {
                call.output.push_str(&String::from_utf8_lossy(text));
            }
            return;
        }
        // {Tag, Reply}: the end of a call.
        if let (Some(reply), Some(tag), true) = (items.pop(), items.pop(), items.is_empty()) {
            let mut state = self.state();
            if state.calls.get(&key).is_some_and(|call| call.tag == tag) {
                let call = state.calls.remove(&key).expect("just found");
                let _ = call.done.send(Ok(Captured {
                    reply,
                    output: call.output,
                }));
            } else {
                tracing::debug!(node = %self.node, %to, "dropped a reply to a call that is over");
            }
            return;
        }
        tracing::debug!(node = %self.node, %to, "ignored a message");
    }

    /// Queues a control message (and its payload) for the writer.
    fn send(&self, out: &mpsc::UnboundedSender<Outgoing>, control: &Term, message: Option<&Term>) {
        match packet(control, message) {
            Ok(p) => {
                let _ = out.send(Outgoing::Packet(p));
            }
            // Only terms the node sent are echoed here, and what decodes re-encodes.
            Err(e) => tracing::debug!(node = %self.node, %control, "cannot answer: {e}"),
        }
    }
}

/// One packet: length, 112, the control term and the message.
fn packet(control: &Term, message: Option<&Term>) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0, 0, 0, 0, PASS_THROUGH];
    etf::encode_into(control, &mut out)?;
    if let Some(m) = message {
        etf::encode_into(m, &mut out)?;
    }
    let len = u32::try_from(out.len() - 4).map_err(|_| EncodeError::TooLong {
        what: "message",
        len: out.len(),
    })?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// The most terms a packet of `max_packet` bytes may decode to: as many as take that much
/// memory, so that a packet of one-byte elements cannot cost 64 times its size.
fn max_terms(max_packet: usize) -> usize {
    (max_packet / std::mem::size_of::<Term>()).max(1024)
}

/// Splits a packet into its control term and message, each of at most `max_terms` terms.
fn parse(body: &[u8], max_terms: usize) -> Result<(Term, Option<Term>), String> {
    match body.first() {
        Some(&PASS_THROUGH) => {}
        Some(other) => return Err(format!("packet type {other}, expected {PASS_THROUGH} (no atom cache)")),
        None => return Err("an empty packet that is not a tick".into()),
    }
    let (control, used) =
        etf::decode_prefix_bounded(&body[1..], max_terms).map_err(|e| format!("control message: {e}"))?;
    let rest = &body[1 + used..];
    if rest.is_empty() {
        return Ok((control, None));
    }
    match etf::decode_prefix_bounded(rest, max_terms) {
        Ok((message, used)) if used == rest.len() => Ok((control, Some(message))),
        Ok((_, used)) => Err(format!("message: {} bytes after it", rest.len() - used)),
        Err(e) => Err(format!("message: {e}")),
    }
}

/// The answer to an io request (the io protocol of `io.erl`), and the text it carried.
/// Output is accepted, input is not supported, anything else is an unknown request: what
/// rex's own group leader for C nodes answers. `{put_chars, Encoding, M, F, A}` is output to
/// be formatted by `M:F(A)` on the node, which rel cannot do: accepted, and not recorded.
fn io_answer(request: &Term, text: &mut String) -> Term {
    let ok = Term::atom("ok");
    let error = |why| Term::Tuple(vec![Term::atom("error"), Term::atom(why)]);
    let items = match request {
        Term::Tuple(items) => items.as_slice(),
        Term::Atom(a) if a == "getopts" => return error("enotsup"),
        _ => return error("request"),
    };
    match items {
        [Term::Atom(op), rest @ ..] => match (op.as_str(), rest) {
            ("put_chars", [_, chars] | [chars]) => {
                push_chars(chars, text);
                ok
            }
            ("put_chars", [_, _, _, _] | [_, _, _]) => ok,
            ("requests", [list]) => {
                let mut answer = ok;
                for r in list.as_list().unwrap_or_default().iter() {
                    answer = io_answer(r, text);
                    if answer != Term::atom("ok") {
                        break;
                    }
                }
                answer
            }
            ("get_chars" | "get_line" | "get_until" | "get_password" | "get_geometry" | "setopts", _) => {
                error("enotsup")
            }
            _ => error("request"),
        },
        _ => error("request"),
    }
}

fn push_chars(chars: &Term, text: &mut String) {
    match chars {
        Term::Binary(b) => text.push_str(&String::from_utf8_lossy(b)),
        other => {
            if let Some(s) = other.as_string() {
                text.push_str(&s);
            }
        }
    }
}

/// Why a read ended.
enum ReadEnd {
    Closed,
    Silent,
    Failed(std::io::Error),
}

/// Fills `buf`, as long as the node never goes `silence` without sending anything.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8], silence: Duration) -> Result<(), ReadEnd> {
    let mut filled = 0;
    while filled < buf.len() {
        match tokio::time::timeout(silence, r.read(&mut buf[filled..])).await {
            Err(_) => return Err(ReadEnd::Silent),
            Ok(Ok(0)) => return Err(ReadEnd::Closed),
            Ok(Ok(n)) => filled += n,
            Ok(Err(e)) => return Err(ReadEnd::Failed(e)),
        }
    }
    Ok(())
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outgoing>,
    silence: Duration,
    max_packet: usize,
) {
    let ended = |end| match end {
        ReadEnd::Closed => "the node closed the connection".to_owned(),
        ReadEnd::Silent => format!(
            "the node sent nothing, not even a tick, for {:.1} s",
            silence.as_secs_f64()
        ),
        ReadEnd::Failed(e) => format!("reading from the node failed: {e}"),
    };
    let reason = loop {
        let mut len = [0u8; 4];
        if let Err(end) = read_full(&mut r, &mut len, silence).await {
            break ended(end);
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            let _ = out.send(Outgoing::Packet(TICK.to_vec()));
            continue;
        }
        if len > max_packet {
            break format!("the node sent a packet of {len} bytes, more than the limit of {max_packet}");
        }
        let mut body = vec![0u8; len];
        if let Err(end) = read_full(&mut r, &mut body, silence).await {
            break ended(end);
        }
        match parse(&body, max_terms(max_packet)) {
            Ok((control, message)) => shared.dispatch(&control, message, &out),
            Err(e) => break format!("the node sent an invalid packet: {e}"),
        }
    };
    shared.lose(reason);
    let _ = out.send(Outgoing::Close);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    w: W,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
    tick: Duration,
    stall: Duration,
) {
    let mut w = BufWriter::new(w);
    let reason = loop {
        let first = match tokio::time::timeout(tick, queue.recv()).await {
            Ok(Some(Outgoing::Packet(p))) => p,
            Ok(Some(Outgoing::Close) | None) => break None,
            Err(_) => TICK.to_vec(),
        };
        let write = async {
            w.write_all(&first).await?;
            let mut close = false;
            while let Ok(next) = queue.try_recv() {
                match next {
                    Outgoing::Packet(p) => w.write_all(&p).await?,
                    Outgoing::Close => close = true,
                }
            }
            w.flush().await.map(|()| close)
        };
        match tokio::time::timeout(stall, write).await {
            Ok(Ok(false)) => {}
            Ok(Ok(true)) => break None,
            Ok(Err(e)) => break Some(format!("writing to the node failed: {e}")),
            Err(_) => {
                break Some(format!(
                    "the node took nothing rel wrote for {:.1} s",
                    stall.as_secs_f64()
                ));
            }
        }
    };
    if let Some(reason) = reason {
        shared.lose(reason);
    }
    let _ = w.shutdown().await;
}

/// Forgets a call however it ends: replied, failed, timed out or dropped by its caller.
struct Forget<'a> {
    shared: &'a Shared,
    key: (u32, u32),
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.state().calls.remove(&self.key);
    }
}

impl Connection {
    /// Starts the reader and the writer on a connection whose handshake is done.
    pub(super) fn start<R, W>(reader: R, writer: W, ours: Ours, peer: Peer, options: &Options) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            node: peer.name.to_string(),
            local: ours.name.clone(),
            state: Mutex::default(),
        });
        let (outgoing, queue) = mpsc::unbounded_channel();
        let read = tokio::spawn(read_loop(
            reader,
            Arc::clone(&shared),
            outgoing.clone(),
            options.peer_silence,
            options.max_packet,
        ));
        let write = tokio::spawn(write_loop(
            writer,
            queue,
            Arc::clone(&shared),
            options.tick_interval,
            options.peer_silence,
        ));
        Connection {
            inner: Arc::new(Inner {
                peer: peer.name,
                ours,
                shared,
                outgoing,
                next_call: AtomicU64::new(1),
                salt: random_u32(),
                tasks: [read.abort_handle(), write.abort_handle()],
            }),
        }
    }

    /// The node's full name, as it gave it in the handshake (`shop@127.0.0.1`).
    pub fn node(&self) -> &NodeName {
        &self.inner.peer
    }

    /// rel's own node name on this connection (`rel_1a2b3c4d@127.0.0.1`).
    pub fn local_name(&self) -> &str {
        &self.inner.ours.name
    }

    /// Whether the connection still stands (as far as rel knows: a node that vanished
    /// without closing it is noticed after [`Options::peer_silence`]).
    pub fn is_connected(&self) -> bool {
        self.inner.shared.state().lost.is_none()
    }

    /// Calls `module:function(args...)` on the node and returns what it returned.
    ///
    /// Strings go as [`Term::String`] (an Erlang string, a list) or as [`Term::Binary`]
    /// (what Elixir calls a string). In the reply, lists of printable characters come back
    /// as [`Term::String`] ([`Term::with_strings`]): the same Erlang terms, readable.
    /// `{badrpc, Reason}` (the function raised or exited, or does not exist) is
    /// [`DistError::BadRpc`]; a `throw` cannot be told from a return, as with `rpc:call/4`.
    /// What the function prints goes to the node's own output.
    ///
    /// `timeout` bounds the wait. The node sets no limit of its own and does not stop the
    /// call when rel gives up or disconnects: after a timeout the call may still finish on
    /// the node. The connection stays usable.
    pub async fn call(
        &self,
        module: &str,
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, DistError> {
        self.call_with(module, function, args, timeout, Output::Node)
            .await
            .map(|c| c.reply)
    }

    /// As [`Connection::call`], and also returns what the call printed, formatted on the
    /// node (rex's `send_stdout_to_caller` group leader, which sends all of it before the
    /// reply). Reading from standard input fails in such a call with `{error, enotsup}`.
    /// Processes the call starts inherit that group leader, so their output after the call
    /// is lost: use [`Connection::call`] for anything that starts long-lived processes.
    pub async fn call_capturing(
        &self,
        module: &str,
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Captured, DistError> {
        self.call_with(module, function, args, timeout, Output::Capture).await
    }

    async fn call_with(
        &self,
        module: &str,
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
        output: Output,
    ) -> Result<Captured, DistError> {
        let inner = &*self.inner;
        let call = format!("{module}:{function}/{}", args.len());
        let node = || inner.peer.to_string();
        let n = inner.next_call.fetch_add(1, Ordering::Relaxed);
        // Pid numbers as an OTP node without `V4_NC` would accept them: 15 and 13 bits.
        let key = (1 + (n % 32767) as u32, ((n / 32767) % 8192) as u32);
        let pid = Term::Pid {
            node: inner.ours.name.clone(),
            id: key.0,
            serial: key.1,
            creation: inner.ours.creation,
        };
        let tag = Term::Reference {
            node: inner.ours.name.clone(),
            creation: inner.ours.creation,
            ids: vec![(n & 0x3_FFFF) as u32, (n >> 18) as u32, inner.salt],
        };
        let group_leader = match output {
            Output::Node => Term::atom("user"),
            Output::Capture => Term::Tuple(vec![Term::atom("send_stdout_to_caller"), pid.clone()]),
        };
        let control = Term::Tuple(vec![Term::Integer(6), pid.clone(), Term::atom(""), Term::atom("rex")]);
        let message = Term::Tuple(vec![
            Term::atom("$gen_call"),
            Term::Tuple(vec![pid, tag.clone()]),
            Term::Tuple(vec![
                Term::atom("call"),
                Term::atom(module),
                Term::atom(function),
                Term::List(args),
                group_leader,
            ]),
        ]);
        let packet = packet(&control, Some(&message)).map_err(|source| DistError::Encode {
            node: node(),
            call: call.clone(),
            source,
        })?;

        let lost = |reason| DistError::ConnectionLost {
            node: node(),
            call: Some(call.clone()),
            reason,
        };
        let (done, reply) = oneshot::channel();
        {
            let mut state = inner.shared.state();
            if let Some(reason) = &state.lost {
                return Err(DistError::ConnectionLost {
                    node: node(),
                    call: None,
                    reason: reason.clone(),
                });
            }
            state.calls.insert(
                key,
                Pending {
                    tag,
                    output: String::new(),
                    done,
                },
            );
        }
        let _forget = Forget {
            shared: &inner.shared,
            key,
        };
        if inner.outgoing.send(Outgoing::Packet(packet)).is_err() {
            return Err(lost("the connection is closed".into()));
        }
        let captured = match tokio::time::timeout(timeout, reply).await {
            Err(_) => {
                return Err(DistError::CallTimedOut {
                    node: node(),
                    call,
                    after: timeout,
                });
            }
            Ok(Err(_)) => return Err(lost("the connection is closed".into())),
            Ok(Ok(Err(reason))) => return Err(lost(reason)),
            Ok(Ok(Ok(captured))) => captured,
        };
        let reply = captured.reply.with_strings();
        if let Term::Tuple(items) = &reply
            && let [Term::Atom(badrpc), reason] = items.as_slice()
            && badrpc == "badrpc"
        {
            return Err(DistError::BadRpc {
                node: node(),
                call,
                reason: reason.clone(),
            });
        }
        Ok(Captured {
            reply,
            output: captured.output,
        })
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("node", &self.inner.peer.as_str())
            .field("local_name", &self.inner.ours.name)
            .field("connected", &self.is_connected())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_requests_get_the_answers_of_the_io_protocol() {
        let mut text = String::new();
        let t = |s: &str| rel_format::term::parse_term("request", &format!("{s}.")).unwrap();
        for (request, answer) in [
            (r#"{put_chars, unicode, <<"hi\n">>}"#, "ok"),
            (r#"{put_chars, unicode, "there\n"}"#, "ok"),
            (r#"{put_chars, unicode, io_lib, format, ["~p", [x]]}"#, "ok"),
            (r#"{put_chars, <<"latin1">>}"#, "ok"),
            (
                r#"{requests, [{put_chars, unicode, <<"a">>}, {get_line, unicode, ""}, {put_chars, unicode, <<"b">>}]}"#,
                "{error,enotsup}",
            ),
            (r#"{get_line, unicode, "> "}"#, "{error,enotsup}"),
            ("{get_geometry, columns}", "{error,enotsup}"),
            ("getopts", "{error,enotsup}"),
            ("{frobnicate}", "{error,request}"),
            ("42", "{error,request}"),
        ] {
            assert_eq!(io_answer(&t(request), &mut text).to_string(), answer, "{request}");
        }
        assert_eq!(text, "hi\nthere\nlatin1a");
    }

    #[test]
    fn packets_are_framed_and_parsed_back() {
        let control = Term::Tuple(vec![Term::Integer(2), Term::atom(""), Term::atom("x")]);
        let p = packet(&control, Some(&Term::atom("m"))).unwrap();
        assert_eq!(u32::from_be_bytes(p[..4].try_into().unwrap()) as usize, p.len() - 4);
        assert_eq!(parse(&p[4..], 1024).unwrap(), (control.clone(), Some(Term::atom("m"))));
        assert_eq!(
            parse(&packet(&control, None).unwrap()[4..], 1024).unwrap(),
            (control, None)
        );
        assert!(parse(&[68, 131, 106], 1024).unwrap_err().contains("packet type 68"));
        assert!(parse(&[112, 131, 106, 131], 1024).unwrap_err().contains("message"));
        assert!(parse(&[112, 130], 1024).unwrap_err().contains("control message"));
        assert!(
            parse(&[112, 131, 106, 131, 106, 106], 1024)
                .unwrap_err()
                .contains("1 bytes after it")
        );
        // A string of 2000 characters is 2001 terms.
        let mut long = vec![112, 131, 106, 131, 107, 0x07, 0xd0];
        long.extend_from_slice(&[b'x'; 2000]);
        assert!(parse(&long, 2001).is_ok());
        assert!(parse(&long, 2000).unwrap_err().contains("more than 2000 terms"));
    }
}
