//! The client against a scripted node over an in-memory pipe: what a real node does not do
//! on demand (refuse a handshake, fall silent, send an oversized or garbled packet, answer
//! out of order), and the protocol details a real node insists on (ticks answered, io
//! requests answered, unlinks acknowledged). The integration tests run the same client
//! against real OTP nodes.

use std::time::Duration;

use rel_format::etf;
use rel_format::term::Term;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf, duplex, split};

use super::handshake::{self, Ours, digest};
use super::{Connection, Cookie, DistError, NodeName, Options};

const COOKIE: &str = "secret";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn tuple(items: Vec<Term>) -> Term {
    Term::Tuple(items)
}

/// The node's side of the pipe, scripted by each test.
struct FakeNode {
    r: BufReader<ReadHalf<DuplexStream>>,
    w: WriteHalf<DuplexStream>,
}

impl FakeNode {
    async fn read2(&mut self) -> Option<Vec<u8>> {
        let len = self.r.read_u16().await.ok()?;
        let mut body = vec![0; usize::from(len)];
        self.r.read_exact(&mut body).await.ok()?;
        Some(body)
    }

    async fn write2(&mut self, body: &[u8]) {
        self.w.write_u16(body.len() as u16).await.unwrap();
        self.w.write_all(body).await.unwrap();
    }

    /// Side B of the handshake: `status`, then (if it is `ok`) the challenge; checks rel's
    /// digest against `cookie` and closes the pipe, as a node does, if it does not match.
    async fn accept(mut self, status: &str, cookie: &str) -> Option<FakeNode> {
        let name = self.read2().await?;
        assert_eq!(name[0], b'N');
        assert_eq!(
            u64::from_be_bytes(name[1..9].try_into().unwrap()),
            handshake::flags::REL
        );
        self.write2(format!("s{status}").as_bytes()).await;
        if status != "ok" {
            return None;
        }
        let challenge: u32 = 2_573_836_106;
        let mut msg = vec![b'N'];
        msg.extend_from_slice(&0xd_07df_7fbd_u64.to_be_bytes());
        msg.extend_from_slice(&challenge.to_be_bytes());
        msg.extend_from_slice(&0x6b0a_a686_u32.to_be_bytes());
        msg.extend_from_slice(&9u16.to_be_bytes());
        msg.extend_from_slice(b"target@vm");
        self.write2(&msg).await;
        let reply = self.read2().await?;
        let cookie = Cookie::new(cookie).unwrap();
        if reply[0] != b'r' || reply[5..] != digest(challenge, &cookie) {
            return None;
        }
        let theirs = u32::from_be_bytes(reply[1..5].try_into().unwrap());
        let mut ack = vec![b'a'];
        ack.extend_from_slice(&digest(theirs, &cookie));
        self.write2(&ack).await;
        Some(self)
    }

    /// The next packet: `None` for a tick.
    async fn packet(&mut self) -> Option<(Term, Option<Term>)> {
        let len = self.r.read_u32().await.expect("rel keeps the connection open");
        if len == 0 {
            return None;
        }
        let mut body = vec![0; len as usize];
        self.r.read_exact(&mut body).await.unwrap();
        assert_eq!(body[0], 112, "a pass-through packet");
        let (control, used) = etf::decode_prefix(&body[1..]).unwrap();
        let rest = &body[1 + used..];
        Some((control, (!rest.is_empty()).then(|| etf::decode(rest).unwrap())))
    }

    /// The next packet that is not a tick.
    async fn message(&mut self) -> (Term, Option<Term>) {
        loop {
            if let Some(m) = self.packet().await {
                return m;
            }
        }
    }

    /// The pid and tag of the next call, checked to be a `gen_server` call to rex.
    async fn call(&mut self) -> (Term, Term, Term) {
        let (control, message) = self.message().await;
        let control = control.as_tuple().unwrap().to_vec();
        assert_eq!(control[0], Term::Integer(6));
        assert_eq!(control[2], Term::atom(""));
        assert_eq!(control[3], Term::atom("rex"));
        let message = message.unwrap();
        let [gen_call, from, request] = message.as_tuple().unwrap() else {
            panic!("{message}")
        };
        assert_eq!(*gen_call, Term::atom("$gen_call"));
        let [pid, tag] = from.as_tuple().unwrap() else {
            panic!("{from}")
        };
        assert_eq!(*pid, control[1]);
        assert!(
            matches!(tag, Term::Reference { ids, .. } if ids.len() == 3),
            "a plain reference: {tag}"
        );
        (pid.clone(), tag.clone(), request.clone())
    }

    async fn send(&mut self, control: Term, message: Option<Term>) {
        let mut body = vec![112];
        etf::encode_into(&control, &mut body).unwrap();
        if let Some(m) = message {
            etf::encode_into(&m, &mut body).unwrap();
        }
        self.w.write_u32(body.len() as u32).await.unwrap();
        self.w.write_all(&body).await.unwrap();
    }

