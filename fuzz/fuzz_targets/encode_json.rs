//! Any text, parsed as JSON and encoded as an image, must give a result or
//! an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stasis_image::convert::encode;
use stasis_image::json::Json;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(doc) = Json::parse(text) {
            let _ = encode(&doc);
        }
    }
});
