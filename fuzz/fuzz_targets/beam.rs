//! BEAM files: every question rel asks of a module answers or errs, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::beam::Beam;

fuzz_target!(|data: &[u8]| {
    let Ok(beam) = Beam::parse("fuzz.beam", data.to_vec()) else { return };
    let _ = beam.module();
    let _ = beam.identity();
    let _ = beam.compile_info();
    let _ = beam.behaviours();
    let _ = beam.called_modules();
    let _ = beam.exports("code_change", 3);
    let _ = beam.literals();
    let _ = beam.lambdas();
    let _ = beam.code();
    let _ = beam.literal_child_ids();
});
