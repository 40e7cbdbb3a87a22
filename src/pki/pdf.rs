//! PAdES signing by incremental update (ISO 32000-1 §12.8, ETSI EN 319 142-1): the original
//! bytes are kept as they are and a new revision is appended with a signature dictionary
//! (`/Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached`), a signature field and widget on
//! the first page, the page and the catalog's AcroForm updated to point at them, and a
//! cross-reference section chained to the previous one. `/ByteRange` covers the whole file
//! except the `/Contents` placeholder, into which the CMS goes once it is made.
//!
//! It reads classic cross-reference tables, cross-reference streams (with PNG predictors) and
//! hybrid files, objects in object streams, and files updated incrementally before; the new
//! section is of the same kind as the newest one. Everything read from the file is bounded
//! (named limits below).

use std::rc::Rc;

mod appearance;
mod signatures;
pub use appearance::{Appearance, Image, Placement, MAX_IMAGE_BYTES};
pub use signatures::{
    pdf_date_unix, range_digest, range_digests, read_signatures, Change, DssItems, FoundSignature,
    SignedPdf,
};

/// Errors about the input PDF; each message is safe to show to the requester.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdfError {
    #[error("not a PDF file (no %PDF- header)")]
    NotPdf,
    #[error("the PDF is encrypted; kyso signs unencrypted PDFs only")]
    Encrypted,
    #[error("the PDF is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature ({0} bytes) does not fit its placeholder")]
    TooLarge(usize),
    #[error("the PDF is signed already; a certification signature must be the first")]
    AlreadySigned,
    #[error("the PDF has no page {0}")]
    NoSuchPage(u32),
    #[error("the signature's appearance: {0}")]
    Appearance(String),
}

/// Most cross-reference sections followed through `/Prev`: incremental revisions of a real
/// document number a few dozen at most.
const MAX_SECTIONS: usize = 256;
/// Most objects a cross-reference table may declare.
const MAX_OBJECTS: u64 = 8_000_000;
/// Nesting of arrays and dictionaries, and depth of the page tree.
const MAX_DEPTH: usize = 64;
/// Parts of one object read (array elements, dictionary entries, nested): the catalog, a page
/// or a field list of a real document has hundreds, not a hundred thousand.
const MAX_NODES: usize = 100_000;
/// Decompressed bytes one parse may produce in all (cross-reference and object streams).
const MAX_INFLATED_TOTAL: u64 = 128 << 20;
/// Whole-file searches for objects whose offsets are wrong.
const MAX_SCANS: u32 = 4;

/// The work one parse of an untrusted PDF may still do (after webpki's `Budget`).
#[derive(Debug)]
struct Budget {
    /// Cross-reference entries, over all sections.
    entries: u64,
    inflated: u64,
    scans: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            entries: MAX_OBJECTS,
            inflated: MAX_INFLATED_TOTAL,
            scans: MAX_SCANS,
        }
    }
}

impl Budget {
    fn entries(&mut self, n: u64) -> Result<(), PdfError> {
        self.entries = self
            .entries
            .checked_sub(n)
            .ok_or(PdfError::Malformed("too many cross-reference entries"))?;
        Ok(())
    }

    fn inflated(&mut self, n: usize) -> Result<(), PdfError> {
        self.inflated = self
            .inflated
            .checked_sub(n as u64)
            .ok_or(PdfError::Malformed("the streams decompress to too much"))?;
        Ok(())
    }
}

/// A PDF object, as far as signing needs to read and rewrite one.
#[derive(Clone, Debug, PartialEq)]
pub enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    /// A real number, kept as written.
    Real(Vec<u8>),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Vec<(Vec<u8>, Obj)>),
    Ref(u32, u16),
}

impl Obj {
    fn get(&self, key: &[u8]) -> Option<&Obj> {
        match self {
            Obj::Dict(d) => d.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn set(&mut self, key: &[u8], value: Obj) {
        if let Obj::Dict(d) = self {
            match d.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => d.push((key.to_vec(), value)),
            }
        }
    }

    /// Writes the object in PDF syntax (strings as hex, so no escaping can go wrong).
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Obj::Null => out.extend_from_slice(b"null"),
            Obj::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Obj::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Obj::Real(r) => out.extend_from_slice(r),
            Obj::Name(n) => write_name(n, out),
            Obj::Str(s) => {
                out.push(b'<');
                out.extend_from_slice(hex::encode(s).as_bytes());
                out.push(b'>');
            }
            Obj::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    v.write(out);
                }
                out.push(b']');
            }
            Obj::Dict(d) => {
                out.extend_from_slice(b"<<");
                for (k, v) in d {
                    out.push(b' ');
                    write_name(k, out);
                    out.push(b' ');
                    v.write(out);
                }
                out.extend_from_slice(b" >>");
            }
            Obj::Ref(n, g) => out.extend_from_slice(format!("{n} {g} R").as_bytes()),
        }
    }
}

fn write_name(n: &[u8], out: &mut Vec<u8>) {
    out.push(b'/');
    for &c in n {
        if c.is_ascii_alphanumeric() || b"-_.+*:,;@!'&".contains(&c) {
            out.push(c);
        } else {
            out.extend_from_slice(format!("#{c:02X}").as_bytes());
        }
    }
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0)
}

fn is_delim(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

const BAD: PdfError = PdfError::Malformed("bad object syntax");

/// A hex string's bytes (ISO 32000-1 §7.3.4.3): white space ignored, a missing last digit is
/// 0. One pass: a signature's placeholder is tens of kilobytes of digits.
fn decode_hex(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() / 2 + 1);
    let mut high: Option<u8> = None;
    for &c in raw {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            c if is_ws(c) => continue,
            _ => return None,
        };
        match high.take() {
            None => high = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if let Some(h) = high {
        out.push(h << 4);
    }
    Some(out)
}

/// Reads PDF objects from a position in the file.
struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    /// Objects read so far (each costs far more memory than the bytes that spell it).
    nodes: usize,
}