    async fn reply(&mut self, pid: &Term, tag: &Term, reply: Term) {
        let control = tuple(vec![Term::Integer(2), Term::atom(""), pid.clone()]);
        self.send(control, Some(tuple(vec![tag.clone(), reply]))).await;
    }
}

/// rel connecting to a scripted node that answers the handshake with `status` and knows
/// the cookie `node_cookie`.
async fn connect_to_fake(
    options: Options,
    status: &str,
    node_cookie: &str,
) -> (Result<Connection, DistError>, Option<FakeNode>) {
    let (ours, theirs) = duplex(1 << 16);
    let (r, w) = split(ours);
    let (tr, tw) = split(theirs);
    let fake = FakeNode {
        r: BufReader::new(tr),
        w: tw,
    };
    let rel = async move {
        let (mut r, mut w) = (BufReader::new(r), w);
        let node: NodeName = "target".parse().unwrap();
        let ours = Ours::new("vm");
        let peer = handshake::run(&mut r, &mut w, &ours, &Cookie::new(COOKIE).unwrap(), &node).await?;
        Ok(Connection::start(r, w, ours, peer, &options))
    };
    tokio::join!(rel, fake.accept(status, node_cookie))
}

async fn connected(options: Options) -> (Connection, FakeNode) {
    let (conn, fake) = connect_to_fake(options, "ok", COOKIE).await;
    (conn.unwrap(), fake.unwrap())
}

#[tokio::test]
async fn a_call_goes_to_rex_and_ticks_and_io_requests_are_answered_meanwhile() {
    let (conn, mut node) = connected(Options::default()).await;
    assert_eq!(conn.node().as_str(), "target@vm");
    assert!(conn.local_name().starts_with("rel_") && conn.local_name().ends_with("@vm"));
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call("erlang", "node", vec![], secs(5.0)).await }
    });
    let (pid, tag, request) = node.call().await;
    assert_eq!(
        request.to_string(),
        "{call,erlang,node,[],user}",
        "the group leader is the node's own `user`"
    );

    // An io request to rel's pid gets its io reply.
    let io_server = tuple(vec![Term::Integer(2), Term::atom(""), pid.clone()]);
    let node_pid = Term::Pid {
        node: "target@vm".into(),
        id: 80,
        serial: 0,
        creation: 1,
    };
    let reply_as = Term::Reference {
        node: "target@vm".into(),
        creation: 1,
        ids: vec![1, 2, 3],
    };
    let request = tuple(vec![
        Term::atom("put_chars"),
        Term::atom("unicode"),
        Term::Binary(b"hi\n".to_vec()),
    ]);
    node.send(
        io_server,
        Some(tuple(vec![
            Term::atom("io_request"),
            node_pid.clone(),
            reply_as.clone(),
            request,
        ])),
    )
    .await;
    let (control, message) = node.message().await;
    assert_eq!(control, tuple(vec![Term::Integer(2), Term::atom(""), node_pid]));
    assert_eq!(
        message,
        Some(tuple(vec![Term::atom("io_reply"), reply_as, Term::atom("ok")]))
    );

    // A tick is answered with a tick, while the call waits.
    node.w.write_all(&[0; 4]).await.unwrap();
    assert!(node.packet().await.is_none(), "a tick back");

    node.reply(&pid, &tag, Term::atom("target@vm")).await;
    assert_eq!(call.await.unwrap().unwrap(), Term::atom("target@vm"));
    assert!(conn.is_connected());
}

