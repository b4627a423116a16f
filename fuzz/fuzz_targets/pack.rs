//! Packs and pack indexes: a pack read whole and a pack read as it arrives, cut anywhere,
//! agree; a read pack written again reads back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::pack::{self, PackScanner, PackWriter};

fuzz_target!(|data: &[u8]| {
    let _ = pack::decode_index(data);
    let Some((&cut, body)) = data.split_first() else { return };
    let whole = pack::parse_pack(body);

    // The same bytes in two pieces, the first ending anywhere.
    let cut = (cut as usize * body.len() / 255).min(body.len());
    let mut scanner = PackScanner::default();
    let mut entries = Vec::new();
    let streamed = (|| {
        let used = scanner.scan(&body[..cut], &mut entries)?;
        let used = used + scanner.scan(&body[used..], &mut entries)?;
        scanner.finish(body.len() - used, &entries)?;
        Ok::<_, pack::PackError>(())
    })();
    match (&whole, streamed) {
        (Ok(w), Ok(())) => assert_eq!(w, &entries),
        (Err(_), Err(_)) => {}
        (w, s) => panic!("whole: {w:?}, streamed: {s:?}"),
    }

    if let Ok(entries) = whole {
        let mut writer = PackWriter::new();
        for e in &entries {
            writer.push(&e.chunk(), &body[e.range().start as usize..e.range().end as usize]);
        }
        let again = writer.finish();
        assert_eq!(pack::parse_pack(&again).expect("a written pack reads"), entries);
    }
});
