//! The visible appearance of a signature (ISO 32000-1 §12.5.5, §12.7.4.5): a form XObject with
//! an optional PNG image (the seal or the handwritten signature; its transparency kept as a
//! soft mask) and text lines in DejaVu Sans, embedded as a subset CID font (Type0, Identity-H,
//! with a ToUnicode map), so Vietnamese text is drawn and extracted exactly.
//!
//! The font ships in `assets/fonts` with its license (Bitstream Vera; DejaVu changes public
//! domain); only the glyphs used are embedded, under a subset name (`ABCDEF+DejaVuSans`).

use std::io::Write;

use unicode_normalization::UnicodeNormalization;

use super::{Obj, PdfError, Revision};

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Largest PNG accepted, encoded.
pub const MAX_IMAGE_BYTES: usize = 4 << 20;
/// Largest PNG accepted, decoded: 4,000 × 4,000 pixels (a seal scanned at 600 dpi is a tenth of
/// that).
const MAX_IMAGE_PIXELS: u64 = 16_000_000;
/// Text lines, and characters in one: a signature box holds a few short lines.
pub const MAX_LINES: usize = 12;
pub const MAX_LINE_CHARS: usize = 200;
/// Largest font size used for the text, points; it shrinks to fit the box.
const TEXT_SIZE: f64 = 9.0;
/// The box's inner margin, points.
const PAD: f64 = 2.0;

/// Where the signature is drawn on its page.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// `[x1, y1, x2, y2]` in the page's default user space (points from its lower left).
    Rect([f64; 4]),
    /// The top right corner, as Decree 30/2020/ND-CP puts an electronic copy's organization
    /// signature: 20 points in from the edges of the page's box.
    TopRight,
}

/// A visible signature: the page (1 for the first), where on it, an optional image and the
/// text lines.
#[derive(Clone, Debug)]
pub struct Appearance {
    pub page: u32,
    pub placement: Placement,
    pub image: Option<Image>,
    pub lines: Vec<String>,
}

/// A decoded PNG: 8-bit gray or RGB samples and, if it had one, its 8-bit alpha channel.
#[derive(Clone, Debug)]
pub struct Image {
    width: u32,
    height: u32,
    gray: bool,
    samples: Vec<u8>,
    alpha: Option<Vec<u8>>,
}

fn bad(msg: impl Into<String>) -> PdfError {
    PdfError::Appearance(msg.into())
}

impl Image {
    /// Decodes a PNG (any bit depth, palette, gray or color, with or without alpha), within the
    /// size limits.
    pub fn from_png(bytes: &[u8]) -> Result<Self, PdfError> {
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(bad("the image is not a PNG"));
        }
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(bad(format!(
                "the image is {} bytes; at most {MAX_IMAGE_BYTES} are accepted",
                bytes.len()
            )));
        }
        let mut decoder = png::Decoder::new_with_limits(
            std::io::Cursor::new(bytes),
            png::Limits { bytes: 80 << 20 },
        );
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder
            .read_info()
            .map_err(|e| bad(format!("the PNG does not decode: {e}")))?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
            return Err(bad(format!(
                "the image is {width} × {height} pixels; at most {MAX_IMAGE_PIXELS} pixels are accepted"
            )));
        }
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| bad(format!("the PNG does not decode: {e}")))?;
        buf.truncate(frame.buffer_size());
        let (channels, gray, has_alpha) = match reader.output_color_type() {
            (png::ColorType::Grayscale, png::BitDepth::Eight) => (1, true, false),
            (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => (2, true, true),
            (png::ColorType::Rgb, png::BitDepth::Eight) => (3, false, false),
            (png::ColorType::Rgba, png::BitDepth::Eight) => (4, false, true),
            _ => return Err(bad("the PNG's color type is not supported")),
        };
        let colors = channels - usize::from(has_alpha);
        let (samples, alpha) = if has_alpha {
            let mut samples = Vec::with_capacity(buf.len() / channels * colors);
            let mut alpha = Vec::with_capacity(buf.len() / channels);
            for px in buf.chunks_exact(channels) {
                samples.extend_from_slice(&px[..colors]);
                alpha.push(px[colors]);
            }
            // Fully opaque: no mask needed.
            let alpha = alpha.iter().any(|a| *a != 255).then_some(alpha);
            (samples, alpha)
        } else {
            (buf, None)
        };
        Ok(Self {
            width,
            height,
            gray,
            samples,
            alpha,
        })
    }
}

