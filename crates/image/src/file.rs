//! Image file framing.
//!
//! ```text
//! inventory.img    INVENTORY_MAGIC                ENTRY*
//! stats-*          IMG_SERVICE   TYPE_MAGIC       ENTRY*
//! every other .img IMG_COMMON    TYPE_MAGIC       ENTRY*
//! pages-*.img      raw pages, no header
//!
//! ENTRY ::= u32 length (little endian) | protobuf message [ | raw payload ]
//! ```
//!
//! The raw payload after some entries (pipe data, socket queues, TCP
//! queues, ghost file contents) has a length given by the message itself.
//! Every length is checked against [`MAX_ENTRY`] and against the bytes left in
//! the file before anything is allocated, and every error names the file,
//! the byte offset and the problem.

use crate::kinds::{kind_by_magic, ImageKind, IMG_COMMON, IMG_SERVICE, INVENTORY_MAGIC};
use crate::proto::Message;
use crate::wire::WireError;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// No single protobuf entry CRIU writes comes near this; a larger length
/// means a corrupt file.
pub const MAX_ENTRY: usize = 16 << 20;

/// Image files are read whole; this caps what a hostile file can make us
/// allocate. Page contents live in raw `pages-*.img` files, which are
/// streamed instead.
pub const MAX_IMAGE_FILE: u64 = 1 << 30;

/// Images hold process memory and secrets: owner-only.
pub const IMAGE_MODE: u32 = 0o600;

/// A problem with one image file.
#[derive(Debug)]
pub struct ImageError {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub problem: String,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{}: at byte {o}: {}", self.path.display(), self.problem),
            None => write!(f, "{}: {}", self.path.display(), self.problem),
        }
    }
}

impl std::error::Error for ImageError {}

impl ImageError {
    pub fn new(path: &Path, offset: Option<u64>, problem: impl Into<String>) -> Self {
        ImageError { path: path.to_path_buf(), offset, problem: problem.into() }
    }

    pub fn io(path: &Path, e: &io::Error) -> Self {
        let problem = match e.kind() {
            io::ErrorKind::NotFound => "image file is missing".to_string(),
            _ => e.to_string(),
        };
        ImageError::new(path, None, problem)
    }
}

/// An image file read into memory, positioned after its header.
pub struct ImageReader {
    path: PathBuf,
    data: Vec<u8>,
    pos: usize,
    kind: &'static ImageKind,
}