#[tokio::test]
async fn concurrent_calls_get_their_own_replies_and_captured_output() {
    let (conn, mut node) = connected(Options::default()).await;
    let a = conn.call_capturing("m", "a", vec![Term::string("x")], secs(5.0));
    let b = conn.call("m", "b", vec![Term::Binary(b"y".to_vec()), Term::Integer(1)], secs(5.0));
    let script = async {
        let (pid_a, tag_a, request_a) = node.call().await;
        let (pid_b, tag_b, request_b) = node.call().await;
        assert_ne!(pid_a, pid_b);
        assert_ne!(tag_a, tag_b);
        assert_eq!(
            request_a.as_tuple().unwrap()[4],
            tuple(vec![Term::atom("send_stdout_to_caller"), pid_a.clone()])
        );
        assert_eq!(request_b.to_string(), r#"{call,m,b,[<<"y">>,1],user}"#);
        // Replies in the other order; output before the reply; a reply with a stale tag is
        // ignored.
        node.reply(&pid_a, &tag_b, Term::atom("wrong")).await;
        node.reply(&pid_b, &tag_b, Term::string("shop")).await;
        let stdout = tuple(vec![Term::Integer(2), Term::atom(""), pid_a.clone()]);
        node.send(
            stdout,
            Some(tuple(vec![
                Term::atom("rex_stdout"),
                Term::Binary("été\n".as_bytes().to_vec()),
            ])),
        )
        .await;
        node.reply(&pid_a, &tag_a, Term::atom("ok")).await;
    };
    let (a, b, ()) = tokio::join!(a, b, script);
    let a = a.unwrap();
    assert_eq!((a.reply, a.output.as_str()), (Term::atom("ok"), "été\n"));
    assert_eq!(
        b.unwrap(),
        Term::string("shop"),
        "a list of characters reads as a string"
    );
}

#[tokio::test]
async fn badrpc_is_an_error_that_names_the_call_and_the_reason() {
    let (conn, mut node) = connected(Options::default()).await;
    let call = conn.call("erlang", "error", vec![Term::atom("boom")], secs(5.0));
    let script = async {
        let (pid, tag, _) = node.call().await;
        let reason = rel_format::term::parse_term("r", "{badrpc,{'EXIT',{boom,[{erlang,error,[boom],[]}]}}}.").unwrap();
        node.reply(&pid, &tag, reason).await;
    };
    let (result, ()) = tokio::join!(call, script);
    let e = result.unwrap_err();
    assert!(matches!(e, DistError::BadRpc { .. }));
    assert_eq!(
        e.to_string(),
        "`erlang:error/1` failed on `target@vm`: {'EXIT',{boom,[{erlang,error,[boom],[]}]}}"
    );
}

#[tokio::test]
async fn a_call_without_a_reply_times_out_and_the_connection_stays_usable() {
    let (conn, mut node) = connected(Options::default()).await;
    let e = conn
        .call("timer", "sleep", vec![Term::atom("infinity")], secs(0.2))
        .await
        .unwrap_err();
    assert!(matches!(e, DistError::CallTimedOut { .. }), "{e}");
    assert!(e.to_string().contains("it may still be running"), "{e}");
    let (late_pid, late_tag, _) = node.call().await;
    let again = conn.call("erlang", "node", vec![], secs(5.0));
    let script = async {
        node.reply(&late_pid, &late_tag, Term::atom("late")).await;
        let (pid, tag, _) = node.call().await;
        node.reply(&pid, &tag, Term::atom("target@vm")).await;
    };
    let (again, ()) = tokio::join!(again, script);
    assert_eq!(again.unwrap(), Term::atom("target@vm"));
}

#[tokio::test]
async fn unlink_id_is_acknowledged() {
    let (_conn, mut node) = connected(Options::default()).await;
    let from = Term::Pid {
        node: "target@vm".into(),
        id: 80,
        serial: 0,
        creation: 1,
    };
    let to = Term::Pid {
        node: _conn.local_name().into(),
        id: 1,
        serial: 0,
        creation: 5,
    };
    node.send(
        tuple(vec![Term::Integer(35), Term::Integer(7), from.clone(), to.clone()]),
        None,
    )
    .await;
    let (control, message) = node.message().await;
    assert_eq!(control, tuple(vec![Term::Integer(36), Term::Integer(7), to, from]));
    assert_eq!(message, None);
}

#[tokio::test]
async fn rel_ticks_when_it_has_nothing_to_say() {
    let options = Options {
        tick_interval: secs(0.05),
        ..Options::default()
    };
    let (_conn, mut node) = connected(options).await;
    for _ in 0..3 {
        let tick = tokio::time::timeout(secs(1.0), node.packet())
            .await
            .expect("a tick within 1 s");
        assert!(tick.is_none());
    }
}

/// A lost connection fails the waiting call with the reason, and later calls at once.
async fn lost_with(options: Options, script: impl AsyncFnOnce(&mut FakeNode)) -> (String, String) {
    let (conn, mut node) = connected(options).await;
    let call = conn.call(
        "release_handler",
        "install_release",
        vec![Term::string("2")],
        secs(10.0),
    );
    let (result, ()) = tokio::join!(call, async {
        node.call().await;
        script(&mut node).await;
    });
    let during = result.unwrap_err();
    assert!(matches!(during, DistError::ConnectionLost { .. }), "{during}");
    assert!(!conn.is_connected());
    let after = conn.call("erlang", "node", vec![], secs(10.0)).await.unwrap_err();
    assert!(matches!(after, DistError::ConnectionLost { call: None, .. }), "{after}");
    (during.to_string(), after.to_string())
}

#[tokio::test]
async fn an_oversized_packet_ends_the_connection_before_anything_is_allocated() {
    let (during, after) = lost_with(Options::default(), async |node| {
        node.w.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    })
    .await;
    assert_eq!(
        during,
        "lost the connection to `target@vm` while waiting for `release_handler:install_release/1` (it may have run, or may still run, on the node): the node sent a packet of 4294967295 bytes, more than the limit of 268435456"
    );
    assert!(after.ends_with("more than the limit of 268435456"), "{after}");
}

#[tokio::test]
async fn a_garbled_packet_ends_the_connection() {
    let (during, _) = lost_with(Options::default(), async |node| {
        node.w.write_all(&[0, 0, 0, 3, 112, 131, 255]).await.unwrap();
    })
    .await;
    assert!(
        during.ends_with(
            "the node sent an invalid packet: control message: invalid external term at byte 2: unknown tag 255"
        ),
        "{during}"
    );
}

#[tokio::test]
async fn a_silent_node_is_given_up_on() {
    let options = Options {
        peer_silence: secs(0.3),
        ..Options::default()
    };
    let (during, _) = lost_with(options, async |_| {}).await;
    assert!(
        during.ends_with("the node sent nothing, not even a tick, for 0.3 s"),
        "{during}"
    );
}

#[tokio::test]
async fn a_node_that_closes_the_connection_fails_the_waiting_call() {
    let (during, _) = lost_with(Options::default(), async |node| {
        node.w.shutdown().await.unwrap();
    })
    .await;
    assert!(during.ends_with(": the node closed the connection"), "{during}");
}

#[tokio::test]
async fn a_wrong_cookie_is_named_as_such_and_never_shown() {
    let (result, _) = connect_to_fake(Options::default(), "ok", "another").await;
    let e = result.unwrap_err();
    assert!(matches!(e, DistError::CookieRefused { .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("the node `target@vm` refused the cookie"), "{text}");
    assert!(!text.contains(COOKIE) && !format!("{e:?}").contains(COOKIE));
    assert_eq!(format!("{:?}", Cookie::new(COOKIE).unwrap()), "Cookie(<redacted>)");
}

#[tokio::test]
async fn a_refused_handshake_says_why() {
    for (status, meaning) in [
        ("not_allowed", "the node does not accept rel's flags or its name"),
        ("nok", "the node is connecting to rel at the same moment"),
        ("alive", "a node of rel's own name is connected already"),
        ("what", "a status this protocol version does not define"),
    ] {
        let (result, _) = connect_to_fake(Options::default(), status, COOKIE).await;
        let e = result.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "the node `target` refused the handshake with status `{status}`: {meaning}"
            )),
            "{e}"
        );
    }
}

