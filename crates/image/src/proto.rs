//! Typed protobuf messages with crit-compatible JSON, from one declaration.
//!
//! Each message is declared once with [`message!`]: field numbers, labels,
//! protobuf types and crit's display options (`hex`, `flags`, `dev`, ...).
//! The macro produces a plain Rust struct (required fields as values,
//! optional ones as `Option`, repeated ones as `Vec`) together with its wire
//! encoder and decoder and its JSON form. Encoding writes fields in field
//! number order, as protobuf-c and Python's protobuf do, so an image decoded
//! and encoded again is byte-identical. Unknown fields are skipped on decode.

use crate::json::{base64_decode, base64_lines, quopri_decode, quopri_encode, Json};
use crate::wire::{self, put_bytes, put_key, put_varint, Reader, WireError, WireType};
use std::fmt::Debug;
use std::marker::PhantomData;

/// How crit prints one field (the `(criu)` options of CRIU's `.proto` files).
#[derive(Clone, Copy, Debug, Default)]
pub struct FieldOpts {
    pub hex: bool,
    pub ipadd: bool,
    pub dev: bool,
    pub odev: bool,
    pub flags: Option<&'static str>,
    pub dict: Option<&'static str>,
    pub unix_name: bool,
}

impl FieldOpts {
    pub const NONE: FieldOpts =
        FieldOpts { hex: false, ipadd: false, dev: false, odev: false, flags: None, dict: None, unix_name: false };
    pub const fn hex(mut self) -> Self {
        self.hex = true;
        self
    }
    pub const fn ipadd(mut self) -> Self {
        self.ipadd = true;
        self
    }
    pub const fn dev(mut self) -> Self {
        self.dev = true;
        self
    }
    pub const fn odev(mut self) -> Self {
        self.odev = true;
        self
    }
    pub const fn flags(mut self, map: &'static str) -> Self {
        self.flags = Some(map);
        self
    }
    pub const fn dict(mut self, map: &'static str) -> Self {
        self.dict = Some(map);
        self
    }
    pub const fn unix_name(mut self) -> Self {
        self.unix_name = true;
        self
    }
}

/// Context for printing one value: its field's options, its name (crit's
/// dict maps are keyed by field name), whether a hex marking is inherited
/// from an enclosing field, and whether `--pretty` is on.
#[derive(Clone, Copy)]
pub struct Show<'a> {
    pub opts: &'a FieldOpts,
    pub name: &'static str,
    pub hex: bool,
    pub pretty: bool,
}

/// A protobuf message.
pub trait Message: Default + Clone + Debug + PartialEq {
    const NAME: &'static str;

    /// Append the fields (without any length prefix).
    fn encode_to(&self, out: &mut Vec<u8>);

    /// Decode one message that occupies all of `r`.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// crit's `pb2dict`. `hex` is inherited from an enclosing hex field.
    fn to_json(&self, pretty: bool, hex: bool) -> Json;

    /// crit's `dict2pb`.
    fn from_json(j: &Json) -> Result<Self, String>;

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_to(&mut v);
        v
    }

    fn decode(buf: &[u8]) -> Result<Self, WireError> {
        Self::decode_from(&mut Reader::new(buf))
    }
}

/// A protobuf enum: its value names, for JSON.
pub trait ProtoEnum {
    const VALUES: &'static [(&'static str, i32)];

    fn name_of(v: i32) -> Option<&'static str> {
        Self::VALUES.iter().find(|(_, n)| *n == v).map(|(s, _)| *s)
    }
}

