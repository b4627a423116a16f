//! rel's distribution client against real OTP 25 nodes: plain `erl` nodes with long and
//! short names, one reached by its port without epmd, and the `shop` fixture, a real
//! `mix release` run as a daemon. Every node and epmd runs on 127.0.0.1, epmd on a port of
//! its own, and each is stopped when its test ends.
//!
//! The figures (connection set-up, round trip of a call, against `bin/shop rpc`) are printed
//! for `--nocapture`, not asserted: the machine is shared.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use rel::target::dist::{Connection, Cookie, DistError, NodeName, Options, Route, connect};
use rel_format::term::Term;
use rel_testkit::otp::{Epmd, ErlNode, MixRelease, unique_name};

const COOKIE: &str = "dist-test-cookie";
const SECOND: Duration = Duration::from_secs(1);

fn epmd_route(epmd: &Epmd) -> Route {
    Route::Epmd {
        host: "127.0.0.1".into(),
        port: epmd.port,
    }
}

async fn connect_to(node: &str, epmd: &Epmd) -> Result<Connection, DistError> {
    let name: NodeName = node.parse().unwrap();
    connect(
        &name,
        &Cookie::new(COOKIE).unwrap(),
        &epmd_route(epmd),
        &Options::default(),
    )
    .await
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// `Term` from Erlang text, for expected values.
fn term(text: &str) -> Term {
    rel_format::term::parse_term("expected", &format!("{text}.")).unwrap()
}

#[tokio::test]
async fn calls_on_a_long_name_node_return_terms_and_name_their_failures() {
    let epmd = Epmd::start();
    let alive = unique_name("target");
    let node = ErlNode::start(&epmd, "-name", &format!("{alive}@127.0.0.1"), COOKIE, &[]);
    let conn = connect_to(&node.name, &epmd).await.unwrap();
    assert_eq!(conn.node().as_str(), node.name);

    let call = |m: &'static str, f: &'static str, args: Vec<Term>| conn.call(m, f, args, 10 * SECOND);
    assert_eq!(
        call("erlang", "node", vec![]).await.unwrap(),
        Term::Atom(node.name.clone())
    );

    // release_handler, as the upgrade commands will call it.
    let releases = call("release_handler", "which_releases", vec![]).await.unwrap();
    let [release] = &*releases.as_list().unwrap() else {
        panic!("{releases}")
    };
    let [name, vsn, libs, status] = release.as_tuple().unwrap() else {
        panic!("{release}")
    };
    assert_eq!(name, &Term::string("Erlang/OTP"));
    assert_eq!(vsn, &Term::string("25"));
    assert!(
        libs.as_list()
            .unwrap()
            .iter()
            .any(|l| l.as_string().unwrap().starts_with("sasl-"))
    );
    assert_eq!(status, &Term::atom("permanent"));
    assert_eq!(
        call("release_handler", "check_install_release", vec![Term::string("9.9.9")])
            .await
            .unwrap(),
        term(r#"{error,{no_such_release,"9.9.9"}}"#)
    );
    let kernel = call("code", "which", vec![Term::atom("kernel")]).await.unwrap();
    assert!(kernel.as_string().unwrap().ends_with("/kernel.beam"), "{kernel}");
    assert_eq!(
        call(
            "application",
            "get_env",
            vec![Term::atom("kernel"), Term::atom("inet_dist_use_interface")]
        )
        .await
        .unwrap(),
        term("{ok,{127,0,0,1}}")
    );

    // Terms both ways: Unicode atoms, binaries, maps, big integers, improper lists, pids.
    let echo = term(r#"{'été', <<"bin"/utf8>>, #{k => [1, 2 | c]}, 1180591620717411303424, -5, 2.5}"#);
    assert_eq!(
        call("erlang", "hd", vec![Term::List(vec![echo.clone()])])
            .await
            .unwrap(),
        echo
    );
    assert_eq!(
        call("lists", "reverse", vec![Term::string("abc")]).await.unwrap(),
        Term::string("cba")
    );
    let pid = call("erlang", "self", vec![]).await.unwrap();
    assert!(matches!(&pid, Term::Pid { node: n, .. } if *n == node.name), "{pid}");
    assert!(pid.to_string().starts_with(&format!("<{}.", node.name)), "{pid}");
    let reference = call("erlang", "make_ref", vec![]).await.unwrap();
    assert_eq!(
        call("erlang", "is_reference", vec![reference]).await.unwrap(),
        Term::atom("true"),
        "a reference the node made goes back as one"
    );

    // Output: to the node's own `user` by default, to rel when captured.
    let hello = || vec![Term::string("hello ~p~n"), Term::List(vec![Term::Integer(42)])];
    assert_eq!(call("io", "format", hello()).await.unwrap(), Term::atom("ok"));
    let captured = conn.call_capturing("io", "format", hello(), 10 * SECOND).await.unwrap();
    assert_eq!(
        (captured.reply, captured.output.as_str()),
        (Term::atom("ok"), "hello 42\n")
    );

    // A call that raises, one that exits, and a missing module.
    let e = call("erlang", "error", vec![Term::atom("boom")]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "`erlang:error/1` failed on `{}`: {{'EXIT',{{boom,[{{erlang,error,[boom],[]}}]}}}}",
            node.name
        )
    );
    let DistError::BadRpc { reason, .. } = call("erlang", "exit", vec![Term::atom("bye")]).await.unwrap_err() else {
        panic!("exit is a badrpc")
    };
    assert_eq!(reason, term("{'EXIT',bye}"));
    let e = call("nosuchmod", "f", vec![]).await.unwrap_err().to_string();
    assert!(e.contains("`nosuchmod:f/0` failed") && e.contains("undef"), "{e}");

    // Calls run concurrently on the node, each with its own reply.
    let sleeps = (1..=5).map(|i| conn.call("timer", "sleep", vec![Term::Integer(50 * i)], 10 * SECOND));
    for reply in futures::future::join_all(sleeps).await {
        assert_eq!(reply.unwrap(), Term::atom("ok"));
    }

    // A call that outlives its timeout leaves the connection usable.
    let e = conn
        .call("timer", "sleep", vec![Term::Integer(2000)], Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(e, DistError::CallTimedOut { .. }), "{e}");

    // 100 calls in a row on one connection.
    let mut round_trips = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        assert_eq!(
            call("erlang", "node", vec![]).await.unwrap(),
            Term::Atom(node.name.clone())
        );
        round_trips.push(started.elapsed());
    }
    println!(
        "erl -name: round trip of erlang:node/0, median of 100: {}",
        ms(median(round_trips))
    );

    // The node sees a hidden node, not a visible one.
    let hidden = call("erlang", "nodes", vec![Term::atom("hidden")]).await.unwrap();
    assert_eq!(hidden, Term::List(vec![Term::Atom(conn.local_name().into())]));
    assert_eq!(call("erlang", "nodes", vec![]).await.unwrap(), Term::List(vec![]));
}

#[tokio::test]
async fn a_short_name_node_is_found_by_its_alive_name_alone() {
    let epmd = Epmd::start();
    let alive = unique_name("starget");
    let node = ErlNode::start(&epmd, "-sname", &alive, COOKIE, &[]);
    let (_, host) = node.name.split_once('@').unwrap();
    // The host part is whatever the node made of its host name; rel needs only the alive
    // part and learns the rest in the handshake.
    let conn = connect_to(&alive, &epmd).await.unwrap();
    assert_eq!(conn.node().as_str(), node.name);
    assert_eq!(conn.node().host(), Some(host));
    assert!(
        conn.local_name().ends_with(&format!("@{}", "127.0.0.1")),
        "{}",
        conn.local_name()
    );
    assert_eq!(
        conn.call("erlang", "node", vec![], 10 * SECOND).await.unwrap(),
        Term::Atom(node.name.clone())
    );
    let conn = connect_to(&node.name, &epmd).await.unwrap();
    assert!(
        conn.local_name().ends_with(&format!("@{host}")),
        "{}",
        conn.local_name()
    );
    let text = conn
        .call("erlang", "atom_to_list", vec![Term::atom("été")], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(text, Term::string("été"));
}

#[tokio::test]
async fn a_node_without_epmd_is_reached_by_its_port() {
    let epmd = Epmd::start();
    let port = rel_testkit::free_port();
    let alive = unique_name("direct");
    let name = format!("{alive}@127.0.0.1");
    let node = ErlNode::start_on_port(&name, COOKIE, port);
    assert!(!epmd.names().contains(&alive), "the node is in no epmd");
    let conn = connect(
        &name.parse().unwrap(),
        &Cookie::new(COOKIE).unwrap(),
        &Route::local_port(port),
        &Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        conn.call("erlang", "node", vec![], 10 * SECOND).await.unwrap(),
        Term::Atom(node.name.clone())
    );
}

#[tokio::test]
async fn a_wrong_cookie_and_an_unknown_node_are_named_as_such() {
    let epmd = Epmd::start();
    let alive = unique_name("target");
    let other = unique_name("other");
    let node = ErlNode::start(&epmd, "-name", &format!("{alive}@127.0.0.1"), COOKIE, &[]);
    let other_node = ErlNode::start(&epmd, "-name", &format!("{other}@127.0.0.1"), COOKIE, &[]);

    let wrong = Cookie::new("not-the-cookie").unwrap();
    let e = connect(
        &node.name.parse().unwrap(),
        &wrong,
        &epmd_route(&epmd),
        &Options::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DistError::CookieRefused { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("the node `{}` refused the cookie", node.name)),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-cookie") && !format!("{e:?}").contains("not-the-cookie"));
    // The node is none the worse for it.
    assert!(connect_to(&node.name, &epmd).await.is_ok());

    let e = connect_to("nosuch@127.0.0.1", &epmd).await.unwrap_err();
    let DistError::NotRegistered {
        registered: Some(registered),
        ..
    } = &e
    else {
        panic!("{e}")
    };
    let mut registered = registered.clone();
    registered.sort();
    let mut expected = vec![alive.clone(), other.clone()];
    expected.sort();
    assert_eq!(registered, expected);
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "no node `nosuch` is registered with epmd on 127.0.0.1:{}; registered: ",
            epmd.port
        )) && message.contains(&alive)
            && message.contains(&other),
        "{message}"
    );

    // No epmd at all.
    drop(other_node);
    let nobody = rel_testkit::free_port();
    let e = connect(
        &node.name.parse().unwrap(),
        &Cookie::new(COOKIE).unwrap(),
        &Route::Epmd {
            host: "127.0.0.1".into(),
            port: nobody,
        },
        &Options::default(),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "cannot reach epmd on 127.0.0.1:{nobody} to find `{}`",
            node.name
        )),
        "{e}"
    );
}