#[test]
fn node_names_and_cookies_are_checked() {
    let n: NodeName = "shop@127.0.0.1".parse().unwrap();
    assert_eq!((n.alive(), n.host()), ("shop", Some("127.0.0.1")));
    let n: NodeName = "shop".parse().unwrap();
    assert_eq!((n.alive(), n.host()), ("shop", None));
    for (bad, why) in [
        ("", "it is empty"),
        ("@h", "nothing before the `@`"),
        ("a@", "nothing after the `@`"),
        ("a@b@c", "it has more than one `@`"),
        ("a b@c", "it has a space or a control character"),
    ] {
        let e = bad.parse::<NodeName>().unwrap_err().to_string();
        assert_eq!(e, format!("`{bad}` is not a node name: {why}"));
    }
    assert!(Cookie::new("").is_err());
    let e = Cookie::new("日本").unwrap_err().to_string();
    assert!(e.contains("beyond Latin-1") && !e.contains("日本"), "{e}");
    assert_eq!(Cookie::new("é").unwrap().bytes(), [0xe9]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("COOKIE");
    std::fs::write(&file, "ABC=\n").unwrap();
    assert_eq!(Cookie::from_file(&file).unwrap().bytes(), b"ABC=");
    std::fs::write(&file, " \n").unwrap();
    let e = Cookie::from_file(&file).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("the cookie in `{}` cannot be used: it is empty", file.display())
    );
    let e = Cookie::from_file(&dir.path().join("missing")).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read the cookie from `") && e.ends_with("missing`"),
        "{e}"
    );
}

#[tokio::test]
async fn a_listener_that_never_answers_is_given_up_on_within_the_connect_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts connections and keeps them open without a word: neither epmd nor a node.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let options = Options {
        connect_timeout: secs(0.3),
        ..Options::default()
    };
    let node: NodeName = "target@127.0.0.1".parse().unwrap();
    let cookie = Cookie::new(COOKIE).unwrap();
    for route in [
        super::Route::local_port(port),
        super::Route::Epmd {
            host: "127.0.0.1".into(),
            port,
        },
    ] {
        let e = super::connect(&node, &cookie, &route, &options).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "connecting to `target@127.0.0.1` (epmd lookup, TCP connection, handshake) did not finish within 0.3 s",
            "{route:?}"
        );
    }
    holder.abort();
}

#[test]
fn connections_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Connection>();
}
