//! Whole images to and from crit's JSON form (`{"magic": ..., "entries": [...]}`).

use crate::file::{header_bytes, ImageError, ImageReader};
use crate::json::Json;
use crate::kinds::kind_by_name;
use std::path::Path;

/// `crit decode`: the image at `path` as JSON.
pub fn decode(path: &Path, pretty: bool) -> Result<Json, ImageError> {
    let mut r = ImageReader::open(path)?;
    decode_reader(&mut r, pretty)
}

pub fn decode_reader(r: &mut ImageReader, pretty: bool) -> Result<Json, ImageError> {
    let kind = r.kind();
    let entries = kind.codec.to_json(r, pretty)?;
    Ok(Json::Obj(vec![("magic".into(), Json::Str(kind.name.into())), ("entries".into(), Json::Arr(entries))]))
}

/// `crit encode`: the binary image for a JSON document.
pub fn encode(doc: &Json) -> Result<Vec<u8>, String> {
    let magic = doc.get("magic").and_then(Json::as_str).ok_or("the JSON has no \"magic\" string")?;
    let kind = kind_by_name(magic).ok_or_else(|| format!("unknown image type {magic:?}"))?;
    let entries = doc.get("entries").and_then(Json::as_array).ok_or("the JSON has no \"entries\" list")?;
    let mut out = header_bytes(kind);
    kind.codec.from_json(entries, &mut out)?;
    Ok(out)
}

/// `crit info`: the type and number of entries.
pub fn info(path: &Path) -> Result<(String, usize), ImageError> {
    let mut r = ImageReader::open(path)?;
    let kind = r.kind();
    let n = kind.codec.to_json(&mut r, false)?.len();
    let n = if kind.name == "PAGEMAP" { n.saturating_sub(1) } else { n };
    Ok((kind.name.to_string(), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/criu-4.2")
    }

    fn each_vector(mut f: impl FnMut(&Path, &Path)) -> usize {
        let mut n = 0;
        for dir in std::fs::read_dir(vectors()).expect("vectors directory") {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                if name.ends_with(".json") || name.starts_with("pages-") {
                    continue;
                }
                let j = dir.join(format!("{name}.json"));
                f(&p, &j);
                n += 1;
            }
        }
        n
    }

    #[test]
    fn decode_prints_what_crit_4_2_printed() {
        let n = each_vector(|img, json| {
            let want = std::fs::read_to_string(json).unwrap();
            let got = decode(img, true).unwrap_or_else(|e| panic!("{e}")).to_text(true);
            if got != want {
                let line = got.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
                panic!(
                    "{}: differs at line {}:\n ours: {:?}\ncrit's: {:?}",
                    img.display(),
                    line + 1,
                    got.lines().nth(line),
                    want.lines().nth(line)
                );
            }
        });
        assert!(n >= 40, "only {n} vector images found");
    }

    #[test]
    fn encode_gives_back_the_image_byte_for_byte() {
        each_vector(|img, json| {
            let doc = Json::parse(&std::fs::read_to_string(json).unwrap()).unwrap();
            let bytes = encode(&doc).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            assert!(bytes == std::fs::read(img).unwrap(), "{}: encoded bytes differ", img.display());
        });
    }

    #[test]
    fn raw_json_round_trips_too() {
        each_vector(|img, _| {
            let doc = decode(img, false).unwrap();
            let text = doc.to_text(false);
            let again = encode(&Json::parse(&text).unwrap()).unwrap();
            assert!(again == std::fs::read(img).unwrap(), "{}", img.display());
        });
    }
}
