//! A small JSON value with the exact text form of CRIU's `crit`.
//!
//! `crit decode` prints with Python's `json.dump(obj, indent=4)` (or no
//! indent without `--pretty`), which escapes every non-ASCII character,
//! keeps keys in message-field order and writes integers of any size. Our
//! writer reproduces that byte for byte so that the two tools' output can be
//! compared with `diff`. The parser accepts any standard JSON.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// Wide enough for every protobuf integer, signed or not.
    Int(i128),
    Str(String),
    Arr(Vec<Json>),
    /// Keys in insertion order, as Python's dicts keep them.
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "a list",
            Json::Obj(_) => "an object",
        }
    }

    /// Python's `json.dumps(v, indent=4)` when `pretty`, else `json.dumps(v)`.
    pub fn to_text(&self, pretty: bool) -> String {
        let mut s = String::new();
        self.write(&mut s, pretty, 0);
        s
    }

    fn write(&self, out: &mut String, pretty: bool, level: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Str(s) => write_str(out, s),
            Json::Arr(a) => {
                if a.is_empty() {
                    out.push_str("[]");
                    return;
                }
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    sep(out, pretty, level + 1, i == 0);
                    v.write(out, pretty, level + 1);
                }
                close(out, pretty, level);
                out.push(']');
            }
            Json::Obj(kv) => {
                if kv.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    sep(out, pretty, level + 1, i == 0);
                    write_str(out, k);
                    out.push_str(": ");
                    v.write(out, pretty, level + 1);
                }
                close(out, pretty, level);
                out.push('}');
            }
        }
    }

    /// Parse JSON text. Nesting is capped so hostile input cannot exhaust
    /// the stack.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser { s: text.as_bytes(), pos: 0 };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(p.err("trailing characters after the JSON value"));
        }
        Ok(v)
    }
}

fn sep(out: &mut String, pretty: bool, level: usize, first: bool) {
    if !first {
        out.push(',');
        if !pretty {
            out.push(' ');
        }
    }
    if pretty {
        out.push('\n');
        for _ in 0..level * 4 {
            out.push(' ');
        }
    }
}

fn close(out: &mut String, pretty: bool, level: usize) {
    if pretty {
        out.push('\n');
        for _ in 0..level * 4 {
            out.push(' ');
        }
    }
}

/// Python's `ensure_ascii` string form.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

const MAX_JSON_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let line = self.s[..self.pos.min(self.s.len())].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("{what} at line {line} (byte {})", self.pos)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.err("JSON nested too deeply"));
        }
        match self.s.get(self.pos) {
            None => Err(self.err("unexpected end of JSON")),
            Some(b'{') => {
                self.pos += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Obj(kv));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return Err(self.err("expected ':'"));
                    }
                    self.ws();
                    let v = self.value(depth + 1)?;
                    kv.push((k, v));
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        return Ok(Json::Obj(kv));
                    }
                    return Err(self.err("expected ',' or '}'"));
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Arr(a));
                }
                loop {
                    self.ws();
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("]") {
                        return Ok(Json::Arr(a));
                    }
                    return Err(self.err("expected ',' or ']'"));
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                if self.s[self.pos] == b'-' {
                    self.pos += 1;
                }
                while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                    self.pos += 1;
                }
                if let Some(b'.' | b'e' | b'E') = self.s.get(self.pos) {
                    return Err(self.err("fractional numbers do not occur in images"));
                }
                let t = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                t.parse::<i128>().map(Json::Int).map_err(|_| self.err("bad number"))
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.pos..self.pos + 4).ok_or_else(|| self.err("short \\u escape"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err("invalid UTF-8"))?,
            );
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xd800..0xdc00).contains(&c) && self.eat("\\u") {
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                                }
                            }
                            out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
}

/// `base64.encodebytes`: standard alphabet, a newline after every 76
/// characters and at the end (nothing at all for empty input).
pub fn base64_lines(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for line in data.chunks(57) {
        for c in line.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            out.push(A[(n >> 18) as usize & 63] as char);
            out.push(A[(n >> 12) as usize & 63] as char);
            out.push(if c.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
            out.push(if c.len() > 2 { A[n as usize & 63] as char } else { '=' });
        }
        out.push('\n');
    }
    out
}

/// `base64.decodebytes`: whitespace and other non-alphabet bytes are skipped.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut n = 0;
    let mut pad = 0;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            _ => continue,
        };
        if pad > 0 {
            return Err("base64 data after padding".into());
        }
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        0 => {}
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return Err("base64 data of impossible length".into()),
    }
    Ok(out)
}