#[tokio::test]
async fn a_connection_outlives_the_nodes_tick_time_and_notices_the_node_going() {
    let epmd = Epmd::start();
    let alive = unique_name("ticky");
    // net_ticktime 4: the node ticks every second and drops a peer it has not heard from
    // in 3 to 5 s. rel, idle, must answer its ticks.
    let mut node = ErlNode::start(
        &epmd,
        "-name",
        &format!("{alive}@127.0.0.1"),
        COOKIE,
        &["-kernel", "net_ticktime", "4"],
    );
    let conn = connect_to(&node.name, &epmd).await.unwrap();
    let ticktime = conn
        .call("net_kernel", "get_net_ticktime", vec![], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(ticktime, Term::Integer(4));
    tokio::time::sleep(10 * SECOND).await;
    assert!(conn.is_connected());
    assert_eq!(
        conn.call("erlang", "node", vec![], 10 * SECOND).await.unwrap(),
        Term::Atom(node.name.clone())
    );

    // A node that goes away during a call fails it at once, with what is known.
    let waiting = conn.call("timer", "sleep", vec![Term::atom("infinity")], 60 * SECOND);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        node.kill();
    };
    let started = Instant::now();
    let (result, ()) = tokio::join!(waiting, kill);
    let e = result.unwrap_err();
    assert!(started.elapsed() < 30 * SECOND);
    assert!(matches!(e, DistError::ConnectionLost { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "lost the connection to `{}` while waiting for `timer:sleep/1`",
            node.name
        )),
        "{e}"
    );
}

