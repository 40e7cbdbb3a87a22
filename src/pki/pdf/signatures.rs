//! Reading a signed PDF for verification (ISO 32000-1 §12.8, ETSI EN 319 142-1): every
//! signature field's signature or document time-stamp with its `/ByteRange` checked (it must
//! start at 0 and skip exactly the `/Contents` hex string), the revision it covers (the whole
//! file, or a revision that later ones extend), and what those later revisions changed,
//! classified object by object against the revision that was signed.
//!
//! The classification: an object the signed revision did not have is judged by what refers to
//! it (a new signature widget from a page's `/Annots` is a signature, a new content stream from
//! a page's `/Contents` is "other"); an object it had is judged by its role and by which of its
//! keys changed (a page whose `/Annots` gained a signature widget, a form field whose value
//! changed, the catalog gaining a `/DSS`). A new object nothing changed refers to is "other":
//! it could be the target of a reference the signed revision left dangling.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Serialize;

use super::{read_xref, Obj, PdfError, Xref, MAX_DEPTH};

/// Most signatures and document time-stamps read from one file.
pub const MAX_SIGNATURES: usize = 64;
/// Most form fields visited.
const MAX_FIELDS: usize = 10_000;
/// Most changed objects classified after one signature; beyond, the change is "other".
const MAX_CHANGED: usize = 100_000;
/// Most items read from each array of the document security store.
const MAX_DSS_ITEMS: usize = 256;

/// What later revisions changed, least to most (ETSI EN 319 142-1 and ISO 32000-1 §12.8.2.2's
/// DocMDP levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Nothing: the signature covers the whole file.
    None,
    /// Validation data only: the document security store and document time-stamps.
    ValidationData,
    /// Signatures, and validation data.
    Signatures,
    /// Form fields filled in, and signatures.
    FormFilling,
    /// Annotations added, changed or removed, and form filling.
    Annotations,
    /// Anything else: the document shown may differ from the one signed.
    Other,
}

impl Change {
    /// The changes DocMDP permission `p` allows (1: none but validation data, 2: form filling
    /// and signing, 3: also annotations).
    pub fn allowed_by_docmdp(p: u8) -> Self {
        match p {
            1 => Change::ValidationData,
            3 => Change::Annotations,
            _ => Change::FormFilling,
        }
    }
}

/// One signature (or document time-stamp) found in a PDF.
#[derive(Debug, Clone)]
pub struct FoundSignature {
    /// The field's fully qualified name.
    pub field: String,
    /// A document time-stamp (`/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`).
    pub time_stamp: bool,
    pub sub_filter: String,
    /// The CMS (or time-stamp token), DER, without the placeholder's padding.
    pub contents: Vec<u8>,
    pub byte_range: [usize; 4],
    /// The byte range ends at the end of the file.
    pub whole_file: bool,
    /// The revision it covers, counting from 1.
    pub revision: usize,
    /// What the revisions after it changed, and how.
    pub changes: Change,
    pub change_notes: Vec<String>,
    /// DocMDP permissions of a certification signature.
    pub certification: Option<u8>,
    /// `/M`, `/Reason`, `/Location`, `/Name` as written (claims, not proof).
    pub claimed_time: Option<String>,
    pub reason: Option<String>,
    pub location: Option<String>,
    pub name: Option<String>,
    /// Why the signature's placement in the file is wrong (a FORMAT_FAILURE), if it is.
    pub problem: Option<String>,
}

/// The document security store's validation data (DER).
#[derive(Debug, Clone, Default)]
pub struct DssItems {
    pub certs: Vec<Vec<u8>>,
    pub ocsps: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
}

/// What a signed PDF holds for verification.
#[derive(Debug, Clone)]
pub struct SignedPdf {
    /// In the order of the revisions they cover.
    pub signatures: Vec<FoundSignature>,
    pub revisions: usize,
    pub dss: DssItems,
    /// The catalog's `/Perms /DocMDP` names a signature.
    pub docmdp_in_catalog: bool,
}

/// Reads the signatures of `pdf`; see the module documentation. An unreadable file is an
/// error; a signature whose placement is wrong is reported in its `problem`.
pub fn read_signatures(pdf: &[u8]) -> Result<SignedPdf, PdfError> {
    if !pdf[..pdf.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Err(PdfError::NotPdf);
    }
    let xref = read_xref(pdf)?;
    let catalog = match xref.trailer.get(b"Root") {
        Some(Obj::Ref(n, _)) => xref.object(pdf, *n)?,
        _ => return Err(PdfError::Malformed("no /Root")),
    };
    let ends = revision_ends(pdf);
    let mut fields = Vec::new();
    if let Some(form) = catalog.get(b"AcroForm") {
        let form = xref.resolve(pdf, form)?;
        if let Some(list) = form.get(b"Fields") {
            signature_fields(pdf, &xref, list, &mut fields)?;
        }
    }
    let mut signatures = Vec::new();
    for (field, value) in fields {
        let sig = xref.resolve(pdf, &value)?;
        signatures.push(found(pdf, &xref, &ends, field, &sig)?);
    }
    signatures.sort_by_key(|s| s.byte_range[2] + s.byte_range[3]);
    let dss = match catalog.get(b"DSS") {
        Some(d) => dss_items(pdf, &xref, &xref.resolve(pdf, d)?)?,
        None => DssItems::default(),
    };
    let docmdp_in_catalog = catalog
        .get(b"Perms")
        .and_then(|p| xref.resolve(pdf, p).ok())
        .is_some_and(|p| p.get(b"DocMDP").is_some());
    Ok(SignedPdf {
        signatures,
        revisions: ends.len().max(1),
        dss,
        docmdp_in_catalog,
    })
}