/// One protobuf field type: how a value travels on the wire and prints.
pub trait Kind {
    type T: Clone + Debug + Default + PartialEq;
    const WIRE: WireType;
    fn put(v: &Self::T, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'_>) -> Result<Self::T, WireError>;
    fn show(v: &Self::T, s: Show<'_>) -> Json;
    fn parse(j: &Json, s: Show<'_>) -> Result<Self::T, String>;

    fn show_repeated(v: &[Self::T], s: Show<'_>) -> Json {
        Json::Arr(v.iter().map(|x| Self::show(x, s)).collect())
    }

    /// The values as 32-bit words, for fields that can hold addresses.
    fn as_words(_v: &[Self::T]) -> Option<&[u32]> {
        None
    }

    fn from_words(_w: Vec<u32>) -> Option<Vec<Self::T>> {
        None
    }

    fn parse_repeated(j: &Json, s: Show<'_>) -> Result<Vec<Self::T>, String> {
        let a = j.as_array().ok_or_else(|| format!("{}: expected a list, found {}", s.name, j.kind()))?;
        a.iter().map(|x| Self::parse(x, s)).collect()
    }
}

// --- field helpers used by the macro ------------------------------------

pub fn put_field<K: Kind>(tag: u32, v: &K::T, out: &mut Vec<u8>) {
    put_key(out, tag, K::WIRE);
    K::put(v, out);
}

pub fn get_field<K: Kind>(r: &mut Reader<'_>, tag: u32, wt: WireType) -> Result<K::T, WireError> {
    r.expect(tag, wt, K::WIRE)?;
    K::get(r)
}

pub fn missing(r: &Reader<'_>, msg: &str, field: &str) -> WireError {
    r.err(format!("{msg}: required field {field} is missing"))
}

/// The protobuf name of a field whose Rust name is a raw identifier.
pub fn json_name(rust: &'static str) -> &'static str {
    rust.strip_prefix("r#").unwrap_or(rust)
}

pub fn json_obj(j: &Json, msg: &str) -> Result<(), String> {
    match j {
        Json::Obj(_) => Ok(()),
        _ => Err(format!("{msg}: expected an object, found {}", j.kind())),
    }
}

// --- integer kinds ------------------------------------------------------

fn show_int(v: i128, s: Show<'_>) -> Json {
    if s.pretty {
        if s.hex || s.opts.hex {
            return Json::Str(hex_str(v));
        }
        if s.opts.dev {
            return Json::Str(dev_str(v as u64, s.opts.odev));
        }
        if let Some(map) = s.opts.flags {
            return Json::Str(match flag_map(map) {
                Some(m) => flags_str(v as u64, m),
                None => hex_str(v),
            });
        }
        if let Some(d) = s.opts.dict {
            if let Some(name) = dict_name(d, s.name, v) {
                return Json::Str(name.into());
            }
        }
    }
    Json::Int(v)
}

fn hex_str(v: i128) -> String {
    if v < 0 {
        format!("-0x{:x}", -v)
    } else {
        format!("0x{v:x}")
    }
}

fn parse_int(j: &Json, s: Show<'_>) -> Result<i128, String> {
    match j {
        Json::Int(i) => Ok(*i),
        Json::Bool(b) => Ok(i128::from(*b)),
        Json::Str(t) => {
            if s.opts.dev {
                return parse_dev(t, s.opts.odev).ok_or_else(|| format!("{}: bad device number {t:?}", s.name));
            }
            if let Some(m) = s.opts.flags.and_then(flag_map) {
                return parse_flags(t, m).ok_or_else(|| format!("{}: bad flags {t:?}", s.name));
            }
            if let Some(d) = s.opts.dict {
                if let Some(v) = dict_value(d, s.name, t) {
                    return Ok(v);
                }
            }
            parse_int_str(t).ok_or_else(|| format!("{}: bad number {t:?}", s.name))
        }
        _ => Err(format!("{}: expected a number, found {}", s.name, j.kind())),
    }
}

/// Python's `int(s, 0)`: decimal, 0x hex, 0o octal, 0b binary, a sign,
/// and underscores between digits.
fn parse_int_str(t: &str) -> Option<i128> {
    let t = t.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r)
    } else {
        (10, lower.as_str())
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn range_err(name: &str, v: i128) -> String {
    format!("{name}: value {v} is out of range")
}

macro_rules! varint_kind {
    ($kind:ident, $t:ty, |$v:ident| $enc:expr, |$w:ident| $dec:expr $(, $extra:item)*) => {
        pub struct $kind;
        impl Kind for $kind {
            type T = $t;
            const WIRE: WireType = WireType::Varint;
            fn put($v: &$t, out: &mut Vec<u8>) {
                put_varint(out, $enc);
            }
            fn get(r: &mut Reader<'_>) -> Result<$t, WireError> {
                let $w = r.varint()?;
                Ok($dec)
            }
            fn show(v: &$t, s: Show<'_>) -> Json {
                show_int(i128::from(*v), s)
            }
            fn parse(j: &Json, s: Show<'_>) -> Result<$t, String> {
                let v = parse_int(j, s)?;
                <$t>::try_from(v).map_err(|_| range_err(s.name, v))
            }
            $($extra)*
        }
    };
}

varint_kind!(
    Uint32,
    u32,
    |v| u64::from(*v),
    |w| w as u32,
    fn as_words(v: &[u32]) -> Option<&[u32]> {
        Some(v)
    },
    fn from_words(w: Vec<u32>) -> Option<Vec<u32>> {
        Some(w)
    }
);
varint_kind!(Uint64, u64, |v| *v, |w| w);
varint_kind!(Int32, i32, |v| *v as i64 as u64, |w| w as i32);
varint_kind!(Int64, i64, |v| *v as u64, |w| w as i64);
varint_kind!(Sint32, i32, |v| wire::zigzag32(*v), |w| wire::unzigzag32(w));
varint_kind!(Sint64, i64, |v| wire::zigzag64(*v), |w| wire::unzigzag64(w));

pub struct Fixed32;
impl Kind for Fixed32 {
    type T = u32;
    const WIRE: WireType = WireType::Fixed32;
    fn put(v: &u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<u32, WireError> {
        r.fixed32()
    }
    fn show(v: &u32, s: Show<'_>) -> Json {
        show_int(i128::from(*v), s)
    }
    fn parse(j: &Json, s: Show<'_>) -> Result<u32, String> {
        let v = parse_int(j, s)?;
        u32::try_from(v).map_err(|_| range_err(s.name, v))
    }
}

pub struct Fixed64;
impl Kind for Fixed64 {
    type T = u64;
    const WIRE: WireType = WireType::Fixed64;
    fn put(v: &u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<u64, WireError> {
        r.fixed64()
    }
    fn show(v: &u64, s: Show<'_>) -> Json {
        show_int(i128::from(*v), s)
    }
    fn parse(j: &Json, s: Show<'_>) -> Result<u64, String> {
        let v = parse_int(j, s)?;
        u64::try_from(v).map_err(|_| range_err(s.name, v))
    }
}

pub struct Bool;
impl Kind for Bool {
    type T = bool;
    const WIRE: WireType = WireType::Varint;
    fn put(v: &bool, out: &mut Vec<u8>) {
        put_varint(out, u64::from(*v));
    }
    fn get(r: &mut Reader<'_>) -> Result<bool, WireError> {
        Ok(r.varint()? != 0)
    }
    fn show(v: &bool, _: Show<'_>) -> Json {
        Json::Bool(*v)
    }
    fn parse(j: &Json, s: Show<'_>) -> Result<bool, String> {
        match j {
            Json::Bool(b) => Ok(*b),
            Json::Int(i) => Ok(*i != 0),
            _ => Err(format!("{}: expected a boolean, found {}", s.name, j.kind())),
        }
    }
}

/// `uint32` lists marked `ipadd` print as one address (IPv4 for one word,
/// IPv6 for four), each word in network byte order as CRIU stores it.
impl Uint32 {
    fn show_ip(v: &[u32]) -> Json {
        let text = if v.len() == 1 {
            std::net::Ipv4Addr::from(u32::from_be(v[0])).to_string()
        } else {
            let mut n: u128 = 0;
            for (i, w) in v.iter().take(4).enumerate() {
                n |= u128::from(u32::from_be(*w)) << (32 * (3 - i));
            }
            std::net::Ipv6Addr::from(n).to_string()
        };
        Json::Arr(vec![Json::Str(text)])
    }
}

/// Repeated-field printing with the `ipadd` special case.
pub fn show_repeated<K: Kind>(v: &[K::T], s: Show<'_>) -> Json {
    if s.pretty && s.opts.ipadd {
        if let Some(words) = K::as_words(v) {
            return Uint32::show_ip(words);
        }
    }
    K::show_repeated(v, s)
}

pub fn parse_repeated<K: Kind>(j: &Json, s: Show<'_>) -> Result<Vec<K::T>, String> {
    if s.opts.ipadd {
        if let Some(Json::Str(t)) = j.as_array().and_then(|a| a.first()) {
            let ip: std::net::IpAddr = t.parse().map_err(|_| format!("{}: bad address {t:?}", s.name))?;
            let words: Vec<u32> = match ip {
                std::net::IpAddr::V4(a) => vec![u32::from(a).to_be()],
                std::net::IpAddr::V6(a) => {
                    let n = u128::from(a);
                    (0..4).map(|i| ((n >> (32 * (3 - i))) as u32).to_be()).collect()
                }
            };
            return K::from_words(words).ok_or_else(|| format!("{}: address option on a non-uint32 field", s.name));
        }
    }
    K::parse_repeated(j, s)
}

// --- strings and bytes --------------------------------------------------

pub struct Str;
impl Kind for Str {
    type T = String;
    const WIRE: WireType = WireType::Len;
    fn put(v: &String, out: &mut Vec<u8>) {
        put_bytes(out, v.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<String, WireError> {
        let b = r.bytes()?;
        // Paths from the kernel need not be UTF-8; keep them readable
        // rather than failing the whole image.
        Ok(String::from_utf8_lossy(b).into_owned())
    }
    fn show(v: &String, _: Show<'_>) -> Json {
        Json::Str(v.clone())
    }
    fn parse(j: &Json, s: Show<'_>) -> Result<String, String> {
        j.as_str().map(str::to_owned).ok_or_else(|| format!("{}: expected a string, found {}", s.name, j.kind()))
    }
}

pub struct Bytes;
impl Kind for Bytes {
    type T = Vec<u8>;
    const WIRE: WireType = WireType::Len;
    fn put(v: &Vec<u8>, out: &mut Vec<u8>) {
        put_bytes(out, v);
    }
    fn get(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
        Ok(r.bytes()?.to_vec())
    }
    fn show(v: &Vec<u8>, s: Show<'_>) -> Json {
        Json::Str(if s.opts.unix_name { quopri_encode(v) } else { base64_lines(v) })
    }
    fn parse(j: &Json, s: Show<'_>) -> Result<Vec<u8>, String> {
        let t = j.as_str().ok_or_else(|| format!("{}: expected a string, found {}", s.name, j.kind()))?;
        if s.opts.unix_name {
            Ok(quopri_decode(t))
        } else {
            base64_decode(t).map_err(|e| format!("{}: {e}", s.name))
        }
    }
}

// --- enums and nested messages -----------------------------------------

pub struct Enum<E>(PhantomData<E>);
impl<E: ProtoEnum> Kind for Enum<E> {
    type T = i32;
    const WIRE: WireType = WireType::Varint;
    fn put(v: &i32, out: &mut Vec<u8>) {
        put_varint(out, *v as i64 as u64);
    }
    fn get(r: &mut Reader<'_>) -> Result<i32, WireError> {
        Ok(r.varint()? as i32)
    }
    fn show(v: &i32, _: Show<'_>) -> Json {
        match E::name_of(*v) {
            Some(n) => Json::Str(n.into()),
            None => Json::Int(i128::from(*v)),
        }
    }
    fn parse(j: &Json, s: Show<'_>) -> Result<i32, String> {
        match j {
            Json::Str(t) => E::VALUES
                .iter()
                .find(|(n, _)| n == t)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("{}: unknown value {t:?}", s.name)),
            Json::Int(i) => i32::try_from(*i).map_err(|_| range_err(s.name, *i)),
            _ => Err(format!("{}: expected a name, found {}", s.name, j.kind())),
        }
    }
}

pub struct Msg<M>(PhantomData<M>);
impl<M: Message> Kind for Msg<M> {
    type T = M;
    const WIRE: WireType = WireType::Len;
    fn put(v: &M, out: &mut Vec<u8>) {
        let inner = v.encode();
        put_bytes(out, &inner);
    }
    fn get(r: &mut Reader<'_>) -> Result<M, WireError> {
        let mut sub = r.nested()?;
        M::decode_from(&mut sub)
    }
    fn show(v: &M, s: Show<'_>) -> Json {
        v.to_json(s.pretty, s.hex || s.opts.hex)
    }
    fn parse(j: &Json, _: Show<'_>) -> Result<M, String> {
        M::from_json(j)
    }
}

// --- crit's display maps -------------------------------------------------

type FlagMap = &'static [(&'static str, u64)];

const MMAP_PROT: FlagMap = &[("PROT_READ", 0x1), ("PROT_WRITE", 0x2), ("PROT_EXEC", 0x4)];
const MMAP_FLAGS: FlagMap =
    &[("MAP_SHARED", 0x1), ("MAP_PRIVATE", 0x2), ("MAP_DROPPABLE", 0x8), ("MAP_ANON", 0x20), ("MAP_GROWSDOWN", 0x100)];
const MMAP_STATUS: FlagMap = &[
    ("VMA_AREA_NONE", 0),
    ("VMA_AREA_REGULAR", 1 << 0),
    ("VMA_AREA_STACK", 1 << 1),
    ("VMA_AREA_VSYSCALL", 1 << 2),
    ("VMA_AREA_VDSO", 1 << 3),
    ("VMA_AREA_HEAP", 1 << 5),
    ("VMA_FILE_PRIVATE", 1 << 6),
    ("VMA_FILE_SHARED", 1 << 7),
    ("VMA_ANON_SHARED", 1 << 8),
    ("VMA_ANON_PRIVATE", 1 << 9),
    ("VMA_AREA_SYSVIPC", 1 << 10),
    ("VMA_AREA_SOCKET", 1 << 11),
    ("VMA_AREA_VVAR", 1 << 12),
    ("VMA_AREA_AIORING", 1 << 13),
    ("VMA_AREA_MEMFD", 1 << 14),
    ("VMA_AREA_SHSTK", 1 << 15),
    ("VMA_AREA_UPROBES", 1 << 17),
    ("VMA_UNSUPP", 1 << 31),
];
const RFILE_FLAGS: FlagMap = &[
    ("O_WRONLY", 0o1),
    ("O_RDWR", 0o2),
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("FASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
];
const SEALS_FLAGS: FlagMap = &[
    ("F_SEAL_SEAL", 0x1),
    ("F_SEAL_SHRINK", 0x2),
    ("F_SEAL_GROW", 0x4),
    ("F_SEAL_WRITE", 0x8),
    ("F_SEAL_FUTURE_WRITE", 0x10),
];
const PMAP_FLAGS: FlagMap = &[("PE_PARENT", 1), ("PE_LAZY", 2), ("PE_PRESENT", 4)];

fn flag_map(name: &str) -> Option<FlagMap> {
    Some(match name {
        "mmap.prot" => MMAP_PROT,
        "mmap.flags" => MMAP_FLAGS,
        "mmap.status" => MMAP_STATUS,
        "rfile.flags" => RFILE_FLAGS,
        "seals.flags" => SEALS_FLAGS,
        "pmap.flags" => PMAP_FLAGS,
        _ => return None,
    })
}

fn flags_str(v: u64, map: FlagMap) -> String {
    let mut parts: Vec<String> = map.iter().filter(|(_, b)| v & b != 0).map(|(n, _)| (*n).to_string()).collect();
    let known: u64 = map.iter().map(|(_, b)| b).sum();
    let rest = v & !known;
    if rest != 0 {
        parts.push(format!("0x{rest:x}"));
    }
    parts.join(" | ")
}

fn parse_flags(t: &str, map: FlagMap) -> Option<i128> {
    if t.is_empty() {
        return Some(0);
    }
    let mut v: i128 = 0;
    for part in t.split('|').map(str::trim) {
        v += match map.iter().find(|(n, _)| *n == part) {
            Some((_, b)) => i128::from(*b),
            None => parse_int_str(part)?,
        };
    }
    Some(v)
}

type DictMap = &'static [(i128, &'static str)];

fn dict_map(dict: &str, field: &str) -> Option<DictMap> {
    Some(match (dict, field) {
        ("gen", "task_state") => &[(1, "Alive"), (2, "Dead"), (3, "Stopped"), (6, "Zombie")],
        ("sk", "family") => &[(1, "UNIX"), (2, "INET"), (10, "INET6"), (16, "NETLINK"), (17, "PACKET")],
        ("sk", "type") => &[(1, "STREAM"), (2, "DGRAM"), (3, "RAW"), (5, "SEQPACKET"), (10, "PACKET")],
        ("sk", "state") => &[
            (1, "ESTABLISHED"),
            (2, "SYN_SENT"),
            (3, "SYN_RECV"),
            (4, "FIN_WAIT1"),
            (5, "FIN_WAIT2"),
            (6, "TIME_WAIT"),
            (7, "CLOSE"),
            (8, "CLOSE_WAIT"),
            (9, "LAST_ACK"),
            (10, "LISTEN"),
        ],
        ("sk", "proto") => &[(0, "IP"), (6, "TCP"), (17, "UDP"), (136, "UDPLITE")],
        _ => return None,
    })
}

fn dict_name(dict: &str, field: &str, v: i128) -> Option<&'static str> {
    dict_map(dict, field)?.iter().find(|(n, _)| *n == v).map(|(_, s)| *s)
}

fn dict_value(dict: &str, field: &str, t: &str) -> Option<i128> {
    dict_map(dict, field)?.iter().find(|(_, s)| *s == t).map(|(n, _)| *n)
}

/// Device numbers: the kernel's internal `dev_t` (20 minor bits) for `dev`,
/// the userspace encoding for `odev`.
fn dev_str(v: u64, odev: bool) -> String {
    if odev {
        let major = ((v >> 32) & 0xffff_f000) | ((v >> 8) & 0xfff);
        let minor = ((v >> 12) & 0xffff_ff00) | (v & 0xff);
        format!("{major}:{minor}")
    } else {
        format!("{}:{}", v >> 20, v & ((1 << 20) - 1))
    }
}

fn parse_dev(t: &str, odev: bool) -> Option<i128> {
    let (a, b) = t.split_once(':')?;
    let major: u64 = a.trim().parse().ok()?;
    let minor: u64 = b.trim().parse().ok()?;
    let v = if odev {
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
    } else {
        (major << 20) | minor
    };
    Some(i128::from(v))
}

/// Declare protobuf messages. See the module documentation.
///
/// ```text
/// message! {
///     /// doc
///     pub struct PstreeEntry {
///         1 pid: required Uint32,
///         5 threads: repeated Uint32,
///         2 flags: optional Uint32 [hex],
///         3 fown: required Msg<FownEntry>,
///     }
/// }
/// ```
#[macro_export]
macro_rules! message {
    ($(
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $num:literal $field:ident : $label:ident $kind:ty $([ $($opt:ident $(($arg:expr))?),* ])? ),* $(,)?
        }
    )*) => {$(
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name {
            $( pub $field: $crate::message!(@ty $label $kind), )*
        }

        impl $crate::proto::Message for $name {
            const NAME: &'static str = stringify!($name);

            fn encode_to(&self, out: &mut Vec<u8>) {
                $( $crate::message!(@enc $label $kind, $num, &self.$field, out); )*
            }

            #[allow(unused_mut, unused_variables, unused_assignments)]
            fn decode_from(r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::wire::WireError> {
                let mut m = Self::default();
                let mut seen: u128 = 0;
                while let Some((tag, wt)) = r.key()? {
                    match tag {
                        $( $num => {
                            $crate::message!(@dec $label $kind, r, tag, wt, m.$field);
                            if tag < 128 { seen |= 1u128 << tag; }
                        } )*
                        _ => r.skip(wt)?,
                    }
                }
                $( $crate::message!(@req $label, seen, $num, r, stringify!($name), stringify!($field)); )*
                Ok(m)
            }

            #[allow(unused_variables)]
            fn to_json(&self, pretty: bool, hex: bool) -> $crate::json::Json {
                let mut kv: Vec<(String, $crate::json::Json)> = Vec::new();
                $({
                    const OPTS: $crate::proto::FieldOpts =
                        $crate::proto::FieldOpts::NONE $($( .$opt($($arg)?) )*)?;
                    let s = $crate::proto::Show { opts: &OPTS, name: $crate::proto::json_name(stringify!($field)), hex, pretty };
                    $crate::message!(@show $label $kind, &self.$field, s, kv);
                })*
                $crate::json::Json::Obj(kv)
            }

            #[allow(unused_variables, unused_mut)]
            fn from_json(j: &$crate::json::Json) -> Result<Self, String> {
                $crate::proto::json_obj(j, stringify!($name))?;
                let mut m = Self::default();
                $({
                    const OPTS: $crate::proto::FieldOpts =
                        $crate::proto::FieldOpts::NONE $($( .$opt($($arg)?) )*)?;
                    let s = $crate::proto::Show { opts: &OPTS, name: $crate::proto::json_name(stringify!($field)), hex: false, pretty: true };
                    $crate::message!(@parse $label $kind, j, s, m.$field, stringify!($name));
                })*
                Ok(m)
            }
        }
    )*};

    (@ty required $k:ty) => { <$k as $crate::proto::Kind>::T };
    (@ty optional $k:ty) => { Option<<$k as $crate::proto::Kind>::T> };
    (@ty repeated $k:ty) => { Vec<<$k as $crate::proto::Kind>::T> };

    (@enc required $k:ty, $n:expr, $v:expr, $out:ident) => {
        $crate::proto::put_field::<$k>($n, $v, $out)
    };
    (@enc optional $k:ty, $n:expr, $v:expr, $out:ident) => {
        if let Some(x) = $v { $crate::proto::put_field::<$k>($n, x, $out) }
    };
    (@enc repeated $k:ty, $n:expr, $v:expr, $out:ident) => {
        for x in $v.iter() { $crate::proto::put_field::<$k>($n, x, $out) }
    };

    (@dec required $k:ty, $r:ident, $tag:ident, $wt:ident, $f:expr) => {
        $f = $crate::proto::get_field::<$k>($r, $tag, $wt)?
    };
    (@dec optional $k:ty, $r:ident, $tag:ident, $wt:ident, $f:expr) => {
        $f = Some($crate::proto::get_field::<$k>($r, $tag, $wt)?)
    };
    (@dec repeated $k:ty, $r:ident, $tag:ident, $wt:ident, $f:expr) => {
        $f.push($crate::proto::get_field::<$k>($r, $tag, $wt)?)
    };

    (@req required, $seen:ident, $n:expr, $r:ident, $msg:expr, $field:expr) => {
        if $seen & (1u128 << $n) == 0 {
            return Err($crate::proto::missing($r, $msg, $field));
        }
    };
    (@req $other:ident, $seen:ident, $n:expr, $r:ident, $msg:expr, $field:expr) => {};

    (@show required $k:ty, $v:expr, $s:ident, $kv:ident) => {
        $kv.push(($s.name.to_string(), <$k as $crate::proto::Kind>::show($v, $s)))
    };
    (@show optional $k:ty, $v:expr, $s:ident, $kv:ident) => {
        if let Some(x) = $v { $kv.push(($s.name.to_string(), <$k as $crate::proto::Kind>::show(x, $s))) }
    };
    (@show repeated $k:ty, $v:expr, $s:ident, $kv:ident) => {
        if !$v.is_empty() { $kv.push(($s.name.to_string(), $crate::proto::show_repeated::<$k>($v, $s))) }
    };

    (@parse required $k:ty, $j:ident, $s:ident, $f:expr, $msg:expr) => {
        match $j.get($s.name) {
            Some(x) => $f = <$k as $crate::proto::Kind>::parse(x, $s).map_err(|e| format!("{}.{}", $msg, e))?,
            None => return Err(format!("{}: required field {} is missing", $msg, $s.name)),
        }
    };
    (@parse optional $k:ty, $j:ident, $s:ident, $f:expr, $msg:expr) => {
        if let Some(x) = $j.get($s.name) {
            $f = Some(<$k as $crate::proto::Kind>::parse(x, $s).map_err(|e| format!("{}.{}", $msg, e))?)
        }
    };
    (@parse repeated $k:ty, $j:ident, $s:ident, $f:expr, $msg:expr) => {
        if let Some(x) = $j.get($s.name) {
            $f = $crate::proto::parse_repeated::<$k>(x, $s).map_err(|e| format!("{}.{}", $msg, e))?
        }
    };
}

/// Declare a protobuf enum: a unit type carrying the value names and an
/// `i32` constant per value.
#[macro_export]
macro_rules! proto_enum {
    ($( $(#[$m:meta])* pub enum $name:ident { $($v:ident = $n:literal),* $(,)? } )*) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;
        #[allow(non_upper_case_globals, dead_code)]
        impl $name {
            $( pub const $v: i32 = $n; )*
        }
        impl $crate::proto::ProtoEnum for $name {
            const VALUES: &'static [(&'static str, i32)] = &[$((stringify!($v), $n)),*];
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::proto_enum! {
        pub enum Color { RED = 1, BLUE = 2 }
    }

    crate::message! {
        pub struct Inner {
            1 a: required Uint64,
            2 b: optional Sint32,
        }
        pub struct Outer {
            1 id: required Uint32,
            2 flags: optional Uint32 [flags("rfile.flags")],
            3 inner: optional Msg<Inner> [hex],
            4 list: repeated Uint32,
            5 color: required Enum<Color>,
            6 addr: repeated Uint32 [ipadd],
            7 name: optional Bytes [unix_name],
            8 dev: optional Uint32 [dev],
        }
    }

    fn sample() -> Outer {
        Outer {
            id: 7,
            flags: Some(0o2000002),
            inner: Some(Inner { a: 255, b: Some(-3) }),
            list: vec![1, 300],
            color: Color::BLUE,
            addr: vec![u32::from(std::net::Ipv4Addr::new(127, 0, 0, 1)).to_be()],
            name: Some(b"\0abstract".to_vec()),
            dev: Some((8 << 20) | 1),
        }
    }

    #[test]
    fn wire_round_trip() {
        let m = sample();
        let b = m.encode();
        assert_eq!(Outer::decode(&b).unwrap(), m);
    }

    #[test]
    fn json_matches_crit_conventions() {
        let j = sample().to_json(true, false);
        assert_eq!(
            j.to_text(false),
            "{\"id\": 7, \"flags\": \"O_RDWR | O_CLOEXEC\", \"inner\": {\"a\": \"0xff\", \"b\": \"-0x3\"}, \
             \"list\": [1, 300], \"color\": \"BLUE\", \"addr\": [\"127.0.0.1\"], \"name\": \"=00abstract\", \
             \"dev\": \"8:1\"}"
        );
        assert_eq!(Outer::from_json(&j).unwrap(), sample());
        // Without --pretty crit prints plain numbers.
        let raw = sample().to_json(false, false);
        assert_eq!(raw.get("flags"), Some(&Json::Int(0o2000002)));
        assert_eq!(Outer::from_json(&raw).unwrap(), sample());
    }

    #[test]
    fn missing_required_field_is_an_error() {
        let m = Inner { a: 1, b: None };
        let mut b = m.encode();
        b.clear();
        let e = Inner::decode(&b).unwrap_err();
        assert!(e.what.contains("required field a"), "{e}");
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut b = Inner { a: 5, b: None }.encode();
        put_key(&mut b, 99, WireType::Len);
        put_bytes(&mut b, b"future");
        put_key(&mut b, 100, WireType::Fixed64);
        b.extend_from_slice(&[0; 8]);
        assert_eq!(Inner::decode(&b).unwrap(), Inner { a: 5, b: None });
    }

    #[test]
    fn python_int_parsing() {
        assert_eq!(parse_int_str("0x1f"), Some(31));
        assert_eq!(parse_int_str("-0x3"), Some(-3));
        assert_eq!(parse_int_str("1_000"), Some(1000));
        assert_eq!(parse_int_str("0o17"), Some(15));
        assert_eq!(parse_int_str("zz"), None);
    }

    #[test]
    fn device_numbers() {
        assert_eq!(dev_str((253 << 20) | 3, false), "253:3");
        let odev = parse_dev("136:5", true).unwrap();
        assert_eq!(dev_str(odev as u64, true), "136:5");
    }
}
