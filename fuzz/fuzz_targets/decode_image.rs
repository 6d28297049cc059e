//! Any bytes, read as an image of any kind and printed as JSON, must give
//! either a result or an error, never a panic or a runaway allocation; what
//! decodes must encode back to the same JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stasis_image::convert::{decode_reader, encode};
use stasis_image::file::ImageReader;
use stasis_image::json::Json;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = ImageReader::from_bytes(Path::new("fuzz.img"), data.to_vec()) else {
        return;
    };
    let Ok(doc) = decode_reader(&mut r, true) else {
        return;
    };
    let bytes = encode(&doc).expect("what decodes must encode");
    let mut r2 = ImageReader::from_bytes(Path::new("again.img"), bytes).expect("re-encoded header");
    let again: Json = decode_reader(&mut r2, true).expect("re-encoded image decodes");
    assert_eq!(doc, again);
});