/// The digest of the bytes `byte_range` covers (checked by [`read_signatures`]).
pub fn range_digest(
    pdf: &[u8],
    byte_range: &[usize; 4],
    algorithm: crate::pki::cms::DigestAlgorithm,
) -> Vec<u8> {
    let [a, la, b, lb] = *byte_range;
    let mut ctx = ring::digest::Context::new(algorithm.ring());
    ctx.update(&pdf[a..a + la]);
    ctx.update(&pdf[b..b + lb]);
    ctx.finish().as_ref().to_vec()
}

/// The digests of several byte ranges of one file, each `[0, a, b, l]` (as
/// [`read_signatures`] checks them) with its algorithm. Every first range starts at 0 and a
/// later signature's runs further, so the ranges share the hashing of what they have in
/// common: a file signed N times is hashed about once, not N times.
pub fn range_digests(
    pdf: &[u8],
    ranges: &[([usize; 4], crate::pki::cms::DigestAlgorithm)],
) -> Vec<Vec<u8>> {
    use crate::pki::cms::DigestAlgorithm as D;
    let mut out = vec![Vec::new(); ranges.len()];
    for algorithm in [D::Sha256, D::Sha384, D::Sha512] {
        let mut order: Vec<usize> = (0..ranges.len())
            .filter(|&i| ranges[i].1 == algorithm)
            .collect();
        order.sort_by_key(|&i| ranges[i].0[1]);
        let mut running = ring::digest::Context::new(algorithm.ring());
        let mut at = 0;
        for i in order {
            let [_, la, b, lb] = ranges[i].0;
            running.update(&pdf[at..la]);
            at = la;
            let mut ctx = running.clone();
            ctx.update(&pdf[b..b + lb]);
            out[i] = ctx.finish().as_ref().to_vec();
        }
    }
    out
}

/// Where each revision ends: just after its `%%EOF`, and after the end-of-line that follows
/// it (a byte range may end at either).
fn revision_ends(pdf: &[u8]) -> Vec<(usize, usize)> {
    memchr::memmem::find_iter(pdf, b"%%EOF")
        .map(|p| {
            let end = p + 5;
            let eol = match pdf.get(end..end + 2) {
                Some(b"\r\n") => 2,
                _ if matches!(pdf.get(end), Some(b'\n' | b'\r')) => 1,
                _ => 0,
            };
            (end, end + eol)
        })
        .take(super::MAX_SECTIONS * 4)
        .collect()
}

/// A PDF date (`D:YYYYMMDDHHmmSS` then `Z` or `+HH'mm'`, ISO 32000-1 §7.9.4; later parts
/// optional) as Unix seconds.
pub fn pdf_date_unix(s: &str) -> Option<i64> {
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 4 || digits.len() > 14 || !digits.len().is_multiple_of(2) {
        return None;
    }
    let part = |r: std::ops::Range<usize>, default: u8| -> Option<u8> {
        digits.get(r).map_or(Some(default), |p| p.parse().ok())
    };
    let year: i32 = digits[..4].parse().ok()?;
    let date = time::Date::from_calendar_date(
        year,
        time::Month::try_from(part(4..6, 1)?).ok()?,
        part(6..8, 1)?,
    )
    .ok()?;
    let t = time::Time::from_hms(part(8..10, 0)?, part(10..12, 0)?, part(12..14, 0)?).ok()?;
    let rest = &s[digits.len()..];
    let offset = match rest.chars().next() {
        Some(sign @ ('+' | '-')) => {
            let hm: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let h: i64 = hm.get(..2)?.parse().ok()?;
            let m: i64 = hm.get(2..4).map_or(Some(0), |x| x.parse().ok())?;
            let secs = h * 3600 + m * 60;
            if sign == '+' {
                secs
            } else {
                -secs
            }
        }
        _ => 0,
    };
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp()
            - offset,
    )
}

