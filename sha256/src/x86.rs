//! Two SHA-256 compressions interleaved with the x86 SHA extensions (SHA-NI): the rounds of
//! message A and message B alternate, so each `sha256rnds2` of one runs while the other's
//! waits for its result. The state is kept as the extensions want it (ABEF and CDGH words);
//! the message schedule is `sha256msg1`/`sha256msg2`, four words at a time.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_loadu_si128, _mm_set_epi64x, _mm_sha256msg1_epu32,
    _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi8, _mm_shuffle_epi32, _mm_storeu_si128,
};

/// The round constants, four to a vector.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// Whether this CPU has what [`compress_pair`] runs on (checked once, then cached by std).
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("sha")
        && std::is_x86_feature_detected!("sse2")
        && std::is_x86_feature_detected!("ssse3")
        && std::is_x86_feature_detected!("sse4.1")
}

/// Compresses the blocks of `a` into `sa` and those of `b` into `sb`, interleaved. Both are
/// whole blocks, as many of each.
pub(crate) fn compress_pair(sa: &mut [u32; 8], a: &[u8], sb: &mut [u32; 8], b: &[u8]) {
    assert!(
        a.len() == b.len() && a.len().is_multiple_of(64),
        "whole blocks, as many of each"
    );
    assert!(available(), "SHA extensions");
    // SAFETY: the CPU has the features `kernel` is compiled for (checked above), and it
    // reads 64 bytes per block from each slice, which holds that many blocks.
    unsafe { kernel(sa, a.as_ptr(), sb, b.as_ptr(), a.len() / 64) }
}

/// The state words ABCD EFGH as the extensions keep them: (ABEF, CDGH).
#[inline(always)]
unsafe fn load(h: &[u32; 8]) -> (__m128i, __m128i) {
    // SAFETY (for the block): unaligned loads of the 32 bytes `h` holds.
    unsafe {
        let abcd = _mm_loadu_si128(h.as_ptr().cast());
        let efgh = _mm_loadu_si128(h.as_ptr().add(4).cast());
        let cdab = _mm_shuffle_epi32(abcd, 0xB1);
        let hgfe = _mm_shuffle_epi32(efgh, 0x1B);
        (_mm_alignr_epi8(cdab, hgfe, 8), _mm_blend_epi16(hgfe, cdab, 0xF0))
    }
}

/// Back from (ABEF, CDGH) to ABCD EFGH.
#[inline(always)]
unsafe fn store(abef: __m128i, cdgh: __m128i, h: &mut [u32; 8]) {
    // SAFETY (for the block): unaligned stores of the 32 bytes `h` holds.
    unsafe {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        _mm_storeu_si128(h.as_mut_ptr().cast(), _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128(h.as_mut_ptr().add(4).cast(), _mm_alignr_epi8(dchg, feba, 8));
    }
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn kernel(sa: &mut [u32; 8], mut pa: *const u8, sb: &mut [u32; 8], mut pb: *const u8, blocks: usize) {
    // Message bytes are big-endian words.
    let swap = _mm_set_epi64x(0x0c0d0e0f08090a0b, 0x0405060700010203);
    // SAFETY (for the block): `pa` and `pb` each point to `blocks` blocks (the caller's
    // promise); every load below is within them.
    unsafe {
        let (mut a0, mut a1) = load(sa);
        let (mut b0, mut b1) = load(sb);
        for _ in 0..blocks {
            let (save_a0, save_a1, save_b0, save_b1) = (a0, a1, b0, b1);
            let word = |p: *const u8, i: usize| _mm_shuffle_epi8(_mm_loadu_si128(p.add(16 * i).cast()), swap);
            let (mut am0, mut am1, mut am2, mut am3) = (word(pa, 0), word(pa, 1), word(pa, 2), word(pa, 3));
            let (mut bm0, mut bm1, mut bm2, mut bm3) = (word(pb, 0), word(pb, 1), word(pb, 2), word(pb, 3));
            // Four rounds of each message with words `$x0`/`$y0` (W[4i..4i+4]).
            macro_rules! rounds {
                ($i:expr, $x0:ident, $y0:ident) => {{
                    let k = _mm_loadu_si128(K.as_ptr().add(4 * $i).cast());
                    let ta = _mm_add_epi32($x0, k);
                    let tb = _mm_add_epi32($y0, k);
                    a1 = _mm_sha256rnds2_epu32(a1, a0, ta);
                    b1 = _mm_sha256rnds2_epu32(b1, b0, tb);
                    a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(ta, 0x0E));
                    b0 = _mm_sha256rnds2_epu32(b0, b1, _mm_shuffle_epi32(tb, 0x0E));
                }};
            }
            // Then, while more are needed, those words become W[4i+16..4i+20], from them
            // and the three after them.
            macro_rules! schedule {
                ($x0:ident, $x1:ident, $x2:ident, $x3:ident) => {
                    $x0 = _mm_sha256msg2_epu32(
                        _mm_add_epi32(_mm_sha256msg1_epu32($x0, $x1), _mm_alignr_epi8($x3, $x2, 4)),
                        $x3,
                    )
                };
            }
            macro_rules! rounds_and_schedule {
                ($i:expr, $x0:ident, $x1:ident, $x2:ident, $x3:ident, $y0:ident, $y1:ident, $y2:ident, $y3:ident) => {{
                    rounds!($i, $x0, $y0);
                    schedule!($x0, $x1, $x2, $x3);
                    schedule!($y0, $y1, $y2, $y3);
                }};
            }
            rounds_and_schedule!(0, am0, am1, am2, am3, bm0, bm1, bm2, bm3);
            rounds_and_schedule!(1, am1, am2, am3, am0, bm1, bm2, bm3, bm0);
            rounds_and_schedule!(2, am2, am3, am0, am1, bm2, bm3, bm0, bm1);
            rounds_and_schedule!(3, am3, am0, am1, am2, bm3, bm0, bm1, bm2);
            rounds_and_schedule!(4, am0, am1, am2, am3, bm0, bm1, bm2, bm3);
            rounds_and_schedule!(5, am1, am2, am3, am0, bm1, bm2, bm3, bm0);
            rounds_and_schedule!(6, am2, am3, am0, am1, bm2, bm3, bm0, bm1);
            rounds_and_schedule!(7, am3, am0, am1, am2, bm3, bm0, bm1, bm2);
            rounds_and_schedule!(8, am0, am1, am2, am3, bm0, bm1, bm2, bm3);
            rounds_and_schedule!(9, am1, am2, am3, am0, bm1, bm2, bm3, bm0);
            rounds_and_schedule!(10, am2, am3, am0, am1, bm2, bm3, bm0, bm1);
            rounds_and_schedule!(11, am3, am0, am1, am2, bm3, bm0, bm1, bm2);
            rounds!(12, am0, bm0);
            rounds!(13, am1, bm1);
            rounds!(14, am2, bm2);
            rounds!(15, am3, bm3);
            a0 = _mm_add_epi32(a0, save_a0);
            a1 = _mm_add_epi32(a1, save_a1);
            b0 = _mm_add_epi32(b0, save_b0);
            b1 = _mm_add_epi32(b1, save_b1);
            pa = pa.add(64);
            pb = pb.add(64);
        }
        store(a0, a1, sa);
        store(b0, b1, sb);
    }
}
