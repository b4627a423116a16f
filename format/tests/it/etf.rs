//! The external term format against itself and against OTP: every term rel can encode
//! decodes to the same term and re-encodes to the same bytes (proptest), and a real `erl`
//! reads what rel writes and writes what rel reads, byte for byte where OTP's own map order
//! does not get in the way.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rel_format::etf::{decode, encode};
use rel_format::term::Term;

fn node_name() -> impl Strategy<Value = String> {
    // Never `nonode@nohost`: OTP would take such a pid or reference for one of its own.
    "[a-z]{1,8}@[a-z0-9.]{1,12}".prop_filter("not the local node", |n| n != "nonode@nohost")
}

fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..20).prop_map(|c| Term::Atom(c.into_iter().collect())),
        "[a-z_]{1,12}".prop_map(|a| Term::atom(&a)),
        any::<i128>().prop_map(Term::Integer),
        (-300i128..300).prop_map(Term::Integer),
        any::<i64>().prop_map(|i| Term::Integer(i.into())),
        // -0.0 is left out: OTP 25 compares it equal to 0.0, so it is no distinct map key.
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| Term::Float(if x == 0.0 { 0.0 } else { x })),
        ".{0,20}".prop_map(Term::String),
        "[ -~é]{0,20}".prop_map(Term::String),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Term::Binary),
        (node_name(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(node, id, serial, creation)| Term::Pid {
            node,
            id,
            serial,
            creation
        }),
        (node_name(), any::<u64>(), any::<u32>()).prop_map(|(node, id, creation)| Term::Port { node, id, creation }),
        (node_name(), any::<u32>(), prop::collection::vec(any::<u32>(), 1..=5))
            .prop_map(|(node, creation, ids)| Term::Reference { node, creation, ids }),
    ]
}

/// Maps whose keys are distinct as Erlang sees them (rel's encoding is canonical for keys
/// without maps inside, which is what this generates).
fn distinct_keys(pairs: Vec<(Term, Term)>) -> Vec<(Term, Term)> {
    let mut seen = std::collections::HashSet::new();
    pairs
        .into_iter()
        .filter(|(k, _)| seen.insert(encode(k).expect("keys are encodable")))
        .collect()
}

fn term() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Term::Tuple),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Term::List),
            (prop::collection::vec(inner.clone(), 1..4), leaf())
                .prop_filter("a tail that is not a list", |(_, tail)| {
                    !matches!(tail, Term::List(_) | Term::String(_))
                })
                .prop_map(|(items, tail)| Term::ImproperList(items, Box::new(tail))),
            prop::collection::vec((leaf(), inner), 0..5).prop_map(|pairs| Term::Map(distinct_keys(pairs))),
        ]
    })
}

fn has_map(t: &Term) -> bool {
    match t {
        Term::Map(_) => true,
        Term::List(items) | Term::Tuple(items) => items.iter().any(has_map),
        Term::ImproperList(items, tail) => items.iter().any(has_map) || has_map(tail),
        _ => false,
    }
}

proptest! {
    #[test]
    fn every_encoded_term_decodes_to_itself_and_encodes_again_to_the_same_bytes(t in term()) {
        let bytes = encode(&t).unwrap();
        let back = decode(&bytes).unwrap();
        prop_assert!(back.erl_eq(&t), "{t} came back as {back}");
        prop_assert_eq!(encode(&back).unwrap(), bytes);
    }

    #[test]
    fn decoding_any_bytes_is_an_answer_not_a_panic(mut body in prop::collection::vec(any::<u8>(), 0..200)) {
        body.insert(0, 131);
        if let Ok(t) = decode(&body) {
            // What decodes re-encodes, unless it holds something rel does not model.
            let _ = encode(&t);
        }
    }
}

