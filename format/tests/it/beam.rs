//! rel's BEAM reader against OTP itself: `beam_lib:md5/1`, module names and export counts for
//! every module of Debian's OTP `kernel`, `stdlib`, `sasl` and of the fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rel_format::beam::Beam;
use rel_format::term::Term;

fn otp_lib() -> PathBuf {
    let out = Command::new("erl")
        .args([
            "-noshell",
            "-noinput",
            "-eval",
            "io:format(\"~s\", [code:lib_dir()]), halt().",
        ])
        .output()
        .expect("erl is installed (scripts/setup.sh)");
    PathBuf::from(String::from_utf8(out.stdout).unwrap())
}

fn beams_in(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            beams_in(&p, out);
        } else if p.extension().is_some_and(|x| x == "beam") {
            out.push(p);
        }
    }
}

#[test]
fn md5_matches_beam_lib_for_otp_and_fixture_modules() {
    let lib = otp_lib();
    let mut files = Vec::new();
    for e in std::fs::read_dir(&lib).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if ["kernel-", "stdlib-", "sasl-"].iter().any(|a| name.starts_with(a)) {
            beams_in(&p.join("ebin"), &mut files);
        }
    }
    let otp_files = files.len();
    // The fixtures as systools, mix release (beams stripped, `Meta` dropped) and
    // `rebar3 as prod tar` (beams stripped by beam_lib and gzip-compressed) built them.
    let out = rel_testkit::fixtures::out_dir();
    for dir in ["build", "shop/build", "ledger/build"] {
        assert!(out.join(dir).exists(), "run fixtures/build.sh first");
        beams_in(&out.join(dir), &mut files);
    }
    let gzipped = files
        .iter()
        .filter(|f| std::fs::read(f).unwrap().starts_with(&[0x1f, 0x8b]))
        .count();
    assert!(
        gzipped > 100,
        "only {gzipped} gzip-compressed beams (relx prod mode) among the fixtures"
    );
    assert!(files.len() > 2000, "only {} beams found", files.len());

    let list = std::env::temp_dir().join(format!("rel-beams-{}.txt", std::process::id()));
    std::fs::write(
        &list,
        files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let script = format!(
        "{{ok, B}} = file:read_file(\"{}\"), \
         lists:foreach(fun(F) -> {{ok, {{M, Md5}}}} = beam_lib:md5(F), \
            {{ok, {{_, [{{exports, E}}]}}}} = beam_lib:chunks(F, [exports]), \
            io:format(\"~s ~s ~s ~b~n\", [F, M, string:lowercase(binary:encode_hex(Md5)), length(E)]) end, \
            string:split(binary_to_list(B), \"\\n\", all)), halt().",
        list.display()
    );
    let out = Command::new("erl")
        .args(["-noshell", "-noinput", "-eval", &script])
        .output()
        .unwrap();
    std::fs::remove_file(&list).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let erl: BTreeMap<String, (String, String, usize)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let p: Vec<&str> = l.split(' ').collect();
            (
                p[0].to_owned(),
                (p[1].to_owned(), p[2].to_owned(), p[3].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(erl.len(), files.len());
    let mut mismatches = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let beam = Beam::parse(&f.to_string_lossy(), std::fs::read(f).unwrap()).unwrap();
        let (module, md5, exports) = &erl[&f.to_string_lossy().into_owned()];
        if (beam.module(), beam.md5_hex().as_str(), beam.exports.len()) != (module.as_str(), md5.as_str(), *exports) {
            mismatches.push(format!(
                "{}: rel {} {} {} / erl {module} {md5} {exports}",
                f.display(),
                beam.module(),
                beam.md5_hex(),
                beam.exports.len()
            ));
        }
        beam.literals().unwrap();
        let info = beam.compile_info().unwrap();
        assert!(i >= otp_files || info.is_some(), "{} has no compile info", f.display());
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
}

fn fixture_beam(version: &str, app: &str, module: &str) -> Beam {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/out/build")
        .join(version)
        .join("lib");
    let app_dir = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{app}-")))
        .unwrap();
    let path = app_dir.join("ebin").join(format!("{module}.beam"));
    Beam::parse(&path.to_string_lossy(), std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn reads_behaviours_exports_imports_and_child_specs() {
    let server = fixture_beam("v2", "demo", "demo_server");
    assert_eq!(server.behaviours(), vec!["gen_server"]);
    assert!(server.exports("code_change", 3));
    assert!(server.called_modules().contains("demo_lib") && server.called_modules().contains("gen_server"));
    let sup1 = fixture_beam("v1", "demo", "demo_sup");
    let sup3 = fixture_beam("v3", "demo", "demo_sup");
    assert_eq!(sup1.behaviours(), vec!["supervisor"]);
    assert_eq!(sup1.literal_child_ids().unwrap(), Some(vec![Term::atom("demo_server")]));
    assert_eq!(
        sup3.literal_child_ids().unwrap(),
        Some(vec![Term::atom("demo_server"), Term::atom("demo_worker")])
    );
    // Unchanged source compiled deterministically in two builds: the same md5.
    assert_eq!(
        fixture_beam("v1", "demo", "demo_app").md5(),
        fixture_beam("v3", "demo", "demo_app").md5()
    );
    assert_ne!(server.md5(), fixture_beam("v1", "demo", "demo_server").md5());
    // The identity rel compares modules by agrees with the md5 on every fixture pair.
    for module in ["demo_app", "demo_sup", "demo_server", "demo_lib"] {
        for (a, b) in [("v1", "v2"), ("v2", "v3"), ("v1", "v3")] {
            let (x, y) = (fixture_beam(a, "demo", module), fixture_beam(b, "demo", module));
            assert_eq!(x.md5() == y.md5(), x.identity() == y.identity(), "{module} {a} {b}");
        }
    }
}

#[test]
fn truncated_and_corrupted_beams_never_panic() {
    use rel_format::supervision::Supervision;
    let out = rel_testkit::fixtures::out_dir();
    let lib = |release: &str, app: &str| {
        std::fs::read_dir(out.join(release).join("lib"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{app}-")))
            .unwrap()
            .join("ebin")
    };
    // A gen_server, Erlang and Elixir supervisors (one gzip-compressed), an application that
    // starts a supervisor inline, and a child_spec/1 with guards: every part of the reader,
    // the code decoder and the supervision analysis.
    let files = [
        lib("build/v2", "demo").join("demo_server.beam"),
        lib("build/v3", "demo").join("demo_sup.beam"),
        lib("ledger/build/v3", "ledger").join("ledger_sup.beam"),
        lib("shop/build/v3", "shop").join("Elixir.Shop.WorkerSup.beam"),
        lib("shop/build/v3", "shop").join("Elixir.Shop.Application.beam"),
        lib("shop/build/v3", "elixir").join("Elixir.Task.Supervisor.beam"),
    ];
    let everything = |beam: Beam| {
        let code = beam.code().map(|c| c.functions().len());
        (
            beam.md5(),
            beam.literals(),
            beam.behaviours(),
            code,
            Supervision::of(&beam),
        )
    };
    for file in &files {
        let good = std::fs::read(file).unwrap();
        let whole = Beam::parse("good.beam", good.clone()).unwrap();
        assert!(whole.code().is_ok(), "{}", file.display());
        // Relx's compressed beams are truncated and flipped once decompressed too.
        let good = if good.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(good.as_slice()), &mut plain).unwrap();
            plain
        } else {
            good
        };
        for cut in (0..good.len()).step_by(7) {
            let _ = Beam::parse("cut.beam", good[..cut].to_vec()).map(everything);
        }
        let mut x: u32 = 1;
        for i in 0..good.len() {
            let mut bad = good.clone();
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            bad[i] ^= (x >> 16) as u8 | 1;
            let _ = Beam::parse("flipped.beam", bad).map(everything);
        }
    }
}

/// The kernel, stdlib and sasl beams of the installed OTP, and every beam of the fixtures.
fn otp_and_fixture_beams() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(otp_lib()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if ["kernel-", "stdlib-", "sasl-"].iter().any(|a| name.starts_with(a)) {
            beams_in(&p.join("ebin"), &mut files);
        }
    }
    let out = rel_testkit::fixtures::out_dir();
    for dir in ["build", "shop/build", "ledger/build"] {
        beams_in(&out.join(dir), &mut files);
    }
    files
}

#[test]
fn every_code_chunk_decodes_with_the_functions_its_header_and_exports_declare() {
    use rel_format::beam::{Opcode, Operand};
    let files = otp_and_fixture_beams();
    assert!(files.len() > 2000, "only {} beams found", files.len());
    let (mut functions, mut instructions) = (0, 0);
    for f in &files {
        let beam = Beam::parse(&f.to_string_lossy(), std::fs::read(f).unwrap()).unwrap();
        let code = beam.code().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            code.functions().len(),
            code.header().function_count as usize,
            "{}",
            f.display()
        );
        assert_eq!(code.instructions().last().map(|i| i.opcode), Some(Opcode::IntCodeEnd));
        // Every export's label (ExpT) is the entry label of the function of that name.
        let expt = beam.chunk(b"ExpT").unwrap();
        let be32 = |at: usize| u32::from_be_bytes(expt[at..at + 4].try_into().unwrap());
        for (i, (name, arity)) in beam.exports.iter().enumerate() {
            let function = code
                .function(name, *arity)
                .unwrap_or_else(|| panic!("{}: {name}/{arity}", f.display()));
            assert_eq!(function.entry, be32(4 + 12 * i + 8), "{}: {name}/{arity}", f.display());
        }
        // Every label an instruction names exists, and so does every fun's.
        for ins in code.instructions() {
            let mut check = |o: &Operand| {
                if let Operand::Label(l) = o {
                    assert!(*l == 0 || code.label(*l).is_some(), "{}: {ins}", f.display());
                }
            };
            for o in &ins.operands {
                check(o);
                if let Operand::List(items) = o {
                    items.iter().for_each(&mut check);
                }
            }
        }
        for lambda in code.lambdas() {
            assert!(code.label(lambda.label).is_some(), "{}: {lambda:?}", f.display());
        }
        functions += code.functions().len();
        instructions += code.instructions().len();
    }
    assert!(
        functions > 50_000 && instructions > 1_000_000,
        "{functions} functions, {instructions} instructions"
    );
}