/// Python's `quopri.encodestring` (binascii.b2a_qp, text mode), which crit
/// uses for unix socket names so that abstract names (leading NUL) print.
pub fn quopri_encode(data: &[u8]) -> String {
    const MAXLINE: usize = 76;
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Line ends are CRLF if the first newline in the data is preceded by CR.
    let crlf = data
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|i| i > 0 && data[i - 1] == b'\r');
    let mut out: Vec<u8> = Vec::with_capacity(data.len() * 3);
    let mut linelen = 0;
    let mut i = 0;
    let soft_break = |out: &mut Vec<u8>| {
        out.push(b'=');
        if crlf {
            out.push(b'\r');
        }
        out.push(b'\n');
    };
    while i < data.len() {
        let c = data[i];
        let next = data.get(i + 1).copied();
        let at_end = i + 1 == data.len();
        let needs_quote = c > 126
            || c == b'='
            || (c == b'.' && linelen == 0 && matches!(next, None | Some(b'\n' | b'\r' | 0)))
            || ((c == b'\t' || c == b' ') && at_end)
            || (c < 33 && c != b'\r' && c != b'\n' && c != b'\t' && c != b' ');
        if needs_quote {
            if linelen + 3 >= MAXLINE {
                soft_break(&mut out);
                linelen = 0;
            }
            out.extend_from_slice(&[b'=', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
            linelen += 3;
            i += 1;
        } else if c == b'\n' || (c == b'\r' && next == Some(b'\n')) {
            linelen = 0;
            if let Some(&last @ (b' ' | b'\t')) = out.last() {
                out.pop();
                out.extend_from_slice(&[b'=', HEX[(last >> 4) as usize], HEX[(last & 15) as usize]]);
            }
            if crlf {
                out.push(b'\r');
            }
            out.push(b'\n');
            i += if c == b'\r' { 2 } else { 1 };
        } else {
            if !at_end && next != Some(b'\n') && linelen + 1 >= MAXLINE {
                soft_break(&mut out);
                linelen = 0;
            }
            linelen += 1;
            out.push(c);
            i += 1;
        }
    }
    // Every byte pushed is ASCII.
    out.into_iter().map(char::from).collect()
}

/// Python's `quopri.decodestring`.
pub fn quopri_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hexval = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|&c| hexval(c)), b.get(i + 2).and_then(|&c| hexval(c)))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_pretty_layout() {
        let v = Json::Obj(vec![
            ("a".into(), Json::Int(1)),
            ("b".into(), Json::Arr(vec![Json::Int(2), Json::Str("x\u{e9}\u{1F600}\"".into())])),
            ("c".into(), Json::Obj(vec![])),
            ("d".into(), Json::Arr(vec![])),
        ]);
        assert_eq!(
            v.to_text(true),
            "{\n    \"a\": 1,\n    \"b\": [\n        2,\n        \"x\\u00e9\\ud83d\\ude00\\\"\"\n    ],\n    \"c\": {},\n    \"d\": []\n}"
        );
        assert_eq!(v.to_text(false), "{\"a\": 1, \"b\": [2, \"x\\u00e9\\ud83d\\ude00\\\"\"], \"c\": {}, \"d\": []}");
        assert_eq!(Json::parse(&v.to_text(true)).unwrap(), v);
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in ["", "{", "[1,", "{\"a\" 1}", "1.5", "\"\\x\"", "[1] x", &"[".repeat(100)] {
            assert!(Json::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_matches_python_encodebytes() {
        assert_eq!(base64_lines(b""), "");
        assert_eq!(base64_lines(b"hello"), "aGVsbG8=\n");
        let data: Vec<u8> = (0..=255u8).cycle().take(130).collect();
        let enc = base64_lines(&data);
        let lines: Vec<&str> = enc.lines().collect();
        assert_eq!(lines[0].len(), 76);
        assert_eq!(lines.len(), 3);
        assert_eq!(base64_decode(&enc).unwrap(), data);
    }

    #[test]
    fn quopri_matches_python() {
        // Values printed by CPython 3.11 quopri.encodestring.
        assert_eq!(quopri_encode(b""), "");
        assert_eq!(quopri_encode(b"\0abc"), "=00abc");
        assert_eq!(quopri_encode(b"/tmp/a=b sock "), "/tmp/a=3Db sock=20");
        assert_eq!(quopri_encode(b"\xff\t."), "=FF\t.");
        let long = vec![b'a'; 100];
        let enc = quopri_encode(&long);
        assert_eq!(enc, format!("{}=\n{}", "a".repeat(75), "a".repeat(25)));
        for sample in [&b"\0abc"[..], b"/tmp/a=b sock ", &long, b"a\nb \nc"] {
            assert_eq!(quopri_decode(&quopri_encode(sample)), sample);
        }
    }
}