/// One `erl` that answers, line by line, `E <expression>` with the hex of
/// `term_to_binary(Value, [{minor_version, 2}])` and `R <hex>` with the same for
/// `binary_to_term` of those bytes (or `error ...`). Killed on drop.
struct Erl {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

const ERL_LOOP: &str = r#"
Enc = fun(V) -> binary:encode_hex(term_to_binary(V, [{minor_version, 2}])) end,
Loop = fun Loop() ->
    Reply = case io:get_line('') of
        eof -> halt(0);
        "E " ++ Src ->
            {ok, Toks, _} = erl_scan:string(Src),
            {ok, Exprs} = erl_parse:parse_exprs(Toks),
            {value, V, _} = erl_eval:exprs(Exprs, []),
            Enc(V);
        "R " ++ Hex ->
            try Enc(binary_to_term(binary:decode_hex(list_to_binary(string:trim(Hex)))))
            catch C:E -> io_lib:format("error ~p:~p", [C, E]) end
    end,
    io:put_chars([Reply, $\n]),
    Loop()
end,
Loop().
"#;

impl Erl {
    fn start() -> Erl {
        let mut child = Command::new("erl")
            .args(["-noshell", "-eval", ERL_LOOP])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("erl is installed (scripts/setup.sh)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Erl { child, stdin, stdout }
    }

    fn ask(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        assert!(!reply.is_empty(), "erl exited while answering {line}");
        reply.trim_end().to_owned()
    }

    /// OTP's bytes for an Erlang expression's value.
    fn term_to_binary(&mut self, expr: &str) -> Vec<u8> {
        hex::decode(self.ask(&format!("E {expr}."))).unwrap()
    }

    /// OTP's bytes after reading `bytes`; an error names what OTP said.
    fn reencode(&mut self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let reply = self.ask(&format!("R {}", hex::encode_upper(bytes)));
        hex::decode(&reply).map_err(|_| reply)
    }
}

impl Drop for Erl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn otp_reads_what_rel_writes_and_rel_reads_what_otp_writes() {
    let mut erl = Erl::start();
    let pid = |id, serial| Term::Pid {
        node: "nonode@nohost".into(),
        id,
        serial,
        creation: 0,
    };
    let cases: Vec<(&str, Option<Term>)> = vec![
        (r"'\x{e9}t\x{e9}'", Some(Term::atom("été"))),
        (r"'\x{65e5}\x{672c}\x{8a9e}'", Some(Term::atom("日本語"))),
        (
            r"list_to_atom(lists:duplicate(255, 16#1F600))",
            Some(Term::Atom("😀".repeat(255))),
        ),
        ("1 bsl 100", Some(Term::Integer(1 << 100))),
        ("-(1 bsl 127)", Some(Term::Integer(i128::MIN))),
        ("(1 bsl 127) - 1", Some(Term::Integer(i128::MAX))),
        ("-2147483649", Some(Term::Integer(-2_147_483_649))),
        (
            "[1, 2 | c]",
            Some(Term::ImproperList(
                vec![Term::Integer(1), Term::Integer(2)],
                Box::new(Term::atom("c")),
            )),
        ),
        (
            "[[] | <<>>]",
            Some(Term::ImproperList(
                vec![Term::List(vec![])],
                Box::new(Term::Binary(vec![])),
            )),
        ),
        (
            r#"#{a => #{b => [1, 2 | c], "k" => {}}, 1.5 => #{}}"#,
            Some(Term::Map(vec![
                (
                    Term::atom("a"),
                    Term::Map(vec![
                        (
                            Term::atom("b"),
                            Term::ImproperList(vec![Term::Integer(1), Term::Integer(2)], Box::new(Term::atom("c"))),
                        ),
                        (Term::string("k"), Term::Tuple(vec![])),
                    ]),
                ),
                (Term::Float(1.5), Term::Map(vec![])),
            ])),
        ),
        (
            "maps:from_list([{I, [I]} || I <- lists:seq(1, 40)])",
            Some(Term::Map(
                (1..=40)
                    .map(|i| (Term::Integer(i), Term::List(vec![Term::Integer(i)])))
                    .collect(),
            )),
        ),
        (r#""\x{20ac}uro""#, Some(Term::string("€uro"))),
        (r#"lists:duplicate(65536, $a)"#, Some(Term::string(&"a".repeat(65536)))),
        (r#"<<"bin", 0, 255>>"#, Some(Term::Binary(b"bin\0\xff".to_vec()))),
        (
            "list_to_tuple(lists:seq(1, 300))",
            Some(Term::Tuple((1..=300).map(Term::Integer).collect())),
        ),
        (
            "{2.5, -0.1, 1.0e300}",
            Some(Term::Tuple(vec![
                Term::Float(2.5),
                Term::Float(-0.1),
                Term::Float(1.0e300),
            ])),
        ),
        ("list_to_pid(\"<0.77.3>\")", Some(pid(77, 3))),
        ("self()", None),
        ("make_ref()", None),
        ("hd(erlang:ports())", None),
        (
            "{self(), make_ref(), hd(erlang:ports()), #{self() => make_ref()}}",
            None,
        ),
    ];
    for (expr, expected) in cases {
        let otp = erl.term_to_binary(expr);
        let t = decode(&otp).unwrap_or_else(|e| panic!("{expr}: {e}"));
        if let Some(expected) = expected {
            assert!(t.erl_eq(&expected), "{expr}: decoded {t}, expected {expected}");
        }
        let ours = encode(&t).unwrap_or_else(|e| panic!("{expr}: {e}"));
        if !has_map(&t) {
            assert_eq!(ours, otp, "{expr}: rel's bytes differ from term_to_binary's");
        }
        assert_eq!(
            erl.reencode(&ours).unwrap(),
            otp,
            "{expr}: OTP read rel's bytes as another term"
        );
    }
    // The local pid, reference and port come back as such.
    let t = decode(&erl.term_to_binary("{self(), make_ref(), hd(erlang:ports())}")).unwrap();
    let [p, r, port] = t.as_tuple().unwrap() else {
        panic!("{t}")
    };
    assert!(matches!(p, Term::Pid { node, .. } if node == "nonode@nohost"), "{p}");
    assert!(matches!(r, Term::Reference { ids, .. } if ids.len() == 3), "{r}");
    assert!(matches!(port, Term::Port { .. }), "{port}");
    assert!(r.to_string().starts_with("#Ref<nonode@nohost."), "{r}");
}

#[test]
fn otp_agrees_with_rel_on_generated_terms() {
    let mut erl = Erl::start();
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = term();
    for _ in 0..400 {
        let t = strategy.new_tree(&mut runner).unwrap().current();
        let ours = encode(&t).unwrap();
        let otp = erl
            .reencode(&ours)
            .unwrap_or_else(|e| panic!("OTP refused rel's encoding of {t}: {e}"));
        if has_map(&t) {
            let back = decode(&otp).unwrap();
            assert!(back.erl_eq(&t), "OTP read {t} as {back}");
        } else {
            assert_eq!(ours, otp, "{t}: rel's bytes differ from OTP's");
        }
    }
}