#[tokio::test]
async fn a_mix_release_answers_release_handler_and_elixir_calls() {
    let epmd = Epmd::start();
    let dir = tempfile::tempdir().unwrap();
    let release = MixRelease::start_shop(dir.path(), &epmd, COOKIE);
    let name: NodeName = release.node.parse().unwrap();
    let cookie = Cookie::new(&release.cookie).unwrap();

    let mut setups = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let conn = connect(&name, &cookie, &epmd_route(&epmd), &Options::default())
            .await
            .unwrap();
        setups.push(started.elapsed());
        drop(conn);
    }
    let conn = connect(&name, &cookie, &epmd_route(&epmd), &Options::default())
        .await
        .unwrap();
    let call = |m: &'static str, f: &'static str, args: Vec<Term>| conn.call(m, f, args, 10 * SECOND);

    assert_eq!(
        call("erlang", "node", vec![]).await.unwrap(),
        Term::Atom(release.node.clone())
    );
    let releases = call("release_handler", "which_releases", vec![]).await.unwrap();
    let [release_entry] = &*releases.as_list().unwrap() else {
        panic!("{releases}")
    };
    let [rel_name, vsn, libs, status] = release_entry.as_tuple().unwrap() else {
        panic!("{release_entry}")
    };
    assert_eq!(rel_name, &Term::string("shop"));
    assert!(vsn.as_string().unwrap().starts_with("0.1.0+"), "{vsn}");
    assert_eq!((libs, status), (&Term::List(vec![]), &Term::atom("permanent")));

    assert_eq!(
        call("Elixir.System", "version", vec![]).await.unwrap(),
        Term::Binary(b"1.14.0".to_vec())
    );
    let captured = conn
        .call_capturing(
            "Elixir.IO",
            "puts",
            vec![Term::Binary("hé".as_bytes().to_vec())],
            10 * SECOND,
        )
        .await
        .unwrap();
    assert_eq!((captured.reply, captured.output.as_str()), (Term::atom("ok"), "hé\n"));
    assert_eq!(
        call(
            "application",
            "get_env",
            vec![Term::atom("shop"), Term::atom("greeting")]
        )
        .await
        .unwrap(),
        term(r#"{ok,<<"hello">>}"#)
    );
    let beam = call("code", "which", vec![Term::atom("Elixir.Shop.Application")])
        .await
        .unwrap();
    assert!(
        beam.as_string().unwrap().ends_with("/Elixir.Shop.Application.beam"),
        "{beam}"
    );
    let e = call("Elixir.String", "to_integer", vec![Term::Binary(b"x".to_vec())])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("badarg"), "{e}");

    let mut round_trips = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        call("release_handler", "which_releases", vec![]).await.unwrap();
        round_trips.push(started.elapsed());
    }
    let mut rpcs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let out = release.command(&["rpc", "IO.inspect(node())"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        rpcs.push(started.elapsed());
    }
    println!(
        "shop (mix release): connect + handshake, median of 20: {}; release_handler:which_releases/0, median of 100: {}; `bin/shop rpc`, median of 5: {}",
        ms(median(setups)),
        ms(median(round_trips)),
        ms(median(rpcs)),
    );
}