impl<'a> Lexer<'a> {
    fn at(b: &'a [u8], pos: usize) -> Self {
        Self { b, pos, nodes: 0 }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if is_ws(c) {
                self.pos += 1;
            } else if c == b'%' {
                while self
                    .b
                    .get(self.pos)
                    .is_some_and(|c| *c != b'\n' && *c != b'\r')
                {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.b.get(self.pos).copied()
    }

    fn keyword(&mut self) -> &'a [u8] {
        self.skip_ws();
        let start = self.pos;
        while self
            .b
            .get(self.pos)
            .is_some_and(|c| !is_ws(*c) && !is_delim(*c))
        {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    fn expect(&mut self, word: &[u8]) -> Result<(), PdfError> {
        if self.keyword() == word {
            Ok(())
        } else {
            Err(BAD)
        }
    }

    /// Reads an `n g obj` header; returns n.
    fn object_header(&mut self) -> Result<u64, PdfError> {
        let n = self.uint()?;
        self.uint()?;
        self.expect(b"obj")?;
        Ok(n)
    }

    fn uint(&mut self) -> Result<u64, PdfError> {
        let w = self.keyword();
        if w.is_empty() || w.len() > 19 || !w.iter().all(u8::is_ascii_digit) {
            return Err(BAD);
        }
        std::str::from_utf8(w)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(BAD)
    }

    fn object(&mut self, depth: usize) -> Result<Obj, PdfError> {
        if depth > MAX_DEPTH {
            return Err(PdfError::Malformed("objects nested too deeply"));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(PdfError::Malformed("an object has too many parts"));
        }
        let c = self.peek().ok_or(BAD)?;
        match c {
            b'<' if self.b.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                let mut d = Vec::new();
                loop {
                    match self.peek().ok_or(BAD)? {
                        b'>' if self.b.get(self.pos + 1) == Some(&b'>') => {
                            self.pos += 2;
                            return Ok(Obj::Dict(d));
                        }
                        b'/' => {
                            let Obj::Name(k) = self.object(depth + 1)? else {
                                return Err(BAD);
                            };
                            let v = self.object(depth + 1)?;
                            // A repeated key: the last one counts, as viewers read it.
                            match d.iter_mut().find(|(key, _)| *key == k) {
                                Some((_, old)) => *old = v,
                                None => d.push((k, v)),
                            }
                        }
                        _ => return Err(BAD),
                    }
                }
            }
            b'<' => {
                self.pos += 1;
                let start = self.pos;
                let end = start + memchr::memchr(b'>', &self.b[start..]).ok_or(BAD)?;
                self.pos = end + 1;
                Ok(Obj::Str(decode_hex(&self.b[start..end]).ok_or(BAD)?))
            }
            b'(' => self.literal_string(),
            b'[' => {
                self.pos += 1;
                let mut a = Vec::new();
                loop {
                    if self.peek().ok_or(BAD)? == b']' {
                        self.pos += 1;
                        return Ok(Obj::Array(a));
                    }
                    a.push(self.object(depth + 1)?);
                }
            }
            b'/' => {
                self.pos += 1;
                let raw = self.keyword_after_slash();
                let mut name = Vec::with_capacity(raw.len());
                let mut i = 0;
                while i < raw.len() {
                    if raw[i] == b'#' && i + 2 < raw.len() {
                        let v = hex::decode(&raw[i + 1..i + 3]).map_err(|_| BAD)?;
                        name.push(v[0]);
                        i += 3;
                    } else {
                        name.push(raw[i]);
                        i += 1;
                    }
                }
                Ok(Obj::Name(name))
            }
            _ => {
                let save = self.pos;
                let w = self.keyword();
                match w {
                    b"true" => return Ok(Obj::Bool(true)),
                    b"false" => return Ok(Obj::Bool(false)),
                    b"null" => return Ok(Obj::Null),
                    _ => {}
                }
                if w.is_empty() {
                    return Err(BAD);
                }
                let text = std::str::from_utf8(w).map_err(|_| BAD)?;
                if w.iter().all(u8::is_ascii_digit) {
                    // `n g R` is a reference.
                    let after = self.pos;
                    if let Ok(g) = self.uint() {
                        if self.keyword() == b"R" {
                            let n = text.parse::<u32>().map_err(|_| BAD)?;
                            return Ok(Obj::Ref(n, u16::try_from(g).map_err(|_| BAD)?));
                        }
                    }
                    self.pos = after;
                }
                match text.parse::<i64>() {
                    Ok(i) => Ok(Obj::Int(i)),
                    Err(_) if text.parse::<f64>().is_ok() => Ok(Obj::Real(w.to_vec())),
                    Err(_) => {
                        self.pos = save;
                        Err(BAD)
                    }
                }
            }
        }
    }

    fn keyword_after_slash(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self
            .b
            .get(self.pos)
            .is_some_and(|c| !is_ws(*c) && !is_delim(*c))
        {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    fn literal_string(&mut self) -> Result<Obj, PdfError> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let c = *self.b.get(self.pos).ok_or(BAD)?;
            self.pos += 1;
            match c {
                b'(' => {
                    depth += 1;
                    out.push(c);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Obj::Str(out));
                    }
                    out.push(c);
                }
                b'\\' => {
                    let e = *self.b.get(self.pos).ok_or(BAD)?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.b.get(self.pos) == Some(&b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = (e - b'0') as u32;
                            for _ in 0..2 {
                                match self.b.get(self.pos) {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + (d - b'0') as u32;
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

/// An object stream's dictionary and decoded data.
type DecodedStream = (Obj, Vec<u8>);

/// Where each object of the newest revision lives, and the newest trailer.
struct Xref {
    offsets: std::collections::HashMap<u32, (usize, u16)>,
    /// Objects stored in object streams: (stream object number, index in it).
    compressed: std::collections::HashMap<u32, (u32, usize)>,
    trailer: Obj,
    /// Offset of the newest cross-reference section (the new one's `/Prev`).
    start: usize,
    /// Whether the newest section is a cross-reference stream (the new one is too).
    stream: bool,
    /// Where every section of the chain starts (cross-reference streams among them).
    sections: Vec<usize>,
    /// What reading objects may still cost.
    budget: std::cell::RefCell<Budget>,
    /// Decoded object streams, each inflated once.
    object_streams: std::cell::RefCell<std::collections::HashMap<u32, Rc<DecodedStream>>>,
}

/// Most bytes one stream may decompress to: bounds a "PDF bomb".
const MAX_DECOMPRESSED: u64 = 64 << 20;

/// The data of a stream object whose dictionary `dict` ends at `lx`'s position (before the
/// `stream` keyword): Flate-decoded (with PNG predictors) when its /Filter says so.
fn stream_data(
    pdf: &[u8],
    lx: &mut Lexer<'_>,
    dict: &Obj,
    budget: &mut Budget,
) -> Result<Vec<u8>, PdfError> {
    let raw = raw_stream(pdf, lx, dict)?;
    let data = match dict.get(b"Filter") {
        None => raw.to_vec(),
        Some(Obj::Name(f)) if f == b"FlateDecode" => inflate(raw)?,
        Some(Obj::Array(a)) if a.len() == 1 && a[0] == Obj::Name(b"FlateDecode".to_vec()) => {
            inflate(raw)?
        }
        Some(_) => return Err(PdfError::Malformed("unsupported stream filter")),
    };
    budget.inflated(data.len())?;
    let parms = match dict.get(b"DecodeParms") {
        Some(Obj::Array(a)) => a.first().cloned(),
        other => other.cloned(),
    };
    match parms.as_ref().and_then(|p| p.get(b"Predictor")) {
        Some(Obj::Int(p)) if *p >= 10 => {
            let columns = match parms.as_ref().and_then(|p| p.get(b"Columns")) {
                Some(Obj::Int(c)) if (1..=1 << 16).contains(c) => *c as usize,
                None => 1,
                _ => return Err(PdfError::Malformed("bad predictor columns")),
            };
            png_unpredict(&data, columns)
        }
        Some(Obj::Int(1)) | None => Ok(data),
        _ => Err(PdfError::Malformed("unsupported predictor")),
    }
}

/// The raw (still encoded) data of a stream whose dictionary `dict` ends at `lx`'s position.
fn raw_stream<'a>(pdf: &'a [u8], lx: &mut Lexer<'_>, dict: &Obj) -> Result<&'a [u8], PdfError> {
    lx.expect(b"stream")?;
    let mut at = lx.pos;
    if pdf.get(at) == Some(&b'\r') {
        at += 1;
    }
    if pdf.get(at) == Some(&b'\n') {
        at += 1;
    }
    let end = match dict.get(b"Length") {
        Some(Obj::Int(n)) if *n >= 0 && at.saturating_add(*n as usize) <= pdf.len() => {
            at + *n as usize
        }
        // An indirect or wrong length: the data ends before `endstream`.
        _ => {
            at + pdf[at..]
                .windows(9)
                .position(|w| w == b"endstream")
                .ok_or(PdfError::Malformed("unterminated stream"))?
        }
    };
    Ok(&pdf[at..end])
}

fn inflate(raw: &[u8]) -> Result<Vec<u8>, PdfError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(raw)
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|_| PdfError::Malformed("bad Flate data"))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(PdfError::Malformed(
            "a stream decompresses to more than 64 MiB",
        ));
    }
    Ok(out)
}

/// Undoes the PNG row filters (predictors 10 to 15) of `columns`-byte rows.
fn png_unpredict(data: &[u8], columns: usize) -> Result<Vec<u8>, PdfError> {
    let mut out: Vec<u8> = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; columns];
    for row in data.chunks(columns + 1) {
        if row.len() != columns + 1 {
            return Err(PdfError::Malformed("truncated predictor row"));
        }
        let mut cur = row[1..].to_vec();
        for i in 0..columns {
            let left = if i > 0 { cur[i - 1] } else { 0 };
            let up = prev[i];
            let up_left = if i > 0 { prev[i - 1] } else { 0 };
            cur[i] = cur[i].wrapping_add(match row[0] {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((left as u16 + up as u16) / 2) as u8,
                4 => {
                    let p = left as i16 + up as i16 - up_left as i16;
                    let (pa, pb, pc) = (
                        (p - left as i16).abs(),
                        (p - up as i16).abs(),
                        (p - up_left as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        up_left
                    }
                }
                _ => return Err(PdfError::Malformed("bad predictor row")),
            });
        }
        out.extend_from_slice(&cur);
        prev = cur;
    }
    Ok(out)
}

/// Reads a cross-reference stream at `off` into the maps (entries already known win: they are
/// newer); returns its dictionary.
fn read_xref_stream(
    pdf: &[u8],
    off: usize,
    offsets: &mut std::collections::HashMap<u32, (usize, u16)>,
    compressed: &mut std::collections::HashMap<u32, (u32, usize)>,
    freed: &mut std::collections::HashSet<u32>,
    budget: &mut Budget,
) -> Result<Obj, PdfError> {
    let mut lx = Lexer::at(pdf, off);
    lx.object_header()?;
    let dict = lx.object(0)?;
    if dict.get(b"Type") != Some(&Obj::Name(b"XRef".to_vec())) {
        return Err(PdfError::Malformed(
            "no cross-reference where startxref points",
        ));
    }
    if dict.get(b"Encrypt").is_some() {
        return Err(PdfError::Encrypted);
    }
    let data = stream_data(pdf, &mut lx, &dict, budget)?;
    let w: Vec<usize> = match dict.get(b"W") {
        Some(Obj::Array(a)) if a.len() == 3 => a
            .iter()
            .map(|v| match v {
                Obj::Int(n) if (0..=8).contains(n) => Ok(*n as usize),
                _ => Err(PdfError::Malformed("bad /W")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(PdfError::Malformed("bad /W")),
    };
    let size = match dict.get(b"Size") {
        Some(Obj::Int(n)) if *n >= 0 && (*n as u64) <= MAX_OBJECTS => *n as u64,
        _ => return Err(PdfError::Malformed("bad /Size")),
    };
    let index: Vec<u64> = match dict.get(b"Index") {
        Some(Obj::Array(a)) if a.len() % 2 == 0 => a
            .iter()
            .map(|v| match v {
                Obj::Int(n) if *n >= 0 => Ok(*n as u64),
                _ => Err(PdfError::Malformed("bad /Index")),
            })
            .collect::<Result<_, _>>()?,
        None => vec![0, size],
        _ => return Err(PdfError::Malformed("bad /Index")),
    };
    let row = w.iter().sum::<usize>();
    if row == 0 {
        return Err(PdfError::Malformed("bad /W"));
    }
    let field = |bytes: &[u8]| bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    let mut rows = data.chunks_exact(row);
    // The rows must be there: no entry is made up, and the counts cannot run ahead of data.
    let declared = index
        .chunks(2)
        .map(|p| p[1])
        .try_fold(0u64, u64::checked_add);
    if declared.is_none_or(|n| n.saturating_mul(row as u64) > data.len() as u64) {
        return Err(PdfError::Malformed("short cross-reference stream"));
    }
    budget.entries(declared.unwrap_or(u64::MAX))?;
    for pair in index.chunks(2) {
        if pair[0].saturating_add(pair[1]) > MAX_OBJECTS {
            return Err(PdfError::Malformed("too many objects"));
        }
        for n in pair[0]..pair[0] + pair[1] {
            let r = rows
                .next()
                .ok_or(PdfError::Malformed("short cross-reference stream"))?;
            let kind = if w[0] == 0 { 1 } else { field(&r[..w[0]]) };
            let a = field(&r[w[0]..w[0] + w[1]]);
            let b = field(&r[w[0] + w[1]..]);
            let n = n as u32;
            // The newest section that mentions an object decides it.
            if offsets.contains_key(&n) || compressed.contains_key(&n) || freed.contains(&n) {
                continue;
            }
            match kind {
                1 => {
                    offsets.insert(n, (a as usize, b.min(65535) as u16));
                }
                2 => {
                    compressed.insert(n, (a as u32, b as usize));
                }
                0 if n != 0 => {
                    freed.insert(n);
                }
                _ => {}
            }
        }
    }
    Ok(dict)
}

fn read_xref(pdf: &[u8]) -> Result<Xref, PdfError> {
    let tail_from = pdf.len().saturating_sub(2048);
    let tail = &pdf[tail_from..];
    let at = tail
        .windows(9)
        .rposition(|w| w == b"startxref")
        .ok_or(PdfError::Malformed("no startxref"))?;
    let mut lx = Lexer::at(pdf, tail_from + at + 9);
    let start = lx
        .uint()
        .map_err(|_| PdfError::Malformed("bad startxref"))? as usize;
    let mut offsets = std::collections::HashMap::new();
    let mut compressed = std::collections::HashMap::new();
    let mut trailer: Option<Obj> = None;
    let mut next = Some(start);
    let mut seen = std::collections::HashSet::new();
    let mut sections = Vec::new();
    let mut freed = std::collections::HashSet::new();
    let mut stream = false;
    let mut budget = Budget::default();
    while let Some(off) = next {
        if off >= pdf.len() {
            return Err(PdfError::Malformed("bad cross-reference chain"));
        }
        let mut lx = Lexer::at(pdf, off);
        let first_char = lx.peek();
        // Sections are told apart by where they really start: a /Prev one byte earlier (in
        // the white space before) is the same section again.
        if seen.len() >= MAX_SECTIONS || !seen.insert(lx.pos) {
            return Err(PdfError::Malformed("bad cross-reference chain"));
        }
        sections.push(lx.pos);
        if first_char.is_some_and(|c| c.is_ascii_digit()) {
            let t = read_xref_stream(
                pdf,
                off,
                &mut offsets,
                &mut compressed,
                &mut freed,
                &mut budget,
            )?;
            next = match t.get(b"Prev") {
                Some(Obj::Int(p)) if *p >= 0 => Some(*p as usize),
                Some(_) => return Err(PdfError::Malformed("bad /Prev")),
                None => None,
            };
            if trailer.is_none() {
                stream = true;
                trailer = Some(t);
            }
            continue;
        }
        lx.expect(b"xref")
            .map_err(|_| PdfError::Malformed("no cross-reference table where startxref points"))?;
        // Free entries of this table; a hybrid file's stream may still define them.
        let mut section_free = Vec::new();
        loop {
            lx.skip_ws();
            if pdf[lx.pos..].starts_with(b"trailer") {
                lx.pos += 7;
                break;
            }
            let first = lx.uint()?;
            let count = lx.uint()?;
            if first.checked_add(count).is_none_or(|end| end > MAX_OBJECTS) {
                return Err(PdfError::Malformed("too many objects"));
            }
            budget.entries(count)?;
            for n in first..first + count {
                let offset = lx.uint()? as usize;
                let generation = lx.uint()?;
                let kind = lx.keyword();
                let n = n as u32;
                let decided =
                    offsets.contains_key(&n) || compressed.contains_key(&n) || freed.contains(&n);
                if kind == b"n" {
                    if !decided {
                        offsets.insert(n, (offset, generation.min(65535) as u16));
                    }
                } else if kind == b"f" {
                    if !decided && n != 0 {
                        section_free.push(n);
                    }
                } else {
                    return Err(PdfError::Malformed("bad cross-reference entry"));
                }
            }
        }
        let t = lx.object(0)?;
        if t.get(b"Encrypt").is_some() {
            return Err(PdfError::Encrypted);
        }
        // A hybrid file: its stream lists the objects kept in object streams.
        if let Some(Obj::Int(x)) = t.get(b"XRefStm") {
            if *x >= 0 && (*x as usize) < pdf.len() {
                let mut none = std::collections::HashSet::new();
                read_xref_stream(
                    pdf,
                    *x as usize,
                    &mut offsets,
                    &mut compressed,
                    &mut none,
                    &mut budget,
                )?;
            }
        }
        for n in section_free {
            if !offsets.contains_key(&n) && !compressed.contains_key(&n) {
                freed.insert(n);
            }
        }
        next = match t.get(b"Prev") {
            Some(Obj::Int(p)) if *p >= 0 => Some(*p as usize),
            Some(_) => return Err(PdfError::Malformed("bad /Prev")),
            None => None,
        };
        if trailer.is_none() {
            trailer = Some(t);
        }
    }
    Ok(Xref {
        offsets,
        compressed,
        trailer: trailer.ok_or(PdfError::Malformed("no trailer"))?,
        start,
        stream,
        sections,
        budget: std::cell::RefCell::new(budget),
        object_streams: Default::default(),
    })
}

impl Xref {
    fn object(&self, pdf: &[u8], num: u32) -> Result<Obj, PdfError> {
        if let Some(&(stm, index)) = self.compressed.get(&num) {
            return self.compressed_object(pdf, stm, index, num);
        }
        self.located(pdf, num)?.object(0)
    }

    /// Object `num` and, for a stream, its raw data (objects in object streams are never
    /// streams).
    fn object_and_stream<'a>(
        &self,
        pdf: &'a [u8],
        num: u32,
    ) -> Result<(Obj, Option<&'a [u8]>), PdfError> {
        if let Some(&(stm, index)) = self.compressed.get(&num) {
            return Ok((self.compressed_object(pdf, stm, index, num)?, None));
        }
        let mut lx = self.located(pdf, num)?;
        let obj = lx.object(0)?;
        let after = lx.pos;
        if matches!(obj, Obj::Dict(_)) && lx.keyword() == b"stream" {
            lx.pos = after;
            return Ok((obj.clone(), Some(raw_stream(pdf, &mut lx, &obj)?)));
        }
        Ok((obj, None))
    }

    /// A lexer at the start of object `num`'s value (an object not in an object stream).
    fn located<'a>(&self, pdf: &'a [u8], num: u32) -> Result<Lexer<'a>, PdfError> {
        let (off, _) = *self.offsets.get(&num).ok_or(PdfError::Malformed(
            "an object the document refers to is missing",
        ))?;
        if off >= pdf.len() {
            return Err(PdfError::Malformed("object offset past the end"));
        }
        let header = |at: usize| -> Result<Lexer<'a>, PdfError> {
            let mut lx = Lexer::at(pdf, at);
            if lx.object_header()? != u64::from(num) {
                return Err(BAD);
            }
            Ok(lx)
        };
        let lx = match header(off) {
            Ok(lx) => lx,
            // Offsets that are a little off are common; readers find the object by its header,
            // as here: the last `num g obj` in the file.
            Err(_) => {
                let mut b = self.budget.borrow_mut();
                b.scans = b.scans.checked_sub(1).ok_or(PdfError::Malformed(
                    "too many objects are not where the cross-reference says",
                ))?;
                drop(b);
                find_object(pdf, num)
            }
            .and_then(|at| header(at).ok())
            .ok_or(PdfError::Malformed("cross-reference offset is wrong"))?,
        };
        Ok(lx)
    }

    /// Object `num`, the `index`th of object stream `stm` (ISO 32000-1 §7.5.7).
    fn compressed_object(
        &self,
        pdf: &[u8],
        stm: u32,
        index: usize,
        num: u32,
    ) -> Result<Obj, PdfError> {
        let bad = PdfError::Malformed("bad object stream");
        let cached = self.object_streams.borrow().get(&stm).cloned();
        let decoded = match cached {
            Some(d) => d,
            None => {
                let (off, _) = *self.offsets.get(&stm).ok_or(bad.clone())?;
                let mut lx = Lexer::at(pdf, off);
                if lx.object_header()? != u64::from(stm) {
                    return Err(bad);
                }
                let dict = lx.object(0)?;
                let data = stream_data(pdf, &mut lx, &dict, &mut self.budget.borrow_mut())?;
                let d = Rc::new((dict, data));
                self.object_streams.borrow_mut().insert(stm, d.clone());
                d
            }
        };
        let (dict, data) = (&decoded.0, &decoded.1);
        let (n, first) = match (dict.get(b"N"), dict.get(b"First")) {
            (Some(Obj::Int(n)), Some(Obj::Int(f))) if *n > 0 && *f >= 0 => {
                (*n as usize, *f as usize)
            }
            _ => return Err(bad),
        };
        if index >= n || first > data.len() {
            return Err(bad);
        }
        let mut head = Lexer::at(data, 0);
        let mut found = None;
        for i in 0..n {
            let (obj, at) = (head.uint()?, head.uint()? as usize);
            if i == index {
                found = Some((obj, at));
                break;
            }
        }
        match found {
            Some((obj, at)) if obj == u64::from(num) && first.saturating_add(at) < data.len() => {
                Lexer::at(data, first + at).object(0)
            }
            _ => Err(bad),
        }
    }

    /// `obj`, or the object it refers to.
    fn resolve(&self, pdf: &[u8], obj: &Obj) -> Result<Obj, PdfError> {
        match obj {
            Obj::Ref(n, _) => self.object(pdf, *n),
            other => Ok(other.clone()),
        }
    }
}

/// Where the last `num g obj` header starts, at the start of a line.
fn find_object(pdf: &[u8], num: u32) -> Option<usize> {
    let needle = format!("{num} ");
    let n = needle.as_bytes();
    let mut found = None;
    let mut i = 0;
    while let Some(p) = pdf[i..].windows(n.len()).position(|w| w == n) {
        let at = i + p;
        let line_start = at == 0 || matches!(pdf[at - 1], b'\n' | b'\r');
        if line_start {
            let mut lx = Lexer::at(pdf, at);
            if lx.object_header().ok() == Some(u64::from(num)) {
                found = Some(at);
            }
        }
        i = at + 1;
    }
    found
}

/// What a new signature dictionary holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureKind {
    /// A CAdES signature (`/Type /Sig`, `/SubFilter /ETSI.CAdES.detached`).
    Cades,
    /// A document time-stamp (`/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`): an RFC 3161
    /// token over the byte ranges, for PAdES B-LTA.
    DocTimeStamp,
}

/// What the new revision says about the signature.
pub struct SignatureInfo {
    pub kind: SignatureKind,
    /// Signing time for `/M`, `D:YYYYMMDDHHmmSSZ` (a CAdES signature only; a time-stamp's
    /// time is in its token).
    pub time: time::OffsetDateTime,
    pub reason: Option<String>,
    pub location: Option<String>,
    pub name: Option<String>,
    /// Bytes reserved for the CMS.
    pub reserve: usize,
    /// A visible signature; `None`: invisible, on the first page.
    pub appearance: Option<Appearance>,
    /// A certification signature (DocMDP) with these permissions: 1 no changes, 2 form
    /// filling and signing, 3 also annotations. Only the first signature of a document.
    pub certify: Option<u8>,
}

/// A PDF with its new revision appended and an empty `/Contents`.
pub struct Prepared {
    pub pdf: Vec<u8>,
    /// Offsets of the `<` and just after the `>` of the `/Contents` hex string.
    contents: (usize, usize),
}

impl Prepared {
    /// The bytes the signature covers (`/ByteRange`), in order.
    pub fn signed_ranges(&self) -> [&[u8]; 2] {
        [&self.pdf[..self.contents.0], &self.pdf[self.contents.1..]]
    }

    /// Puts the CMS into the placeholder; the rest of the file is unchanged.
    pub fn finish(mut self, cms: &[u8]) -> Result<Vec<u8>, PdfError> {
        let room = (self.contents.1 - self.contents.0 - 2) / 2;
        if cms.len() > room {
            return Err(PdfError::TooLarge(cms.len()));
        }
        let hexed = hex::encode(cms);
        let at = self.contents.0 + 1;
        self.pdf[at..at + hexed.len()].copy_from_slice(hexed.as_bytes());
        Ok(self.pdf)
    }
}

/// Most page-tree nodes visited to find a page: a document of 100,000 pages is far beyond an
/// official document.
const MAX_PAGE_NODES: usize = 200_000;

/// A page found in the page tree: its object, and the box it is drawn in (its own or inherited
/// `/CropBox`, else `/MediaBox`), `[x1 y1 x2 y2]`.
struct Page {
    n: u32,
    g: u16,
    dict: Obj,
    bbox: [f64; 4],
}

fn number(o: &Obj) -> Option<f64> {
    match o {
        Obj::Int(i) => Some(*i as f64),
        Obj::Real(r) => std::str::from_utf8(r).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn rectangle(pdf: &[u8], xref: &Xref, o: &Obj) -> Option<[f64; 4]> {
    match xref.resolve(pdf, o).ok()? {
        Obj::Array(v) if v.len() == 4 => {
            let n: Vec<f64> = v.iter().filter_map(number).collect();
            (n.len() == 4).then(|| {
                [
                    n[0].min(n[2]),
                    n[1].min(n[3]),
                    n[0].max(n[2]),
                    n[1].max(n[3]),
                ]
            })
        }
        _ => None,
    }
}

/// The page at `index` (0-based) in document order, walking the tree depth first with the
/// inheritable boxes; bounded and cycle-safe.
fn nth_page(pdf: &[u8], xref: &Xref, pages: &Obj, index: u32) -> Result<Page, PdfError> {
    // (node, depth, inherited MediaBox, inherited CropBox)
    type Box4 = Option<[f64; 4]>;
    let mut stack: Vec<(Obj, usize, Box4, Box4)> = vec![(pages.clone(), 0, None, None)];
    let mut visited = std::collections::HashSet::new();
    let mut seen_pages = 0u32;
    while let Some((node, depth, media, crop)) = stack.pop() {
        let Obj::Ref(n, g) = node else {
            return Err(PdfError::Malformed("page tree node is not a reference"));
        };
        if depth > MAX_DEPTH || !visited.insert(n) || visited.len() > MAX_PAGE_NODES {
            return Err(PdfError::Malformed(
                "page tree too deep, too large or circular",
            ));
        }
        let dict = xref.object(pdf, n)?;
        let media = dict
            .get(b"MediaBox")
            .and_then(|b| rectangle(pdf, xref, b))
            .or(media);
        let crop = dict
            .get(b"CropBox")
            .and_then(|b| rectangle(pdf, xref, b))
            .or(crop);
        if matches!(dict.get(b"Type"), Some(Obj::Name(t)) if t == b"Page") {
            if seen_pages == index {
                let bbox = crop
                    .or(media)
                    .ok_or(PdfError::Malformed("the page has no /MediaBox"))?;
                return Ok(Page { n, g, dict, bbox });
            }
            seen_pages += 1;
            continue;
        }
        let kids = xref.resolve(
            pdf,
            dict.get(b"Kids").ok_or(PdfError::Malformed("no pages"))?,
        )?;
        let Obj::Array(kids) = kids else {
            return Err(PdfError::Malformed("bad /Kids"));
        };
        for kid in kids.into_iter().rev() {
            stack.push((kid, depth + 1, media, crop));
        }
    }
    if index == 0 {
        Err(PdfError::Malformed("no pages"))
    } else {
        Err(PdfError::NoSuchPage(index + 1))
    }
}

fn pdf_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A revision being appended to a PDF: the original bytes stay as they are, new and rewritten
/// objects follow them, then a cross-reference section chained to the previous one.
struct Revision {
    xref: Xref,
    root: (u32, u16),
    /// The original file, then everything appended.
    out: Vec<u8>,
    original_len: usize,
    written: Vec<(u32, u16, usize)>,
    /// The number the next new object takes.
    next_new: u32,
    next_size: u32,
}

impl Revision {
    /// Reads the file's cross-reference sections and its catalog; `room` is about how many
    /// bytes will be appended (so a large file's buffer grows once).
    fn open(original: Vec<u8>, room: usize) -> Result<(Self, Obj), PdfError> {
        let pdf = original.as_slice();
        if !pdf[..pdf.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
            return Err(PdfError::NotPdf);
        }
        let xref = read_xref(pdf)?;
        let root = match xref.trailer.get(b"Root") {
            Some(Obj::Ref(n, g)) => (*n, *g),
            _ => return Err(PdfError::Malformed("no /Root")),
        };
        let size = match xref.trailer.get(b"Size") {
            Some(Obj::Int(s)) if *s > 0 && (*s as u64) < MAX_OBJECTS => *s as u32,
            _ => return Err(PdfError::Malformed("bad /Size")),
        };
        let catalog = xref.object(pdf, root.0)?;
        // New objects take numbers above every one in use, whatever /Size claims.
        let highest = xref
            .offsets
            .keys()
            .chain(xref.compressed.keys())
            .chain([&root.0])
            .max()
            .copied()
            .unwrap_or(0);
        let next_new = size.max(highest.saturating_add(1));
        let mut out = original;
        let original_len = out.len();
        out.reserve_exact(room + 64 * 1024);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        Ok((
            Self {
                xref,
                root,
                out,
                original_len,
                written: Vec::new(),
                next_new,
                next_size: size,
            },
            catalog,
        ))
    }

    /// The file as it was.
    fn original(&self) -> &[u8] {
        &self.out[..self.original_len]
    }

    fn object(&self, n: u32) -> Result<Obj, PdfError> {
        self.xref.object(self.original(), n)
    }

    fn resolve(&self, obj: &Obj) -> Result<Obj, PdfError> {
        self.xref.resolve(self.original(), obj)
    }

    /// The generation an existing object is rewritten with.
    fn generation(&self, n: u32) -> u16 {
        self.xref.offsets.get(&n).map_or(0, |(_, g)| *g)
    }

    /// A number for a new object.
    fn allocate(&mut self) -> Result<u32, PdfError> {
        let n = self.next_new;
        if u64::from(n) + 2 > MAX_OBJECTS {
            return Err(PdfError::Malformed("too many objects"));
        }
        self.next_new += 1;
        self.next_size = self.next_size.max(n + 1);
        Ok(n)
    }

    fn begin(&mut self, n: u32, g: u16) {
        self.written.push((n, g, self.out.len()));
        self.out
            .extend_from_slice(format!("{n} {g} obj\n").as_bytes());
        self.next_size = self.next_size.max(n + 1);
    }

    fn write_object(&mut self, n: u32, g: u16, obj: &Obj) {
        self.begin(n, g);
        obj.write(&mut self.out);
        self.out.extend_from_slice(b"\nendobj\n");
    }

    fn write_stream(&mut self, n: u32, dict: Obj, data: &[u8]) {
        let mut dict = dict;
        dict.set(b"Length", Obj::Int(data.len() as i64));
        self.begin(n, 0);
        dict.write(&mut self.out);
        self.out.extend_from_slice(b"\nstream\n");
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    /// Writes the cross-reference section of this revision, one subsection per run of
    /// numbers: a table, or a stream when the file's newest section is one (readers of such
    /// files may not expect a table after it).
    fn finish(mut self) -> Vec<u8> {
        let out = &mut self.out;
        let xref = &self.xref;
        let xref_at = out.len();
        let mut trailer = vec![
            (b"Size".to_vec(), Obj::Int(i64::from(self.next_size))),
            (b"Root".to_vec(), Obj::Ref(self.root.0, self.root.1)),
            (b"Prev".to_vec(), Obj::Int(xref.start as i64)),
        ];
        for key in [&b"Info"[..], b"ID"] {
            if let Some(v) = xref.trailer.get(key) {
                trailer.push((key.to_vec(), v.clone()));
            }
        }
        let mut written = std::mem::take(&mut self.written);
        if xref.stream {
            let own = self.next_size;
            written.push((own, 0, xref_at));
            written.sort();
            let (mut index, mut rows) = (Vec::new(), Vec::new());
            for run in runs(&written) {
                index.extend([Obj::Int(i64::from(run[0].0)), Obj::Int(run.len() as i64)]);
                for (_, g, off) in run {
                    rows.push(1u8);
                    rows.extend_from_slice(&(*off as u32).to_be_bytes());
                    rows.extend_from_slice(&g.to_be_bytes());
                }
            }
            trailer[0].1 = Obj::Int(i64::from(own + 1));
            trailer.extend([
                (b"Type".to_vec(), Obj::Name(b"XRef".to_vec())),
                (
                    b"W".to_vec(),
                    Obj::Array(vec![Obj::Int(1), Obj::Int(4), Obj::Int(2)]),
                ),
                (b"Index".to_vec(), Obj::Array(index)),
                (b"Length".to_vec(), Obj::Int(rows.len() as i64)),
            ]);
            out.extend_from_slice(format!("{own} 0 obj\n").as_bytes());
            Obj::Dict(trailer).write(out);
            out.extend_from_slice(b"\nstream\n");
            out.extend_from_slice(&rows);
            out.extend_from_slice(b"\nendstream\nendobj\n");
        } else {
            out.extend_from_slice(b"xref\n");
            written.sort();
            for run in runs(&written) {
                out.extend_from_slice(format!("{} {}\n", run[0].0, run.len()).as_bytes());
                for (_, g, off) in run {
                    out.extend_from_slice(format!("{off:010} {g:05} n\r\n").as_bytes());
                }
            }
            out.extend_from_slice(b"trailer\n");
            Obj::Dict(trailer).write(out);
            out.push(b'\n');
        }
        out.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
        self.out
    }
}

/// Appends a new revision with an invisible signature field on the first page and an empty
/// `/Contents` of `info.reserve` bytes: a CAdES signature or a document time-stamp
/// (`info.kind`).
///
/// The new revision is appended to `original` itself: the file is never copied (the peak is
/// the file once, plus the growth of its buffer).
pub fn prepare(
    original: Vec<u8>,
    info: &SignatureInfo,
    field_name: &str,
) -> Result<Prepared, PdfError> {
    if let Some(a) = &info.appearance {
        a.check()?;
    }
    let image_room = info
        .appearance
        .as_ref()
        .and_then(|a| a.image.as_ref())
        .map_or(0, Image::stored_len);
    let (mut rev, mut catalog) = Revision::open(original, 2 * info.reserve + image_room)?;
    let pages = catalog
        .get(b"Pages")
        .cloned()
        .ok_or(PdfError::Malformed("no /Pages"))?;
    let page_index = info
        .appearance
        .as_ref()
        .map_or(0, |a| a.page.saturating_sub(1));
    let Page {
        n: page_n,
        g: page_g,
        dict: mut page,
        bbox,
    } = nth_page(rev.original(), &rev.xref, &pages, page_index)?;
    rev.next_new = rev.next_new.max(page_n.saturating_add(1));
    // A visible signature's rectangle and appearance stream; an invisible one has a zero
    // rectangle and none.
    let (rect, appearance) = match &info.appearance {
        Some(a) => {
            let r = a.rect(bbox)?;
            let ap = a.write(&mut rev, r[2] - r[0], r[3] - r[1])?;
            (r, Some(ap))
        }
        None => ([0.0; 4], None),
    };
    let sig_n = rev.allocate()?;
    let field_n = rev.allocate()?;
    let field_ref = Obj::Ref(field_n, 0);
    // The page lists the widget among its annotations.
    let mut annots = match page.get(b"Annots") {
        Some(a) => match rev.resolve(a)? {
            Obj::Array(v) => v,
            _ => return Err(PdfError::Malformed("bad /Annots")),
        },
        None => Vec::new(),
    };
    annots.push(field_ref.clone());
    page.set(b"Annots", Obj::Array(annots));
    // The AcroForm lists the field; SigFlags 3: signatures exist, append only.
    let (mut acroform, acroform_n) = match catalog.get(b"AcroForm") {
        Some(Obj::Ref(n, _)) => (rev.object(*n)?, Some(*n)),
        Some(d @ Obj::Dict(_)) => (d.clone(), None),
        Some(_) => return Err(PdfError::Malformed("bad /AcroForm")),
        None => (Obj::Dict(Vec::new()), None),
    };
    let mut fields = match acroform.get(b"Fields") {
        Some(f) => match rev.resolve(f)? {
            Obj::Array(v) => v,
            _ => return Err(PdfError::Malformed("bad /Fields")),
        },
        None => Vec::new(),
    };
    if info.certify.is_some() {
        if !(1..=3).contains(&info.certify.unwrap_or(0)) {
            return Err(PdfError::Malformed("DocMDP permissions are 1, 2 or 3"));
        }
        // A certification signature comes first (ISO 32000-1 §12.8.2.2).
        let signed = fields.iter().take(MAX_NODES).any(|f| {
            rev.resolve(f).is_ok_and(|d| {
                matches!(d.get(b"FT"), Some(Obj::Name(t)) if t == b"Sig") && d.get(b"V").is_some()
            })
        });
        if signed || catalog.get(b"Perms").is_some() {
            return Err(PdfError::AlreadySigned);
        }
    }
    fields.push(field_ref);
    acroform.set(b"Fields", Obj::Array(fields));
    acroform.set(b"SigFlags", Obj::Int(3));
    if acroform_n.is_none() {
        catalog.set(b"AcroForm", acroform.clone());
    }

    // The signature dictionary, with fixed-width /ByteRange and /Contents to fill in.
    rev.begin(sig_n, 0);
    let (kind, subfilter) = match info.kind {
        SignatureKind::Cades => ("Sig", "ETSI.CAdES.detached"),
        SignatureKind::DocTimeStamp => ("DocTimeStamp", "ETSI.RFC3161"),
    };
    rev.out.extend_from_slice(
        format!("<< /Type /{kind} /Filter /Adobe.PPKLite /SubFilter /{subfilter} /ByteRange ")
            .as_bytes(),
    );
    let byte_range_at = rev.out.len();
    rev.out
        .extend_from_slice(format!("[0 {:>10} {:>10} {:>10}]", 0, 0, 0).as_bytes());
    rev.out.extend_from_slice(b" /Contents ");
    let contents_start = rev.out.len();
    rev.out.push(b'<');
    rev.out.resize(rev.out.len() + 2 * info.reserve, b'0');
    rev.out.push(b'>');
    let contents_end = rev.out.len();
    if info.kind == SignatureKind::Cades {
        let mut extra = Obj::Dict(vec![(
            b"M".to_vec(),
            Obj::Str(pdf_date(info.time).into_bytes()),
        )]);
        if let Some(p) = info.certify {
            // The signature reference dictionary of a certification signature (§12.8.1).
            let params = Obj::Dict(vec![
                (b"Type".to_vec(), Obj::Name(b"TransformParams".to_vec())),
                (b"P".to_vec(), Obj::Int(i64::from(p))),
                (b"V".to_vec(), Obj::Name(b"1.2".to_vec())),
            ]);
            let reference = Obj::Dict(vec![
                (b"Type".to_vec(), Obj::Name(b"SigRef".to_vec())),
                (b"TransformMethod".to_vec(), Obj::Name(b"DocMDP".to_vec())),
                (b"TransformParams".to_vec(), params),
            ]);
            extra.set(b"Reference", Obj::Array(vec![reference]));
            catalog.set(
                b"Perms",
                Obj::Dict(vec![(b"DocMDP".to_vec(), Obj::Ref(sig_n, 0))]),
            );
        }
        for (k, v) in [
            (&b"Name"[..], &info.name),
            (b"Reason", &info.reason),
            (b"Location", &info.location),
        ] {
            if let Some(v) = v {
                extra.set(k, Obj::Str(text_string(v)));
            }
        }
        if let Obj::Dict(d) = &extra {
            for (k, v) in d {
                rev.out.push(b' ');
                write_name(k, &mut rev.out);
                rev.out.push(b' ');
                v.write(&mut rev.out);
            }
        }
    }
    rev.out.extend_from_slice(b" >>\nendobj\n");
    // The field, merged with its widget: printed and locked; visible with its appearance, or
    // invisible (zero rectangle).
    let mut widget = Obj::Dict(vec![
        (b"Type".to_vec(), Obj::Name(b"Annot".to_vec())),
        (b"Subtype".to_vec(), Obj::Name(b"Widget".to_vec())),
        (b"FT".to_vec(), Obj::Name(b"Sig".to_vec())),
        (b"T".to_vec(), Obj::Str(text_string(field_name))),
        (b"V".to_vec(), Obj::Ref(sig_n, 0)),
        (b"F".to_vec(), Obj::Int(132)),
        (
            b"Rect".to_vec(),
            Obj::Array(rect.iter().map(|v| appearance::real(*v)).collect()),
        ),
        (b"P".to_vec(), Obj::Ref(page_n, page_g)),
    ]);
    if let Some(ap) = appearance {
        widget.set(b"AP", Obj::Dict(vec![(b"N".to_vec(), Obj::Ref(ap, 0))]));
    }
    rev.write_object(field_n, 0, &widget);
    rev.write_object(page_n, page_g, &page);
    if let Some(n) = acroform_n {
        let g = rev.generation(n);
        rev.write_object(n, g, &acroform);
    }
    let (root_n, root_g) = rev.root;
    rev.write_object(root_n, root_g, &catalog);
    let mut out = rev.finish();
    let range = format!(
        "[0 {:>10} {:>10} {:>10}]",
        contents_start,
        contents_end,
        out.len() - contents_end
    );
    out[byte_range_at..byte_range_at + range.len()].copy_from_slice(range.as_bytes());
    Ok(Prepared {
        pdf: out,
        contents: (contents_start, contents_end),
    })
}

/// Validation material for the document security store (ETSI EN 319 142-1 §5.4, PAdES B-LT):
/// DER certificates, OCSP responses and CRLs.
#[derive(Default)]
pub struct Dss<'a> {
    pub certs: Vec<&'a [u8]>,
    pub ocsps: Vec<&'a [u8]>,
    pub crls: Vec<&'a [u8]>,
}

/// Appends a revision that adds `dss` to the catalog's `/DSS` (what is there already stays).
pub fn append_dss(original: Vec<u8>, dss: &Dss<'_>) -> Result<Vec<u8>, PdfError> {
    let room: usize = [&dss.certs, &dss.ocsps, &dss.crls]
        .iter()
        .flat_map(|v| v.iter())
        .map(|d| d.len() + 64)
        .sum();
    let (mut rev, mut catalog) = Revision::open(original, room)?;
    let (mut store, store_n) = match catalog.get(b"DSS") {
        Some(Obj::Ref(n, _)) => (rev.object(*n)?, Some(*n)),
        Some(d @ Obj::Dict(_)) => (d.clone(), None),
        Some(_) => return Err(PdfError::Malformed("bad /DSS")),
        None => (
            Obj::Dict(vec![(b"Type".to_vec(), Obj::Name(b"DSS".to_vec()))]),
            None,
        ),
    };
    for (key, items) in [
        (&b"Certs"[..], &dss.certs),
        (b"OCSPs", &dss.ocsps),
        (b"CRLs", &dss.crls),
    ] {
        let mut refs = match store.get(key) {
            Some(a) => match rev.resolve(a)? {
                Obj::Array(v) => v,
                _ => return Err(PdfError::Malformed("bad array in /DSS")),
            },
            None => Vec::new(),
        };
        let mut seen: Vec<&[u8]> = Vec::new();
        for item in items.iter().copied() {
            if seen.contains(&item) {
                continue;
            }
            seen.push(item);
            let n = rev.allocate()?;
            rev.write_stream(n, Obj::Dict(Vec::new()), item);
            refs.push(Obj::Ref(n, 0));
        }
        if !refs.is_empty() {
            store.set(key, Obj::Array(refs));
        }
    }
    let (n, g) = match store_n {
        Some(n) => (n, rev.generation(n)),
        None => (rev.allocate()?, 0),
    };
    rev.write_object(n, g, &store);
    catalog.set(b"DSS", Obj::Ref(n, g));
    let (root_n, root_g) = rev.root;
    rev.write_object(root_n, root_g, &catalog);
    Ok(rev.finish())
}

/// Runs of consecutive object numbers in sorted (number, generation, offset) entries.
fn runs(entries: &[(u32, u16, usize)]) -> Vec<&[(u32, u16, usize)]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let mut j = i + 1;
        while j < entries.len() && entries[j].0 == entries[j - 1].0 + 1 {
            j += 1;
        }
        out.push(&entries[i..j]);
        i = j;
    }
    out
}

/// A PDF text string: PDFDocEncoding for ASCII, else UTF-16BE with a byte-order mark (so
/// Vietnamese names and reasons keep their diacritics).
fn text_string(s: &str) -> Vec<u8> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.as_bytes().to_vec()
    } else {
        let mut out = vec![0xfe, 0xff];
        for u in s.encode_utf16() {
            out.extend_from_slice(&u.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn minimal() -> Vec<u8> {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let objs = [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [] /Contents 4 0 R >>",
            "<< /Length 0 >>\nstream\n\nendstream",
        ];
        let mut offsets = Vec::new();
        for (i, o) in objs.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = pdf.len();
        pdf.extend_from_slice(b"xref\n0 5\n0000000000 65535 f\r\n");
        for o in offsets {
            pdf.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
        }
        pdf.extend_from_slice(
            format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
        );
        pdf
    }

    pub(crate) fn info() -> SignatureInfo {
        SignatureInfo {
            kind: SignatureKind::Cades,
            time: time::OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap(),
            reason: Some("Phê duyệt".into()),
            location: None,
            name: None,
            reserve: 64,
            appearance: None,
            certify: None,
        }
    }

    #[test]
    fn a_new_revision_keeps_the_original_bytes_and_its_byte_range_skips_only_contents() {
        let pdf = minimal();
        let p = prepare(pdf.clone(), &info(), "kyso-1").unwrap();
        assert!(
            p.pdf.starts_with(&pdf),
            "incremental: the original is untouched"
        );
        let [a, b] = p.signed_ranges();
        assert_eq!(a.len() + b.len() + 2 + 128, p.pdf.len());
        let text = String::from_utf8_lossy(&p.pdf[pdf.len()..]).to_string();
        assert!(text.contains("/SubFilter /ETSI.CAdES.detached"), "{text}");
        assert!(
            text.contains(&format!(
                "/ByteRange [0 {:>10} {:>10} {:>10}]",
                a.len(),
                a.len() + 130,
                b.len()
            )),
            "{text}"
        );
        assert!(text.contains("/Prev "), "{text}");
        assert!(text.contains("/Annots [6 0 R]"), "{text}");
        assert!(
            text.contains("/AcroForm << /Fields [6 0 R] /SigFlags 3 >>"),
            "{text}"
        );
        // The new revision parses: its xref points at its objects.
        let x = read_xref(&p.pdf).unwrap();
        assert_eq!(x.trailer.get(b"Size"), Some(&Obj::Int(7)));
        let sig = x.object(&p.pdf, 5).unwrap();
        assert_eq!(
            sig.get(b"Filter"),
            Some(&Obj::Name(b"Adobe.PPKLite".to_vec()))
        );
        let done = p.finish(&[0x30, 0x03, 0x02, 0x01, 0x05]).unwrap();
        assert!(String::from_utf8_lossy(&done).contains("/Contents <3003020105000000"));
    }

    /// The DER items a /DSS array lists, read back from the file.
    fn dss_items(pdf: &[u8], key: &[u8]) -> Vec<Vec<u8>> {
        let x = read_xref(pdf).unwrap();
        let Some(Obj::Ref(root, _)) = x.trailer.get(b"Root") else {
            panic!("no root")
        };
        let catalog = x.object(pdf, *root).unwrap();
        let dss = x.resolve(pdf, catalog.get(b"DSS").unwrap()).unwrap();
        let Some(Obj::Array(refs)) = dss.get(key) else {
            return Vec::new();
        };
        refs.iter()
            .map(|r| {
                let Obj::Ref(n, _) = r else {
                    panic!("not a ref")
                };
                let (off, _) = x.offsets[n];
                let text = &pdf[off..];
                let start = text.windows(7).position(|w| w == b"stream\n").unwrap() + 7;
                let end = text.windows(10).position(|w| w == b"\nendstream").unwrap();
                text[start..end].to_vec()
            })
            .collect()
    }

    #[test]
    fn a_dss_revision_adds_its_items_and_keeps_what_was_there() {
        let signed = prepare(minimal(), &info(), "kyso-1")
            .unwrap()
            .finish(&[0x30, 0x00])
            .unwrap();
        let (cert, ocsp, crl) = (
            &[0x30, 0x01, 0xaa][..],
            &[0x30, 0x01, 0xbb][..],
            &[0x30, 0x01, 0xcc][..],
        );
        let once = append_dss(
            signed.clone(),
            &Dss {
                certs: vec![cert, cert],
                ocsps: vec![ocsp],
                crls: vec![crl],
            },
        )
        .unwrap();
        assert!(
            once.starts_with(&signed),
            "incremental: the signed bytes are untouched"
        );
        assert_eq!(
            dss_items(&once, b"Certs"),
            vec![cert.to_vec()],
            "duplicates once"
        );
        assert_eq!(dss_items(&once, b"OCSPs"), vec![ocsp.to_vec()]);
        assert_eq!(dss_items(&once, b"CRLs"), vec![crl.to_vec()]);
        // The catalog keeps what it had (the signature's AcroForm).
        let text = String::from_utf8_lossy(&once[signed.len()..]).to_string();
        assert!(
            text.contains("/AcroForm << /Fields [6 0 R] /SigFlags 3 >>"),
            "{text}"
        );
        let other = &[0x30, 0x01, 0xdd][..];
        let twice = append_dss(
            once,
            &Dss {
                certs: vec![other],
                ..Dss::default()
            },
        )
        .unwrap();
        assert_eq!(
            dss_items(&twice, b"Certs"),
            vec![cert.to_vec(), other.to_vec()]
        );
        assert_eq!(dss_items(&twice, b"CRLs"), vec![crl.to_vec()]);
    }

    #[test]
    fn a_document_time_stamp_has_its_own_type_and_subfilter_and_no_signing_time() {
        let info = SignatureInfo {
            kind: SignatureKind::DocTimeStamp,
            ..info()
        };
        let p = prepare(minimal(), &info, "kyso-ts").unwrap();
        let text = String::from_utf8_lossy(&p.pdf[minimal().len()..]).to_string();
        assert!(
            text.contains("/Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161"),
            "{text}"
        );
        assert!(!text.contains("/M <"), "{text}");
        assert!(!text.contains("/Reason"), "{text}");
    }

    #[test]
    fn hostile_cross_references_are_bounded() {
        let pdf = minimal();
        let text = String::from_utf8(pdf.clone()).unwrap();
        // first + count past u64 (or the object bound): refused, not wrapped.
        let huge = text.replace(
            "xref\n0 5\n",
            "xref\n9999999999999999999 9999999999999999999\n",
        );
        assert_eq!(
            prepare(huge.into_bytes(), &info(), "f").err(),
            Some(PdfError::Malformed("too many objects"))
        );
        // A /Prev pointing into the white space before the same section: a loop.
        let xref_at = text.find("xref").unwrap();
        let looped = text.replace(
            "/Size 5 /Root 1 0 R",
            &format!("/Size 5 /Root 1 0 R /Prev {:<9}", xref_at - 1),
        );
        assert_eq!(
            prepare(looped.into_bytes(), &info(), "f").err(),
            Some(PdfError::Malformed("bad cross-reference chain"))
        );
        // An xref stream that declares more entries than its data holds.
        let mut b = Budget::default();
        let stream = b"1 0 obj\n<< /Type /XRef /W [1 2 1] /Index [0 8000000] /Size 8000000 /Length 4 >>\nstream\n\x01\x00\x0a\x00\nendstream\nendobj\n";
        assert_eq!(
            read_xref_stream(
                stream,
                0,
                &mut Default::default(),
                &mut Default::default(),
                &mut Default::default(),
                &mut b
            )
            .err(),
            Some(PdfError::Malformed("short cross-reference stream"))
        );
        // A dictionary with more parts than any real one.
        let wide = format!("<< /A [{}] >>", "0 ".repeat(MAX_NODES + 1));
        assert!(Lexer::at(wide.as_bytes(), 0).object(0).is_err());
    }

    #[test]
    fn a_flate_bomb_stops_at_its_bound() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_DECOMPRESSED >> 20) + 1 {
            z.write_all(&zeros).unwrap();
        }
        let bomb = z.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        assert_eq!(
            inflate(&bomb).err(),
            Some(PdfError::Malformed(
                "a stream decompresses to more than 64 MiB"
            ))
        );
        // Streams under the per-stream bound still add up against the whole parse.
        let mut b = Budget::default();
        b.inflated((MAX_INFLATED_TOTAL - 10) as usize).unwrap();
        assert!(b.inflated(11).is_err());
    }

    #[test]
    fn new_objects_take_numbers_above_every_one_in_use_whatever_size_says() {
        let text = String::from_utf8(minimal())
            .unwrap()
            .replace("/Size 5", "/Size 2");
        let p = prepare(text.into_bytes(), &info(), "f").unwrap();
        let tail = String::from_utf8_lossy(&p.pdf).to_string();
        assert!(tail.contains("5 0 obj\n<< /Type /Sig"), "{tail}");
        assert!(tail.contains("/V 5 0 R"));
    }

    #[test]
    fn hex_strings_skip_white_space_and_pad_an_odd_digit() {
        assert_eq!(decode_hex(b"4 1\n42 4"), Some(vec![0x41, 0x42, 0x40]));
        assert_eq!(decode_hex(b""), Some(vec![]));
        assert_eq!(decode_hex(b"4g"), None);
    }

    #[test]
    fn refusals_are_named() {
        assert_eq!(
            prepare(b"hello".to_vec(), &info(), "f").err(),
            Some(PdfError::NotPdf)
        );
        let pdf = minimal();
        assert!(matches!(
            prepare(pdf[..pdf.len() - 30].to_vec(), &info(), "f"),
            Err(PdfError::Malformed(_))
        ));
        let enc = String::from_utf8(pdf.clone())
            .unwrap()
            .replace("/Size 5 /Root 1 0 R", "/Size 5 /Root 1 0 R /Encrypt 9 0 R");
        assert_eq!(
            prepare(enc.clone().into_bytes(), &info(), "f").err(),
            Some(PdfError::Encrypted)
        );
        let p = prepare(pdf.clone(), &info(), "f").unwrap();
        assert_eq!(p.finish(&[0u8; 65]).err(), Some(PdfError::TooLarge(65)));
        // A page tree that points at itself.
        let circular = String::from_utf8(pdf)
            .unwrap()
            .replace("/Kids [3 0 R]", "/Kids [2 0 R]");
        assert!(prepare(circular.into_bytes(), &info(), "f").is_err());
    }
}
