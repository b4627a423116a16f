//! Prints a BEAM file's decoded code in `beam_disasm`'s shape, one instruction per line:
//! `cargo run -p rel-format --example disasm -- FILE.beam [NAME/ARITY]`. Stripped release
//! beams (no `Type` chunk) and gzip-compressed ones work too, which `beam_disasm` cannot do.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use rel_format::beam::Beam;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: disasm FILE.beam [NAME/ARITY]");
        return ExitCode::from(2);
    };
    let code = match std::fs::read(file)
        .map_err(|e| format!("{file}: {e}"))
        .and_then(|bytes| Beam::parse(file, bytes).map_err(|e| e.to_string()))
        .and_then(|beam| beam.code().map_err(|e| e.to_string()))
    {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for f in code.functions() {
        if args
            .get(1)
            .is_some_and(|want| *want != format!("{}/{}", f.name, f.arity))
        {
            continue;
        }
        println!("%% {}:{}/{} (entry label {})", code.module(), f.name, f.arity, f.entry);
        for ins in code.body(f) {
            println!("    {ins}");
        }
    }
    ExitCode::SUCCESS
}