#[tokio::test]
async fn replies_beyond_the_bounds_end_the_connection_with_the_reason() {
    let epmd = Epmd::start();
    let alive = unique_name("bounds");
    let node = ErlNode::start(&epmd, "-name", &format!("{alive}@127.0.0.1"), COOKIE, &[]);
    let options = Options {
        max_packet: 1 << 20,
        ..Options::default()
    };
    let open = || async {
        connect(
            &node.name.parse().unwrap(),
            &Cookie::new(COOKIE).unwrap(),
            &epmd_route(&epmd),
            &options,
        )
        .await
        .unwrap()
    };
    // 2 MB in one binary: a packet over the bound.
    let conn = open().await;
    let two_mb = vec![Term::Binary(b"x".to_vec()), Term::Integer(2_000_000)];
    let e = conn
        .call("binary", "copy", two_mb, 10 * SECOND)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("more than the limit of 1048576"), "{e}");
    // 20,000 small integers: 40 kB on the wire, 1.3 MB as terms.
    let conn = open().await;
    let seq = vec![Term::Integer(1), Term::Integer(20_000)];
    let e = conn
        .call("lists", "seq", seq, 10 * SECOND)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("more than 16384 terms"), "{e}");
    // Within the bounds, the same node answers.
    let conn = open().await;
    let seq = vec![Term::Integer(1), Term::Integer(10_000)];
    let reply = conn.call("lists", "seq", seq, 10 * SECOND).await.unwrap();
    assert_eq!(reply.as_list().unwrap().len(), 10_000);
}