impl Image {
    /// Bytes its samples (and mask) take before compression: room to reserve for it.
    pub fn stored_len(&self) -> usize {
        self.samples.len() + self.alpha.as_ref().map_or(0, Vec::len)
    }
}

/// One glyph of a line: its id in the subset and what it stands for.
struct Glyph {
    cid: u16,
    advance: f64,
    text: char,
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

fn name(n: &str) -> Obj {
    Obj::Name(n.as_bytes().to_vec())
}

pub(super) fn real(x: f64) -> Obj {
    Obj::Real(fmt(x).into_bytes())
}

/// A number for a content stream or a dictionary: at most 3 decimals, no exponent.
fn fmt(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn dict(entries: Vec<(&str, Obj)>) -> Obj {
    Obj::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

impl Appearance {
    /// Checks the text against the limits (before anything is written).
    pub fn check(&self) -> Result<(), PdfError> {
        if self.page == 0 {
            return Err(bad("pages are numbered from 1"));
        }
        if self.lines.len() > MAX_LINES {
            return Err(bad(format!("at most {MAX_LINES} text lines")));
        }
        if self
            .lines
            .iter()
            .any(|l| l.chars().count() > MAX_LINE_CHARS)
        {
            return Err(bad(format!(
                "a text line has more than {MAX_LINE_CHARS} characters"
            )));
        }
        if let Placement::Rect(r) = &self.placement {
            if r.iter().any(|v| !v.is_finite()) {
                return Err(bad("the rectangle's coordinates must be numbers"));
            }
        }
        Ok(())
    }

    /// The widget's rectangle on a page whose box is `bbox`: the one asked for, which must lie
    /// on the page, or the named position.
    pub(super) fn rect(&self, bbox: [f64; 4]) -> Result<[f64; 4], PdfError> {
        match &self.placement {
            Placement::Rect(r) => {
                let [x1, y1, x2, y2] = [
                    r[0].min(r[2]),
                    r[1].min(r[3]),
                    r[0].max(r[2]),
                    r[1].max(r[3]),
                ];
                let tolerance = 0.5;
                if x1 < bbox[0] - tolerance
                    || y1 < bbox[1] - tolerance
                    || x2 > bbox[2] + tolerance
                    || y2 > bbox[3] + tolerance
                {
                    return Err(bad(format!(
                        "the rectangle [{} {} {} {}] is off the page, whose box is [{} {} {} {}]",
                        fmt(x1),
                        fmt(y1),
                        fmt(x2),
                        fmt(y2),
                        fmt(bbox[0]),
                        fmt(bbox[1]),
                        fmt(bbox[2]),
                        fmt(bbox[3])
                    )));
                }
                if x2 - x1 < 8.0 || y2 - y1 < 8.0 {
                    return Err(bad("the rectangle is smaller than 8 × 8 points"));
                }
                Ok([x1, y1, x2, y2])
            }
            Placement::TopRight => {
                let margin = 20.0;
                let text_h = self.lines.len() as f64 * TEXT_SIZE * 1.25 + 2.0 * PAD;
                let h = if self.image.is_some() {
                    text_h.max(60.0)
                } else {
                    text_h.max(24.0)
                };
                let w = 220.0f64.min(bbox[2] - bbox[0] - 2.0 * margin);
                let (x2, y2) = (bbox[2] - margin, bbox[3] - margin);
                if w < 8.0 || y2 - h < bbox[1] {
                    return Err(bad(
                        "the page is too small for a signature at its top right",
                    ));
                }
                Ok([x2 - w, y2 - h, x2, y2])
            }
        }
    }

    /// Writes the appearance's objects for a box of `w` × `h` points; returns the number of its
    /// form XObject (the widget's `/AP /N`).
    pub(super) fn write(&self, rev: &mut Revision, w: f64, h: f64) -> Result<u32, PdfError> {
        let mut content = String::from("q\n");
        let mut resources = Vec::new();
        let mut text_x = PAD;
        if let Some(img) = &self.image {
            // The image keeps its proportions: the whole box without text, else its left part.
            let area_w = if self.lines.is_empty() {
                w - 2.0 * PAD
            } else {
                (w * 0.4).min(h)
            };
            let area_h = h - 2.0 * PAD;
            let scale = (area_w / f64::from(img.width)).min(area_h / f64::from(img.height));
            let (dw, dh) = (f64::from(img.width) * scale, f64::from(img.height) * scale);
            let dx = PAD + (area_w - dw) / 2.0;
            let dy = PAD + (area_h - dh) / 2.0;
            content.push_str(&format!(
                "q {} 0 0 {} {} {} cm /Im1 Do Q\n",
                fmt(dw),
                fmt(dh),
                fmt(dx),
                fmt(dy)
            ));
            let image = write_image(rev, img)?;
            resources.push(("XObject", dict(vec![("Im1", Obj::Ref(image, 0))])));
            text_x = PAD + area_w + PAD;
        }
        if !self.lines.is_empty() {
            let face = ttf_parser::Face::parse(FONT, 0)
                .map_err(|_| bad("the shipped font does not parse"))?;
            let upem = f64::from(face.units_per_em());
            let mut remapper = subsetter::GlyphRemapper::new();
            let mut used: Vec<Glyph> = Vec::new();
            let lines: Vec<Vec<(u16, f64)>> = self
                .lines
                .iter()
                .map(|line| {
                    line.nfc()
                        .filter(|c| !c.is_control())
                        .map(|c| {
                            let gid = face.glyph_index(c).map_or(0, |g| g.0);
                            let advance = face
                                .glyph_hor_advance(ttf_parser::GlyphId(gid))
                                .map_or(0.0, |a| f64::from(a) / upem);
                            let cid = remapper.remap(gid);
                            if !used.iter().any(|g| g.cid == cid) {
                                used.push(Glyph {
                                    cid,
                                    advance,
                                    text: c,
                                });
                            }
                            (cid, advance)
                        })
                        .collect()
                })
                .collect();
            let avail_w = (w - text_x - PAD).max(1.0);
            let avail_h = (h - 2.0 * PAD).max(1.0);
            let widest = lines
                .iter()
                .map(|l| l.iter().map(|(_, a)| a).sum::<f64>())
                .fold(0.0, f64::max);
            let mut size = TEXT_SIZE.min(avail_h / (lines.len() as f64 * 1.2));
            if widest * size > avail_w {
                size = avail_w / widest;
            }
            let ascent = f64::from(face.ascender()) / upem;
            let mut y = h - PAD - ascent * size;
            for line in &lines {
                let hex: String = line.iter().map(|(cid, _)| format!("{cid:04X}")).collect();
                content.push_str(&format!(
                    "BT /F1 {} Tf 0 g {} {} Td <{hex}> Tj ET\n",
                    fmt(size),
                    fmt(text_x),
                    fmt(y)
                ));
                y -= size * 1.2;
            }
            let font = write_font(rev, &face, &remapper, &used)?;
            resources.push(("Font", dict(vec![("F1", Obj::Ref(font, 0))])));
        }
        content.push_str("Q\n");
        let n = rev.allocate()?;
        rev.write_stream(
            n,
            dict(vec![
                ("Type", name("XObject")),
                ("Subtype", name("Form")),
                (
                    "BBox",
                    Obj::Array(vec![Obj::Int(0), Obj::Int(0), real(w), real(h)]),
                ),
                ("Resources", dict(resources)),
                ("Filter", name("FlateDecode")),
            ]),
            &compress(content.as_bytes()),
        );
        Ok(n)
    }
}

fn write_image(rev: &mut Revision, img: &Image) -> Result<u32, PdfError> {
    let image_dict = |gray: bool| {
        vec![
            ("Type", name("XObject")),
            ("Subtype", name("Image")),
            ("Width", Obj::Int(i64::from(img.width))),
            ("Height", Obj::Int(i64::from(img.height))),
            (
                "ColorSpace",
                name(if gray { "DeviceGray" } else { "DeviceRGB" }),
            ),
            ("BitsPerComponent", Obj::Int(8)),
            ("Filter", name("FlateDecode")),
        ]
    };
    let mut d = image_dict(img.gray);
    if let Some(alpha) = &img.alpha {
        let mask = rev.allocate()?;
        rev.write_stream(mask, dict(image_dict(true)), &compress(alpha));
        d.push(("SMask", Obj::Ref(mask, 0)));
    }
    let n = rev.allocate()?;
    rev.write_stream(n, dict(d), &compress(&img.samples));
    Ok(n)
}

/// The subset font: Type0 over a CIDFontType2 with Identity CIDs (the subset's glyph ids),
/// widths, a descriptor with the embedded TrueType subset, and a ToUnicode map.
fn write_font(
    rev: &mut Revision,
    face: &ttf_parser::Face<'_>,
    remapper: &subsetter::GlyphRemapper,
    used: &[Glyph],
) -> Result<u32, PdfError> {
    let subset = subsetter::subset(FONT, 0, remapper)
        .map_err(|e| bad(format!("the font does not subset: {e:?}")))?;
    let upem = f64::from(face.units_per_em());
    let scale = |v: i16| real(f64::from(v) * 1000.0 / upem);
    // The subset's name: six capitals from the glyphs it holds (ISO 32000-1 §9.6.4).
    let mut cids: Vec<u16> = used.iter().map(|g| g.cid).collect();
    cids.sort_unstable();
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        &cids
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect::<Vec<_>>(),
    );
    let tag: String = digest.as_ref()[..6]
        .iter()
        .map(|b| char::from(b'A' + b % 26))
        .collect();
    let base = format!("{tag}+DejaVuSans");

    let file = rev.allocate()?;
    rev.write_stream(
        file,
        dict(vec![
            ("Length1", Obj::Int(subset.len() as i64)),
            ("Filter", name("FlateDecode")),
        ]),
        &compress(&subset),
    );
    let bbox = face.global_bounding_box();
    let descriptor = rev.allocate()?;
    rev.write_object(
        descriptor,
        0,
        &dict(vec![
            ("Type", name("FontDescriptor")),
            ("FontName", name(&base)),
            ("Flags", Obj::Int(32)),
            (
                "FontBBox",
                Obj::Array(vec![
                    scale(bbox.x_min),
                    scale(bbox.y_min),
                    scale(bbox.x_max),
                    scale(bbox.y_max),
                ]),
            ),
            ("ItalicAngle", Obj::Int(0)),
            ("Ascent", scale(face.ascender())),
            ("Descent", scale(face.descender())),
            (
                "CapHeight",
                scale(face.capital_height().unwrap_or(face.ascender())),
            ),
            ("StemV", Obj::Int(80)),
            ("FontFile2", Obj::Ref(file, 0)),
        ]),
    );
    let mut widths = Vec::new();
    for g in used {
        widths.push(Obj::Int(i64::from(g.cid)));
        widths.push(Obj::Array(vec![real(g.advance * 1000.0)]));
    }
    let cid_font = rev.allocate()?;
    rev.write_object(
        cid_font,
        0,
        &dict(vec![
            ("Type", name("Font")),
            ("Subtype", name("CIDFontType2")),
            ("BaseFont", name(&base)),
            (
                "CIDSystemInfo",
                dict(vec![
                    ("Registry", Obj::Str(b"Adobe".to_vec())),
                    ("Ordering", Obj::Str(b"Identity".to_vec())),
                    ("Supplement", Obj::Int(0)),
                ]),
            ),
            ("FontDescriptor", Obj::Ref(descriptor, 0)),
            ("DW", Obj::Int(0)),
            ("W", Obj::Array(widths)),
            ("CIDToGIDMap", name("Identity")),
        ]),
    );
    let to_unicode = rev.allocate()?;
    rev.write_stream(
        to_unicode,
        dict(vec![("Filter", name("FlateDecode"))]),
        &compress(to_unicode_cmap(used).as_bytes()),
    );
    let font = rev.allocate()?;
    rev.write_object(
        font,
        0,
        &dict(vec![
            ("Type", name("Font")),
            ("Subtype", name("Type0")),
            ("BaseFont", name(&base)),
            ("Encoding", name("Identity-H")),
            ("DescendantFonts", Obj::Array(vec![Obj::Ref(cid_font, 0)])),
            ("ToUnicode", Obj::Ref(to_unicode, 0)),
        ]),
    );
    Ok(font)
}

/// The ToUnicode CMap (ISO 32000-1 §9.10.3): each CID to the character it was chosen for.
fn to_unicode_cmap(used: &[Glyph]) -> String {
    let mut out = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for chunk in used.chunks(100) {
        out.push_str(&format!("{} beginbfchar\n", chunk.len()));
        for g in chunk {
            let utf16: String = g
                .text
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|u| format!("{u:04X}"))
                .collect();
            out.push_str(&format!("<{:04X}> <{utf16}>\n", g.cid));
        }
        out.push_str("endbfchar\n");
    }
    out.push_str(
        "endcmap\nCMapName currentdict /CIDInit /ProcSet findresource exch /defineresource \
         exch pop\nend\nend\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(color: png::ColorType, pixels: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(pixels)
            .unwrap();
        out
    }

    #[test]
    fn a_transparent_png_keeps_its_alpha_as_a_mask_and_an_opaque_one_has_none() {
        let rgba = png(png::ColorType::Rgba, &[255, 0, 0, 0, 255, 0, 0, 255], 2, 1);
        let img = Image::from_png(&rgba).unwrap();
        assert_eq!((img.width, img.height, img.gray), (2, 1, false));
        assert_eq!(img.samples, vec![255, 0, 0, 255, 0, 0]);
        assert_eq!(img.alpha, Some(vec![0, 255]));
        let opaque = png(png::ColorType::Rgba, &[1, 2, 3, 255], 1, 1);
        assert_eq!(Image::from_png(&opaque).unwrap().alpha, None);
        let gray = png(png::ColorType::Grayscale, &[7, 9], 1, 2);
        let img = Image::from_png(&gray).unwrap();
        assert!(img.gray && img.alpha.is_none());
    }

    #[test]
    fn what_is_not_a_png_or_is_too_large_is_refused_clearly() {
        let err = Image::from_png(b"GIF89a....").unwrap_err().to_string();
        assert!(err.contains("not a PNG"), "{err}");
        let mut big = png(png::ColorType::Rgb, &[0; 3], 1, 1);
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        let err = Image::from_png(&big).unwrap_err().to_string();
        assert!(err.contains("at most 4194304"), "{err}");
        let mut truncated = png(png::ColorType::Rgb, &[0; 300], 10, 10);
        truncated.truncate(40);
        let err = Image::from_png(&truncated).unwrap_err().to_string();
        assert!(err.contains("does not decode"), "{err}");
        // A header that claims 100,000 × 100,000 pixels is refused before any allocation.
        let mut huge = png(png::ColorType::Rgb, &[0; 3], 1, 1);
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = Image::from_png(&huge).unwrap_err().to_string();
        assert!(err.contains("pixels") || err.contains("decode"), "{err}");
    }

    #[test]
    fn rectangles_off_the_page_or_too_small_are_refused_and_top_right_fits() {
        let a4 = [0.0, 0.0, 595.0, 842.0];
        let app = |placement| Appearance {
            page: 1,
            placement,
            image: None,
            lines: vec!["Nguyễn Văn A".into(), "2026-12-01T10:00:00+07:00".into()],
        };
        assert_eq!(
            app(Placement::Rect([400.0, 50.0, 570.0, 110.0]))
                .rect(a4)
                .unwrap(),
            [400.0, 50.0, 570.0, 110.0]
        );
        let err = app(Placement::Rect([500.0, 50.0, 700.0, 110.0]))
            .rect(a4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("off the page"), "{err}");
        assert!(app(Placement::Rect([10.0, 10.0, 12.0, 40.0]))
            .rect(a4)
            .is_err());
        let r = app(Placement::TopRight).rect(a4).unwrap();
        assert!(
            r[2] == 575.0 && r[3] == 822.0 && r[0] > 0.0 && r[1] > 700.0,
            "{r:?}"
        );
    }

    #[test]
    fn the_cmap_maps_each_cid_to_its_character_in_utf16() {
        let used = [
            Glyph {
                cid: 1,
                advance: 0.5,
                text: 'ễ',
            },
            Glyph {
                cid: 2,
                advance: 0.5,
                text: '𝄞',
            },
        ];
        let cmap = to_unicode_cmap(&used);
        assert!(cmap.contains("<0001> <1EC5>"), "{cmap}");
        assert!(cmap.contains("<0002> <D834DD1E>"), "{cmap}");
    }
}
