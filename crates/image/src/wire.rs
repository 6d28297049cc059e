//! Protocol-buffer wire format: varints, keys, length-delimited fields.
//!
//! Only what CRIU's messages use: proto2, no groups, no packed fields, no
//! floating point. Decoding never trusts a length: every length is checked
//! against the bytes that remain before anything is sliced or allocated.

use std::fmt;

/// The four wire types CRIU messages can carry (groups are refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn from_bits(b: u64) -> Option<Self> {
        match b {
            0 => Some(Self::Varint),
            1 => Some(Self::Fixed64),
            2 => Some(Self::Len),
            5 => Some(Self::Fixed32),
            _ => None,
        }
    }

    fn bits(self) -> u32 {
        match self {
            Self::Varint => 0,
            Self::Fixed64 => 1,
            Self::Len => 2,
            Self::Fixed32 => 5,
        }
    }
}

/// What went wrong while decoding one message. The position is relative
/// to the start of the outermost message being decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub pos: usize,
    pub what: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (message byte {})", self.what, self.pos)
    }
}

impl std::error::Error for WireError {}

/// A cursor over one encoded message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` inside the outermost message, for error positions.
    base: usize,
    depth: u32,
}

/// Nesting deeper than this is refused: CRIU's messages nest four levels at
/// most, so anything deeper is garbage and must not exhaust the stack.
const MAX_DEPTH: u32 = 32;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, base: 0, depth: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn err(&self, what: impl Into<String>) -> WireError {
        WireError { pos: self.base + self.pos, what: what.into() }
    }

    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    pub fn fixed32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!(
                "field of {n} bytes runs past the end of the message ({} left)",
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The payload of a length-delimited field.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length does not fit in memory"))?;
        self.take(n)
    }

    /// A reader over a nested message.
    pub fn nested(&mut self) -> Result<Reader<'a>, WireError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err("messages nested too deeply"));
        }
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length does not fit in memory"))?;
        let start = self.base + self.pos;
        let buf = self.take(n)?;
        Ok(Reader { buf, pos: 0, base: start, depth: self.depth + 1 })
    }

    /// The next field key, or `None` at the end of the message.
    pub fn key(&mut self) -> Result<Option<(u32, WireType)>, WireError> {
        if self.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        let tag = k >> 3;
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(self.err(format!("invalid field number {tag}")));
        }
        let wt = WireType::from_bits(k & 7)
            .ok_or_else(|| self.err(format!("unsupported wire type {} for field {tag}", k & 7)))?;
        Ok(Some((tag as u32, wt)))
    }

    /// Skip a field this version does not know.
    pub fn skip(&mut self, wt: WireType) -> Result<(), WireError> {
        match wt {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
            WireType::Len => self.bytes().map(drop),
        }
    }

    /// Check the wire type of a known field.
    pub fn expect(&self, tag: u32, got: WireType, want: WireType) -> Result<(), WireError> {
        if got == want {
            Ok(())
        } else {
            Err(self.err(format!("field {tag} has wire type {got:?}, expected {want:?}")))
        }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, tag: u32, wt: WireType) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wt.bits()));
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

pub fn unzigzag32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

pub fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
    }

    #[test]
    fn overlong_varint_is_refused() {
        let b = [0xffu8; 11];
        assert!(Reader::new(&b).varint().is_err());
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&b).varint().is_err());
    }

    #[test]
    fn length_past_end_is_refused() {
        let b = [0x0a, 0x05, 1, 2];
        let mut r = Reader::new(&b);
        assert_eq!(r.key().unwrap(), Some((1, WireType::Len)));
        let e = r.bytes().unwrap_err();
        assert!(e.what.contains("past the end"), "{e}");
    }

    #[test]
    fn zigzag() {
        for v in [0i32, -1, 1, i32::MIN, i32::MAX] {
            assert_eq!(unzigzag32(zigzag32(v)), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag64(zigzag64(v)), v);
        }
        assert_eq!(zigzag32(-1), 1);
        assert_eq!(zigzag32(1), 2);
    }
}