impl ImageReader {
    /// Open any image and identify it by its magic.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let data = read_capped(path)?;
        Self::from_bytes(path, data)
    }

    /// Open an image that must be of the given kind.
    pub fn open_kind(path: &Path, want: &'static ImageKind) -> Result<Self, ImageError> {
        let r = Self::open(path)?;
        if r.kind.magic != want.magic {
            return Err(ImageError::new(
                path,
                Some(0),
                format!("expected a {} image, found {}", want.name, r.kind.name),
            ));
        }
        Ok(r)
    }

    pub fn from_bytes(path: &Path, data: Vec<u8>) -> Result<Self, ImageError> {
        let word = |at: usize| -> Result<u32, ImageError> {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| ImageError::new(path, Some(at as u64), "file too short for an image header"))
        };
        let first = word(0)?;
        let (magic, pos) = if first == IMG_COMMON || first == IMG_SERVICE {
            (word(4)?, 8)
        } else if first == INVENTORY_MAGIC {
            (first, 4)
        } else {
            return Err(ImageError::new(
                path,
                Some(0),
                format!("unknown magic {first:#x}: not a CRIU image (raw data such as pages-*.img has no header)"),
            ));
        };
        let kind = kind_by_magic(magic).ok_or_else(|| {
            ImageError::new(path, Some(pos as u64 - 4), format!("unknown image type magic {magic:#x}"))
        })?;
        let want_first = if kind.magic == INVENTORY_MAGIC {
            INVENTORY_MAGIC
        } else if kind.service {
            IMG_SERVICE
        } else {
            IMG_COMMON
        };
        if first != want_first {
            return Err(ImageError::new(path, Some(0), format!("{} image has the wrong leading magic {first:#x}", kind.name)));
        }
        Ok(ImageReader { path: path.to_path_buf(), data, pos, kind })
    }

    pub fn kind(&self) -> &'static ImageKind {
        self.kind
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn err(&self, at: usize, problem: impl Into<String>) -> ImageError {
        ImageError::new(&self.path, Some(at as u64), problem)
    }

    /// The next entry's protobuf bytes, or `None` at a clean end of file.
    pub fn next_entry(&mut self) -> Result<Option<&[u8]>, ImageError> {
        let start = self.pos;
        if start == self.data.len() {
            return Ok(None);
        }
        let Some(b) = self.data.get(start..start + 4) else {
            return Err(self.err(start, "truncated entry length"));
        };
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len > MAX_ENTRY {
            return Err(self.err(start, format!("entry length {len} is larger than the limit of {MAX_ENTRY}")));
        }
        let left = self.data.len() - start - 4;
        if len > left {
            return Err(self.err(start, format!("entry length {len} runs past the end of the file ({left} bytes left)")));
        }
        self.pos = start + 4 + len;
        Ok(Some(&self.data[start + 4..start + 4 + len]))
    }

    /// Decode the next entry as `M`.
    pub fn next<M: Message>(&mut self) -> Result<Option<M>, ImageError> {
        let start = self.pos;
        let Some(buf) = self.next_entry()? else {
            return Ok(None);
        };
        M::decode(buf).map(Some).map_err(|e: WireError| {
            ImageError::new(&self.path, Some((start + 4 + e.pos) as u64), format!("bad {} entry: {}", M::NAME, e.what))
        })
    }

    /// The next entry as `M`; the end of the file is an error.
    pub fn expect<M: Message>(&mut self) -> Result<M, ImageError> {
        let at = self.pos;
        self.next()?.ok_or_else(|| self.err(at, format!("missing {} entry", M::NAME)))
    }

    /// All remaining entries.
    pub fn all<M: Message>(&mut self) -> Result<Vec<M>, ImageError> {
        let mut v = Vec::new();
        while let Some(m) = self.next()? {
            v.push(m);
        }
        Ok(v)
    }

    /// A raw payload of `len` bytes that follows an entry.
    pub fn payload(&mut self, len: u64) -> Result<&[u8], ImageError> {
        let start = self.pos;
        let left = (self.data.len() - start) as u64;
        if len > left {
            return Err(self.err(start, format!("payload of {len} bytes runs past the end of the file ({left} bytes left)")));
        }
        self.pos += len as usize;
        Ok(&self.data[start..self.pos])
    }

    /// Everything that is left.
    pub fn rest(&mut self) -> &[u8] {
        let s = self.pos;
        self.pos = self.data.len();
        &self.data[s..]
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, ImageError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| ImageError::io(path, &e))?;
    let meta = f.metadata().map_err(|e| ImageError::io(path, &e))?;
    if meta.is_dir() {
        return Err(ImageError::new(path, None, "is a directory, not an image file"));
    }
    if meta.len() > MAX_IMAGE_FILE {
        return Err(ImageError::new(path, None, format!("file of {} bytes is larger than the limit of {MAX_IMAGE_FILE}", meta.len())));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_IMAGE_FILE + 1).read_to_end(&mut data).map_err(|e| ImageError::io(path, &e))?;
    Ok(data)
}

/// Writes one image file: header first, then entries.
pub struct ImageWriter {
    path: PathBuf,
    out: io::BufWriter<std::fs::File>,
}

impl ImageWriter {
    pub fn create(path: &Path, kind: &'static ImageKind) -> Result<Self, ImageError> {
        let f = create_private(path)?;
        let mut w = ImageWriter { path: path.to_path_buf(), out: io::BufWriter::new(f) };
        let header = header_bytes(kind);
        w.raw(&header)?;
        Ok(w)
    }

    pub fn put<M: Message>(&mut self, m: &M) -> Result<(), ImageError> {
        let b = m.encode();
        self.raw(&(b.len() as u32).to_le_bytes())?;
        self.raw(&b)
    }

    pub fn raw(&mut self, b: &[u8]) -> Result<(), ImageError> {
        self.out.write_all(b).map_err(|e| ImageError::io(&self.path, &e))
    }

    pub fn finish(mut self) -> Result<(), ImageError> {
        self.out.flush().map_err(|e| ImageError::io(&self.path, &e))
    }
}

/// The header bytes that open an image of `kind`.
pub fn header_bytes(kind: &ImageKind) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    if kind.magic != INVENTORY_MAGIC {
        h.extend_from_slice(&(if kind.service { IMG_SERVICE } else { IMG_COMMON }).to_le_bytes());
    }
    h.extend_from_slice(&kind.magic.to_le_bytes());
    h
}

/// Create (or truncate) a file readable by its owner only.
pub fn create_private(path: &Path) -> Result<std::fs::File, ImageError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(IMAGE_MODE)
        .open(path)
        .map_err(|e| ImageError::io(path, &e))
}

/// Append one length-prefixed entry to a buffer.
pub fn put_entry<M: Message>(out: &mut Vec<u8>, m: &M) {
    let b = m.encode();
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(&b);
}