fn text(o: Option<&Obj>) -> Option<String> {
    match o? {
        Obj::Str(s) if s.starts_with(&[0xfe, 0xff]) => {
            let units: Vec<u16> = s[2..]
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        Obj::Str(s) | Obj::Name(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// Whether a dictionary is an annotation: typed so, or with a subtype and a rectangle.
fn is_annotation(o: &Obj) -> bool {
    is_name(o.get(b"Type"), b"Annot") || (o.get(b"Subtype").is_some() && o.get(b"Rect").is_some())
}

fn is_name(o: Option<&Obj>, name: &[u8]) -> bool {
    matches!(o, Some(Obj::Name(n)) if n == name)
}

/// The signature fields with a value under `list` (the AcroForm's `/Fields` or a field's
/// `/Kids`), with their qualified names, depth first.
fn signature_fields(
    pdf: &[u8],
    xref: &Xref,
    list: &Obj,
    out: &mut Vec<(String, Obj)>,
) -> Result<(), PdfError> {
    // (field, its parent's qualified name, the inherited field type, depth)
    let mut stack: Vec<(Obj, String, bool, usize)> = match xref.resolve(pdf, list)? {
        Obj::Array(v) => v
            .into_iter()
            .rev()
            .map(|f| (f, String::new(), false, 0))
            .collect(),
        _ => return Err(PdfError::Malformed("bad /Fields")),
    };
    let mut seen = HashSet::new();
    while let Some((node, parent, inherited_sig, depth)) = stack.pop() {
        if let Obj::Ref(n, _) = node {
            if !seen.insert(n) {
                continue;
            }
        }
        if depth > MAX_DEPTH || seen.len() > MAX_FIELDS {
            return Err(PdfError::Malformed(
                "the form's field tree is too deep or too large",
            ));
        }
        let field = xref.resolve(pdf, &node)?;
        let is_sig = match field.get(b"FT") {
            Some(ft) => is_name(Some(ft), b"Sig"),
            None => inherited_sig,
        };
        let name = match (text(field.get(b"T")), parent.is_empty()) {
            (Some(t), true) => t,
            (Some(t), false) => format!("{parent}.{t}"),
            (None, _) => parent.clone(),
        };
        if is_sig {
            if let Some(v) = field.get(b"V") {
                if out.len() >= MAX_SIGNATURES {
                    return Err(PdfError::Malformed("too many signatures"));
                }
                out.push((name.clone(), v.clone()));
            }
        }
        if let Some(kids) = field.get(b"Kids") {
            if let Obj::Array(kids) = xref.resolve(pdf, kids)? {
                for k in kids.into_iter().rev() {
                    stack.push((k, name.clone(), is_sig, depth + 1));
                }
            }
        }
    }
    Ok(())
}

/// One signature dictionary, its byte range checked and its revision's later changes read.
fn found(
    pdf: &[u8],
    xref: &Xref,
    ends: &[(usize, usize)],
    field: String,
    sig: &Obj,
) -> Result<FoundSignature, PdfError> {
    let time_stamp = is_name(sig.get(b"Type"), b"DocTimeStamp");
    let mut f = FoundSignature {
        field,
        time_stamp,
        sub_filter: text(sig.get(b"SubFilter")).unwrap_or_default(),
        contents: Vec::new(),
        byte_range: [0; 4],
        whole_file: false,
        revision: 0,
        changes: Change::None,
        change_notes: Vec::new(),
        certification: certification(pdf, xref, sig),
        claimed_time: text(sig.get(b"M")),
        reason: text(sig.get(b"Reason")),
        location: text(sig.get(b"Location")),
        name: text(sig.get(b"Name")),
        problem: None,
    };
    let contents = match sig.get(b"Contents") {
        Some(Obj::Str(c)) => c.as_slice(),
        _ => {
            f.problem = Some("the signature dictionary has no /Contents string".into());
            return Ok(f);
        }
    };
    // The placeholder is padded with zeros after the DER.
    match crate::pki::der::split_tlv(contents) {
        Some((der, _, _)) => f.contents = der.to_vec(),
        None => {
            f.problem = Some("/Contents does not hold a DER signature".into());
            return Ok(f);
        }
    }
    let range: Vec<usize> = match sig.get(b"ByteRange") {
        Some(Obj::Array(v)) => v
            .iter()
            .filter_map(|x| match x {
                Obj::Int(i) if *i >= 0 => usize::try_from(*i).ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let [a, la, b, lb] = match range.as_slice() {
        [a, la, b, lb] => [*a, *la, *b, *lb],
        _ => {
            f.problem = Some("the /ByteRange is not four non-negative integers".into());
            return Ok(f);
        }
    };
    f.byte_range = [a, la, b, lb];
    let end = b.checked_add(lb).filter(|e| *e <= pdf.len());
    let Some(end) = end.filter(|_| a == 0 && la < b) else {
        f.byte_range = [0; 4];
        f.problem =
            Some("the /ByteRange does not start at 0, overlaps or runs past the end".into());
        return Ok(f);
    };
    // What the range leaves out must be exactly this signature's /Contents hex string.
    let gap = &pdf[la..b];
    let hex_ok = gap.len() >= 2
        && gap[0] == b'<'
        && gap[gap.len() - 1] == b'>'
        && hex_spells(&gap[1..gap.len() - 1], contents);
    if !hex_ok {
        f.problem = Some(
            "the /ByteRange leaves out more than the signature's /Contents: bytes are not covered"
                .into(),
        );
        return Ok(f);
    }
    f.whole_file = end == pdf.len();
    let revision = ends.iter().position(|(e, eol)| end == *e || end == *eol);
    f.revision = match (revision, f.whole_file) {
        (Some(i), _) => i + 1,
        (None, true) => ends.len() + 1,
        (None, false) => {
            f.problem = Some("the /ByteRange ends inside a revision, not at its end".into());
            return Ok(f);
        }
    };
    if !f.whole_file {
        let (level, notes) = changes_since(pdf, xref, end)?;
        f.changes = level;
        f.change_notes = notes;
    }
    Ok(f)
}

/// Whether `hex` is hex digits that spell exactly `bytes` (no copy is made: a placeholder is
/// tens of kilobytes).
fn hex_spells(hex: &[u8], bytes: &[u8]) -> bool {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    hex.len() == 2 * bytes.len()
        && hex.chunks_exact(2).zip(bytes).all(|(pair, b)| {
            matches!((nibble(pair[0]), nibble(pair[1])), (Some(h), Some(l)) if (h << 4 | l) == *b)
        })
}

/// The DocMDP permissions of a certification signature (its `/Reference`), 2 if unstated.
fn certification(pdf: &[u8], xref: &Xref, sig: &Obj) -> Option<u8> {
    let resolve = |o: &Obj| xref.resolve(pdf, o).ok();
    let Some(Obj::Array(refs)) = sig.get(b"Reference").and_then(resolve) else {
        return None;
    };
    refs.iter()
        .take(16)
        .filter_map(resolve)
        .find(|r| is_name(r.get(b"TransformMethod"), b"DocMDP"))
        .map(|r| {
            match r
                .get(b"TransformParams")
                .and_then(resolve)
                .and_then(|p| p.get(b"P").and_then(resolve))
            {
                Some(Obj::Int(p @ 1..=3)) => p as u8,
                _ => 2,
            }
        })
}

fn dss_items(pdf: &[u8], xref: &Xref, dss: &Obj) -> Result<DssItems, PdfError> {
    let list = |key: &[u8]| -> Result<Vec<Vec<u8>>, PdfError> {
        let Some(arr) = dss.get(key) else {
            return Ok(Vec::new());
        };
        let Obj::Array(items) = xref.resolve(pdf, arr)? else {
            return Err(PdfError::Malformed("bad /DSS array"));
        };
        let mut out = Vec::new();
        for item in items.iter().take(MAX_DSS_ITEMS) {
            if let Obj::Ref(n, _) = item {
                if let Ok(data) = stream_of(pdf, xref, *n) {
                    out.push(data);
                }
            }
        }
        Ok(out)
    };
    Ok(DssItems {
        certs: list(b"Certs")?,
        ocsps: list(b"OCSPs")?,
        crls: list(b"CRLs")?,
    })
}

/// The decoded data of stream object `n`.
fn stream_of(pdf: &[u8], xref: &Xref, n: u32) -> Result<Vec<u8>, PdfError> {
    let mut lx = xref.located(pdf, n)?;
    let dict = lx.object(0)?;
    super::stream_data(pdf, &mut lx, &dict, &mut xref.budget.borrow_mut())
}

/// Where an object lives in a cross-reference: at an offset, or in an object stream.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Location {
    At(usize),
    In(u32, usize),
}

fn location(x: &Xref, n: u32) -> Option<Location> {
    // In the order `Xref::object` reads them: an object stream entry first.
    x.compressed
        .get(&n)
        .map(|(s, i)| Location::In(*s, *i))
        .or_else(|| x.offsets.get(&n).map(|(o, _)| Location::At(*o)))
}

/// The keys whose values differ between two dictionaries.
fn differing_keys(old: &Obj, new: &Obj) -> Vec<Vec<u8>> {
    let (Obj::Dict(a), Obj::Dict(b)) = (old, new) else {
        return vec![b"(type)".to_vec()];
    };
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for (k, v) in a {
        if new.get(k) != Some(v) {
            keys.push(k.clone());
        }
    }
    for (k, _) in b {
        if old.get(k).is_none() && !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

fn names(keys: &[Vec<u8>]) -> String {
    keys.iter()
        .map(|k| format!("/{}", String::from_utf8_lossy(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn refs_in(o: &Obj, out: &mut Vec<u32>) {
    match o {
        Obj::Ref(n, _) => out.push(*n),
        Obj::Array(v) => v.iter().for_each(|x| refs_in(x, out)),
        Obj::Dict(d) => d.iter().for_each(|(_, x)| refs_in(x, out)),
        _ => {}
    }
}

/// The comparison of the signed revision with the file as it is now.
struct Diff<'a> {
    pdf: &'a [u8],
    old: Xref,
    new: &'a Xref,
    /// Objects the signed revision did not have, with their values now.
    added: HashMap<u32, Obj>,
    /// The document security store's dictionary, arrays and VRI dictionaries, now and in
    /// the signed revision (an existing object counts as DSS only if it was one).
    dss: HashSet<u32>,
    old_dss: HashSet<u32>,
    /// The form's fields now (the AcroForm's /Fields and their kids): a signature widget must
    /// be one.
    fields_now: HashSet<u32>,
}

impl Diff<'_> {
    /// An object's value now (a reference resolved once).
    fn now(&self, o: &Obj) -> Option<Obj> {
        self.new.resolve(self.pdf, o).ok()
    }

    fn is_sig_field(&self, field: &Obj) -> bool {
        let mut node = field.clone();
        for _ in 0..MAX_DEPTH {
            if let Some(ft) = node.get(b"FT") {
                return is_name(Some(ft), b"Sig");
            }
            match node.get(b"Parent").and_then(|p| self.now(p)) {
                Some(p) => node = p,
                None => return false,
            }
        }
        false
    }

    /// What a new entry of a page's `/Annots` or the form's `/Fields` is.
    fn new_entry(&self, entry: &Obj) -> Change {
        let Some(o) = self.now(entry) else {
            return Change::Other;
        };
        if self.is_sig_field(&o) {
            if matches!(entry, Obj::Ref(n, _) if !self.fields_now.contains(n)) {
                // A signature widget that no field lists signs nothing: only its look.
                return Change::Other;
            }
            let is_ts = o
                .get(b"V")
                .and_then(|v| self.now(v))
                .is_some_and(|v| is_name(v.get(b"Type"), b"DocTimeStamp"));
            return if is_ts {
                Change::ValidationData
            } else {
                Change::Signatures
            };
        }
        let is_annot = is_annotation(&o);
        let is_widget = is_name(o.get(b"Subtype"), b"Widget") || o.get(b"FT").is_some();
        if is_annot && !is_widget {
            Change::Annotations
        } else {
            // A new form field (not a signature) is not form filling.
            Change::Other
        }
    }

    /// Entries added to or removed from an array of references (`/Annots`, `/Fields`).
    fn array_change(&self, old: &[Obj], new: &[Obj]) -> Change {
        let mut level = Change::None;
        for e in new.iter().filter(|e| !old.contains(e)) {
            level = level.max(self.new_entry(e));
        }
        if old.iter().any(|e| !new.contains(e)) {
            level = level.max(Change::Annotations);
        }
        level
    }

    /// A dictionary the signed revision had, changed in `keys`.
    fn changed_existing(&self, n: u32, old: &Obj, new: &Obj, root: u32) -> (Change, String) {
        let keys = differing_keys(old, new);
        let only = |allowed: &[&[u8]]| keys.iter().all(|k| allowed.contains(&k.as_slice()));
        let array = |key: &[u8]| match (old.get(key), new.get(key)) {
            (Some(Obj::Array(a)), Some(Obj::Array(b))) => self.array_change(a, b),
            (None, Some(Obj::Array(b))) => self.array_change(&[], b),
            (a, b) if a == b => Change::None,
            _ => Change::Other,
        };
        if self.dss.contains(&n) && self.old_dss.contains(&n) {
            return (
                Change::ValidationData,
                format!("the document security store (object {n}) changed"),
            );
        }
        if let (Obj::Array(a), Obj::Array(b)) = (old, new) {
            // Only an array of annotations or fields (an indirect /Annots or /Fields) may
            // gain entries; any other array (/Contents, /Kids, …) changed is "other".
            let of_annotations = !a.is_empty()
                && a.iter().all(|e| {
                    self.old
                        .resolve(self.pdf, e)
                        .is_ok_and(|o| is_annotation(&o) || o.get(b"FT").is_some())
                });
            let level = if of_annotations {
                self.array_change(a, b)
            } else {
                Change::Other
            };
            return (level, format!("array {n}: entries changed"));
        }
        if n == root {
            if !only(&[b"DSS", b"AcroForm", b"Extensions", b"Metadata", b"Version"]) {
                return (
                    Change::Other,
                    format!("the catalog changed: {}", names(&keys)),
                );
            }
            let form = match (old.get(b"AcroForm"), new.get(b"AcroForm")) {
                (Some(a @ Obj::Dict(_)), Some(b @ Obj::Dict(_))) => self.form_change(a, b),
                (None, Some(b @ Obj::Dict(_))) => self.form_change(&Obj::Dict(Vec::new()), b),
                (a, b) if a == b => Change::None,
                (None, Some(Obj::Ref(..))) => Change::Signatures,
                _ => Change::Other,
            };
            let level = if keys.iter().any(|k| k != b"AcroForm") {
                Change::ValidationData.max(form)
            } else {
                form
            };
            return (level, format!("the catalog changed: {}", names(&keys)));
        }
        if is_name(new.get(b"Type"), b"Page") {
            if !only(&[b"Annots"]) {
                return (
                    Change::Other,
                    format!("page object {n} changed: {}", names(&keys)),
                );
            }
            return (
                array(b"Annots"),
                format!("page object {n}: annotations changed"),
            );
        }
        if new.get(b"Fields").is_some() || old.get(b"Fields").is_some() {
            return (
                self.form_change(old, new),
                format!("the form (object {n}) changed"),
            );
        }
        // The role is the one the object had when signed, not what its new keys claim.
        let is_field = old.get(b"FT").is_some()
            || (is_name(old.get(b"Subtype"), b"Widget") && old.get(b"Parent").is_some());
        if is_field && self.is_sig_field(new) {
            // Signing an empty signature field: its value, appearance and flags.
            let signs_empty = old.get(b"V").is_none() && only(&[b"V", b"AP", b"AS", b"F", b"MK"]);
            let level = if signs_empty {
                self.new_entry(&Obj::Ref(n, 0))
            } else {
                Change::Other
            };
            return (
                level,
                format!("signature field {n} changed: {}", names(&keys)),
            );
        }
        if is_field {
            let level = if only(&[b"V", b"AS", b"AP", b"MK"]) {
                Change::FormFilling
            } else {
                Change::Other
            };
            return (level, format!("form field {n} changed: {}", names(&keys)));
        }
        if is_annotation(old) {
            return (Change::Annotations, format!("annotation {n} changed"));
        }
        (
            Change::Other,
            format!("object {n} changed: {}", names(&keys)),
        )
    }

    /// The AcroForm dictionary: fields added (signatures, or not) and its signature flags and
    /// default resources.
    fn form_change(&self, old: &Obj, new: &Obj) -> Change {
        let keys = differing_keys(old, new);
        if !keys.iter().all(|k| {
            [
                &b"Fields"[..],
                b"SigFlags",
                b"DR",
                b"DA",
                b"NeedAppearances",
            ]
            .contains(&k.as_slice())
        }) {
            return Change::Other;
        }
        let fields = match (old.get(b"Fields"), new.get(b"Fields")) {
            (Some(Obj::Array(a)), Some(Obj::Array(b))) => self.array_change(a, b),
            (None, Some(Obj::Array(b))) => self.array_change(&[], b),
            (a, b) if a == b => Change::None,
            _ => Change::Other,
        };
        // Removing a field is not an annotation change.
        if let (Some(Obj::Array(a)), Some(Obj::Array(b))) = (old.get(b"Fields"), new.get(b"Fields"))
        {
            if a.iter().any(|e| !b.contains(e)) {
                return Change::Other;
            }
        }
        // Default appearances change how fields look: form filling at least; asking viewers
        // to redraw every field is more.
        let looks = if keys.iter().any(|k| k == b"NeedAppearances") {
            Change::Other
        } else if keys.iter().any(|k| k == b"DA" || k == b"DR") {
            Change::FormFilling
        } else {
            Change::ValidationData
        };
        fields.max(looks)
    }
}

/// What changed in an object the signed revision had: the values of the keys that differ, or
/// the entries an array gained. Only these bring new objects in; a reference the signed
/// revision already held (perhaps dangling) does not.
fn changed_part(before: &Obj, now: Obj) -> Obj {
    match (before, now) {
        (Obj::Dict(_), Obj::Dict(d)) => Obj::Dict(
            d.into_iter()
                .filter(|(k, v)| before.get(k) != Some(v))
                .collect(),
        ),
        (Obj::Array(a), Obj::Array(b)) => {
            Obj::Array(b.into_iter().filter(|e| !a.contains(e)).collect())
        }
        (_, now) => now,
    }
}

/// The objects of the document security store now: its dictionary, its arrays and its VRI
/// dictionaries.
fn dss_objects(diff: &Diff<'_>, xref: &Xref, root: u32) -> HashSet<u32> {
    let mut out = HashSet::new();
    let now = |o: &Obj| xref.resolve(diff.pdf, o).ok();
    let Ok(catalog) = xref.object(diff.pdf, root) else {
        return out;
    };
    let Some(dss_ref) = catalog.get(b"DSS") else {
        return out;
    };
    if let Obj::Ref(n, _) = dss_ref {
        out.insert(*n);
    }
    let Some(dss) = now(dss_ref) else {
        return out;
    };
    for key in [&b"Certs"[..], b"OCSPs", b"CRLs", b"VRI"] {
        if let Some(Obj::Ref(n, _)) = dss.get(key) {
            out.insert(*n);
        }
    }
    if let Some(Obj::Dict(vri)) = dss.get(b"VRI").and_then(now) {
        for (_, v) in vri.iter().take(MAX_DSS_ITEMS) {
            if let Obj::Ref(n, _) = v {
                out.insert(*n);
            }
        }
    }
    out
}

/// The form's fields now: the AcroForm's /Fields and their kids, by object number (bounded).
fn fields_of(diff: &Diff<'_>, root: u32) -> HashSet<u32> {
    let mut out = HashSet::new();
    let form = diff
        .new
        .object(diff.pdf, root)
        .ok()
        .and_then(|c| c.get(b"AcroForm").and_then(|f| diff.now(f)));
    let Some(Obj::Array(top)) = form.and_then(|f| f.get(b"Fields").and_then(|l| diff.now(l)))
    else {
        return out;
    };
    let mut stack: Vec<(Obj, usize)> = top.into_iter().map(|f| (f, 0)).collect();
    while let Some((f, depth)) = stack.pop() {
        let Obj::Ref(n, _) = f else { continue };
        if out.len() >= MAX_FIELDS || depth > MAX_DEPTH || !out.insert(n) {
            continue;
        }
        if let Some(Obj::Array(kids)) = diff
            .now(&f)
            .and_then(|d| d.get(b"Kids").and_then(|k| diff.now(k)))
        {
            stack.extend(kids.into_iter().map(|k| (k, depth + 1)));
        }
    }
    out
}

/// What the revisions after the one ending at `end` changed; `new` is the whole file's
/// cross-reference.
fn changes_since(pdf: &[u8], new: &Xref, end: usize) -> Result<(Change, Vec<String>), PdfError> {
    let old = read_xref(&pdf[..end])?;
    let mut changed: Vec<u32> = new
        .offsets
        .keys()
        .chain(new.compressed.keys())
        .copied()
        .filter(|n| location(new, *n) != location(&old, *n))
        .collect();
    // Objects the signed revision had and a later one freed (or left out).
    let deleted: Vec<u32> = old
        .offsets
        .keys()
        .chain(old.compressed.keys())
        .copied()
        .filter(|n| location(new, *n).is_none())
        .take(32)
        .collect();
    if changed.len() > MAX_CHANGED {
        return Ok((
            Change::Other,
            vec![format!("{} objects changed", changed.len())],
        ));
    }
    changed.sort_unstable();
    let root = match new.trailer.get(b"Root") {
        Some(Obj::Ref(n, _)) => *n,
        _ => return Err(PdfError::Malformed("no /Root")),
    };
    let info = match new.trailer.get(b"Info") {
        Some(Obj::Ref(n, _)) => Some(*n),
        _ => None,
    };
    let mut diff = Diff {
        pdf,
        old,
        new,
        added: HashMap::new(),
        dss: HashSet::new(),
        old_dss: HashSet::new(),
        fields_now: HashSet::new(),
    };
    diff.dss = dss_objects(&diff, new, root);
    diff.old_dss = dss_objects(&diff, &diff.old, root);
    diff.fields_now = fields_of(&diff, root);
    // The catalog's XMP metadata stream, the same object before and now.
    let metadata_of = |x: &Xref| match x.object(pdf, root).ok()?.get(b"Metadata") {
        Some(Obj::Ref(n, _)) => Some(*n),
        _ => None,
    };
    let metadata = metadata_of(new).filter(|n| metadata_of(&diff.old) == Some(*n));
    let mut level = if deleted.is_empty() {
        Change::None
    } else {
        Change::Other
    };
    let mut notes: Vec<String> = deleted
        .iter()
        .map(|n| format!("object {n} was deleted"))
        .collect();
    let mut note = |level: &mut Change, c: Change, text: String| {
        *level = (*level).max(c);
        if c > Change::ValidationData && notes.len() < 32 {
            notes.push(text);
        }
    };
    // (object, the change that brought it in) for new objects to reach.
    let mut queue: VecDeque<(Obj, Change)> = VecDeque::new();
    let mut existing = Vec::new();
    for &n in &changed {
        let (now, now_stream) = new.object_and_stream(pdf, n)?;
        match diff.old.object_and_stream(pdf, n) {
            Ok((before, before_stream)) => {
                if before == now && before_stream == now_stream {
                    continue; // moved, not changed
                }
                existing.push((n, before, now, before_stream != now_stream));
            }
            Err(_) => {
                // Structure, not content: only the streams the cross-reference really uses as
                // its sections and object streams (a content stream merely typed so is not).
                let is_section = is_name(now.get(b"Type"), b"XRef")
                    && new
                        .offsets
                        .get(&n)
                        .is_some_and(|(off, _)| new.sections.contains(off));
                let is_object_stream = is_name(now.get(b"Type"), b"ObjStm")
                    && new.compressed.values().any(|(stm, _)| *stm == n);
                if is_section || is_object_stream {
                    continue;
                }
                diff.added.insert(n, now);
            }
        }
    }
    // The document information dictionary may be updated in place (same object, only
    // strings): it is not rendered. Its references are not followed.
    let old_info = match diff.old.trailer.get(b"Info") {
        Some(Obj::Ref(n, _)) => Some(*n),
        _ => None,
    };
    let plain = |o: &Obj| {
        let mut refs = Vec::new();
        refs_in(o, &mut refs);
        matches!(o, Obj::Dict(_)) && refs.is_empty()
    };
    for (n, before, now, stream_changed) in existing {
        if Some(n) == info && info == old_info && !stream_changed && plain(&now) {
            note(
                &mut level,
                Change::ValidationData,
                "the document information changed".to_string(),
            );
            continue;
        }
        let (c, text) =
            if stream_changed && Some(n) == metadata && is_name(now.get(b"Type"), b"Metadata") {
                // Writers update the XMP packet (its modify date) with every revision.
                (
                    Change::ValidationData,
                    "the document's XMP metadata changed".to_string(),
                )
            } else if stream_changed {
                (Change::Other, format!("the data of stream {n} changed"))
            } else {
                diff.changed_existing(n, &before, &now, root)
            };
        note(&mut level, c, text);
        queue.push_back((changed_part(&before, now), c));
    }
    let new_info = info.filter(|n| diff.added.get(n).is_some_and(plain));
    // New objects take the change of what brought them in; a new field or annotation is
    // judged itself (a signature widget added by a page that also gained a note is a
    // signature).
    let mut reached: HashMap<u32, Change> = HashMap::new();
    if let Some(n) = new_info {
        reached.insert(n, Change::ValidationData);
    }
    while let Some((o, c)) = queue.pop_front() {
        let mut refs = Vec::new();
        refs_in(&o, &mut refs);
        for r in refs {
            let Some(value) = diff.added.get(&r) else {
                continue;
            };
            let own = if value.get(b"FT").is_some() || is_annotation(value) {
                diff.new_entry(&Obj::Ref(r, 0))
            } else {
                c
            }
            .max(Change::ValidationData);
            if reached.get(&r).is_some_and(|p| *p >= own) {
                continue;
            }
            reached.insert(r, own);
            queue.push_back((value.clone(), own));
        }
    }
    for n in diff.added.keys() {
        match reached.get(n) {
            Some(c) => note(&mut level, *c, format!("object {n} added")),
            None => note(
                &mut level,
                Change::Other,
                format!("object {n} was added but nothing changed refers to it"),
            ),
        }
    }
    Ok((level, notes))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{info, minimal};
    use super::super::{append_dss, prepare, Dss, SignatureInfo};
    use super::*;
    use crate::pki::cms::DigestAlgorithm;

    /// A stand-in for a CMS: any DER value fills the placeholder.
    const FAKE_CMS: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x07];

    fn signed(pdf: Vec<u8>, field: &str, info: &SignatureInfo) -> Vec<u8> {
        prepare(pdf, info, field)
            .unwrap()
            .finish(&FAKE_CMS)
            .unwrap()
    }

    #[test]
    fn two_signatures_are_found_with_their_coverage_and_what_came_after_each() {
        let once = signed(minimal(), "Official", &info());
        let twice = signed(once.clone(), "Seal", &info());
        let doc = read_signatures(&twice).unwrap();
        assert_eq!(doc.signatures.len(), 2);
        let (a, b) = (&doc.signatures[0], &doc.signatures[1]);
        assert_eq!((a.field.as_str(), b.field.as_str()), ("Official", "Seal"));
        assert_eq!(a.contents, FAKE_CMS);
        assert!(a.problem.is_none() && b.problem.is_none(), "{a:?} {b:?}");
        assert!(!a.whole_file && b.whole_file);
        assert_eq!((a.revision, b.revision), (2, 3));
        assert_eq!(a.changes, Change::Signatures, "{:?}", a.change_notes);
        assert_eq!(b.changes, Change::None);
        assert_eq!(a.reason.as_deref(), Some("Phê duyệt"));
        assert_eq!(a.byte_range[2] + a.byte_range[3], once.len());

        // One pass over shared prefixes gives each range's own digest.
        for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha384] {
            let ranges = [(b.byte_range, alg), (a.byte_range, alg)];
            let all = range_digests(&twice, &ranges);
            assert_eq!(all[0], range_digest(&twice, &b.byte_range, alg));
            assert_eq!(all[1], range_digest(&twice, &a.byte_range, alg));
            assert_ne!(all[0], all[1]);
        }
    }

    #[test]
    fn a_dss_and_a_document_time_stamp_after_a_signature_are_validation_data() {
        let once = signed(minimal(), "Official", &info());
        let cert = b"not really a certificate".to_vec();
        let with_dss = append_dss(
            once,
            &Dss {
                certs: vec![&cert],
                ..Dss::default()
            },
        )
        .unwrap();
        let ts = SignatureInfo {
            kind: super::super::SignatureKind::DocTimeStamp,
            ..info()
        };
        let stamped = signed(with_dss, "DocTS", &ts);
        let doc = read_signatures(&stamped).unwrap();
        assert_eq!(doc.dss.certs, vec![cert]);
        let (sig, dts) = (&doc.signatures[0], &doc.signatures[1]);
        assert!(dts.time_stamp && dts.whole_file);
        assert_eq!(
            sig.changes,
            Change::ValidationData,
            "{:?}",
            sig.change_notes
        );
    }

    #[test]
    fn new_content_a_dangling_reference_filled_and_a_skipping_byte_range_are_caught() {
        let once = signed(minimal(), "Official", &info());
        let text = String::from_utf8_lossy(&once).into_owned();
        let prev = text.rfind("startxref\n").unwrap() + 10;
        let prev: usize = text[prev..].lines().next().unwrap().parse().unwrap();
        // A revision that rewrites the page content stream (object 4).
        let append_with = |objects: &[(u32, &str)], trailer_extra: &str| {
            let mut out = once.clone();
            let mut rows = String::new();
            for (n, body) in objects {
                rows.push_str(&format!("{n} 1\n{:010} 00000 n\r\n", out.len()));
                out.extend_from_slice(format!("{n} 0 obj\n{body}\nendobj\n").as_bytes());
            }
            let xref = out.len();
            out.extend_from_slice(
                format!(
                    "xref\n{rows}trailer\n<< /Size 40 /Root 1 0 R /Prev {prev} {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n"
                )
                .as_bytes(),
            );
            out
        };
        let append = |objects: &[(u32, &str)]| append_with(objects, "");
        let rewritten = append(&[(4, "<< /Length 9 >>\nstream\n(Hi) Tj\n\nendstream")]);
        let s = &read_signatures(&rewritten).unwrap().signatures[0];
        assert_eq!(s.changes, Change::Other, "{:?}", s.change_notes);
        // An object nothing changed refers to (it could fill a dangling reference).
        let orphan = append(&[(30, "<< /Length 3 >>\nstream\nq Q\nendstream")]);
        let s = &read_signatures(&orphan).unwrap().signatures[0];
        assert_eq!(s.changes, Change::Other, "{:?}", s.change_notes);
        // A note added to the page: annotations.
        let page = text[text.rfind("3 0 obj\n").unwrap() + 8..]
            .split("\nendobj")
            .next()
            .unwrap()
            .to_string();
        let annotated = page.replacen("/Annots [", "/Annots [31 0 R ", 1);
        assert_ne!(annotated, page);
        let noted = append(&[
            (3, &annotated),
            (
                31,
                "<< /Type /Annot /Subtype /Text /Rect [0 0 10 10] /Contents (note) >>",
            ),
        ]);
        let s = &read_signatures(&noted).unwrap().signatures[0];
        assert_eq!(s.changes, Change::Annotations, "{:?}", s.change_notes);

        // Found in review: each of these once passed as validation data or less.
        let other = |pdf: &[u8], what: &str| {
            let s = &read_signatures(pdf).unwrap().signatures[0];
            assert_eq!(s.changes, Change::Other, "{what}: {:?}", s.change_notes);
        };
        // A repeated key: viewers take the last /Pages.
        let catalog = text[text.rfind("1 0 obj\n").unwrap() + 8..]
            .split("\nendobj")
            .next()
            .unwrap()
            .to_string();
        let doubled = format!(
            "{} /Pages 32 0 R >>",
            catalog.trim_end().trim_end_matches(">>")
        );
        assert_eq!(doubled.matches("/Pages").count(), 2, "{doubled}");
        other(
            &append(&[(1, &doubled), (32, "<< /Type /Pages /Kids [] /Count 0 >>")]),
            "a second /Pages in the catalog",
        );
        // A content stream typed /ObjStm that nothing in the structure uses as one.
        other(
            &append(&[(33, "<< /Type /ObjStm /Length 3 >>\nstream\nq Q\nendstream")]),
            "a stream merely typed /ObjStm",
        );
        // /Info pointing at the catalog, which then changes.
        let opened = format!(
            "{} /OpenAction 34 0 R >>",
            catalog.trim_end().trim_end_matches(">>")
        );
        other(
            &append_with(
                &[
                    (1, &opened),
                    (34, "<< /S /JavaScript /JS (app.alert(1)) >>"),
                ],
                "/Info 1 0 R ",
            ),
            "/Info naming the catalog",
        );
        // A signature widget on the page that no form field lists.
        let widget = page.replacen("/Annots [", "/Annots [35 0 R ", 1);
        other(
            &append(&[
                (3, &widget),
                (35, "<< /Type /Annot /Subtype /Widget /FT /Sig /Rect [0 0 500 800] /V << /Type /DocTimeStamp >> >>"),
            ]),
            "a signature widget outside /Fields",
        );

        // An object of the signed revision freed by a later one (its content deleted).
        let mut freed = once.clone();
        let xref_at = freed.len();
        freed.extend_from_slice(
            format!(
                "xref\n4 1\n0000000000 00001 f\r\ntrailer\n<< /Size 40 /Root 1 0 R /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n"
            )
            .as_bytes(),
        );
        let s = &read_signatures(&freed).unwrap().signatures[0];
        assert_eq!(s.changes, Change::Other, "{:?}", s.change_notes);
        assert!(s
            .change_notes
            .iter()
            .any(|n| n.contains("object 4 was deleted")));

        // A byte range that leaves out a byte before /Contents.
        let mut skipping = once.clone();
        let at = text.find("/ByteRange [").unwrap() + 12;
        let end = at + text[at..].find(']').unwrap();
        let n: Vec<usize> = text[at..end]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let new = format!("0 {:>10} {:>10} {:>10}", n[1] - 1, n[2], n[3]);
        skipping[at..end].copy_from_slice(new.as_bytes());
        let s = &read_signatures(&skipping).unwrap().signatures[0];
        assert!(
            s.problem.as_deref().unwrap().contains("leaves out more"),
            "{s:?}"
        );
    }

    #[test]
    fn pdf_dates_read_with_their_offsets() {
        assert_eq!(pdf_date_unix("D:20261201000000Z"), Some(1_796_083_200));
        assert_eq!(
            pdf_date_unix("D:20261201070000+07'00'"),
            Some(1_796_083_200)
        );
        assert_eq!(pdf_date_unix("D:20261130170000-07'00"), Some(1_796_083_200));
        assert_eq!(pdf_date_unix("D:2026"), Some(1_767_225_600));
        assert_eq!(pdf_date_unix("D:20261341"), None);
        assert_eq!(pdf_date_unix("yesterday"), None);
    }

    #[test]
    fn hostile_signature_dictionaries_are_problems_not_panics() {
        let once = signed(minimal(), "Official", &info());
        let text = String::from_utf8_lossy(&once).into_owned();
        let at = text.find("/ByteRange [").unwrap() + 12;
        let end = at + text[at..].find(']').unwrap();
        for bad in [
            format!("5 {:>10} {:>10} {:>10}", 1, 2, 3),
            format!("0 {:>10} {:>10} {:>10}", 99_999_999, 1, 2),
            format!("0 {:>10} {:>10} {:>10}", 10, 5, 99_999_999),
        ] {
            let mut b = once.clone();
            assert_eq!(bad.len(), end - at);
            b[at..end].copy_from_slice(bad.as_bytes());
            let s = &read_signatures(&b).unwrap().signatures[0];
            assert!(s.problem.is_some(), "{bad}: {s:?}");
        }
        assert_eq!(read_signatures(b"hello").unwrap_err(), PdfError::NotPdf);
        // Cut inside the signature's revision: the original alone is left, unsigned.
        let cut = read_signatures(&once[..once.len() / 2]);
        assert!(cut.map_or(true, |d| d.signatures.is_empty()));
    }
}
