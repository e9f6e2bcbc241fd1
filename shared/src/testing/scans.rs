//! Scanned court filings made from born-digital ones, the way a scan looks to the
//! pipeline: every page an image (rendered by poppler's `pdftoppm`, JPEG in a PDF), and
//! optionally an ECF header stamped into the text layer, as PACER stamps scanned filings
//! (`Case 1:19-cv-01234-ABC Document 12 Filed 03/04/2019 Page 1 of 9`).
//!
//! Made at test time from `tests/corpus/` (nothing binary is committed for them); needs
//! `pdftoppm` (Debian `poppler-utils`).

use std::path::Path;
use std::process::Command;

use lopdf::{Dictionary, Document, Object, Stream};

/// The ECF header of page `page` of `pages`, as a district court's CM/ECF stamps it.
pub fn ecf_header(page: u32, pages: u32) -> String {
    format!("Case 1:19-cv-01234-ABC Document 12 Filed 03/04/2019 Page {page} of {pages}")
}

/// What goes into the text layer of each scanned page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextLayer {
    /// Nothing: a plain scan.
    None,
    /// The ECF header line ([`ecf_header`]) at the top of each page.
    EcfHeader,
}

/// The PDF at `pdf` rendered at `dpi` and wrapped back into a PDF of page images, with
/// `layer` in its text layer.
///
/// # Errors
/// `pdftoppm` cannot be run or fails, or its images cannot be read.
pub fn rasterise(pdf: &Path, dpi: u32, layer: TextLayer) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let root = dir.path().join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-jpeg", "-jpegopt", "quality=80"])
        .arg(pdf)
        .arg(&root)
        .output()
        .map_err(|e| format!("cannot run pdftoppm (apt-get install poppler-utils): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pdftoppm failed on {}: {}",
            pdf.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut images: Vec<_> = std::fs::read_dir(dir.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    // page-01.jpg … page-10.jpg: the numbers are zero-padded, so names sort in page order.
    images.sort();
    let jpegs = images
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    images_to_pdf(&jpegs, dpi, layer)
}

/// A PDF with one page per JPEG (sized from the image at `dpi`), with `layer`.
///
/// # Errors
/// A JPEG whose size cannot be read.
pub fn images_to_pdf(jpegs: &[Vec<u8>], dpi: u32, layer: TextLayer) -> Result<Vec<u8>, String> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Font".to_vec())),
        ("Subtype", Object::Name(b"Type1".to_vec())),
        ("BaseFont", Object::Name(b"Helvetica".to_vec())),
    ]));
    let total = u32::try_from(jpegs.len()).unwrap_or(u32::MAX);
    let mut kids = Vec::new();
    for (i, jpeg) in jpegs.iter().enumerate() {
        let (width, height, components) =
            jpeg_size(jpeg).ok_or_else(|| format!("page {}: not a readable JPEG", i + 1))?;
        let w = width as f32 * 72.0 / dpi as f32;
        let h = height as f32 * 72.0 / dpi as f32;
        let image = Stream::new(
            Dictionary::from_iter([
                ("Type", Object::Name(b"XObject".to_vec())),
                ("Subtype", Object::Name(b"Image".to_vec())),
                ("Width", Object::Integer(i64::from(width))),
                ("Height", Object::Integer(i64::from(height))),
                (
                    "ColorSpace",
                    Object::Name(if components == 1 {
                        b"DeviceGray".to_vec()
                    } else {
                        b"DeviceRGB".to_vec()
                    }),
                ),
                ("BitsPerComponent", Object::Integer(8)),
                ("Filter", Object::Name(b"DCTDecode".to_vec())),
            ]),
            jpeg.clone(),
        );
        let image_id = doc.add_object(image);
        let mut content = format!("q {w:.2} 0 0 {h:.2} 0 0 cm /Im0 Do Q\n");
        if layer == TextLayer::EcfHeader {
            let header = ecf_header(i as u32 + 1, total);
            content.push_str(&format!(
                "BT /F1 8 Tf 40 {:.2} Td ({}) Tj ET\n",
                h - 20.0,
                header
                    .replace('\\', "\\\\")
                    .replace('(', "\\(")
                    .replace(')', "\\)")
            ));
        }
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.into_bytes()));
        let resources = Dictionary::from_iter([
            (
                "XObject",
                Object::Dictionary(Dictionary::from_iter([(
                    "Im0",
                    Object::Reference(image_id),
                )])),
            ),
            (
                "Font",
                Object::Dictionary(Dictionary::from_iter([("F1", Object::Reference(font_id))])),
            ),
        ]);
        let page_id = doc.add_object(Dictionary::from_iter([
            ("Type", Object::Name(b"Page".to_vec())),
            ("Parent", Object::Reference(pages_id)),
            (
                "MediaBox",
                Object::Array(vec![
                    Object::Integer(0),
                    Object::Integer(0),
                    Object::Real(w),
                    Object::Real(h),
                ]),
            ),
            ("Resources", Object::Dictionary(resources)),
            ("Contents", Object::Reference(content_id)),
        ]));
        kids.push(Object::Reference(page_id));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(Dictionary::from_iter([
            ("Type", Object::Name(b"Pages".to_vec())),
            ("Count", Object::Integer(kids.len() as i64)),
            ("Kids", Object::Array(kids)),
        ])),
    );
    let catalog = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Catalog".to_vec())),
        ("Pages", Object::Reference(pages_id)),
    ]));
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Width, height and number of colour components of a baseline or progressive JPEG, from
/// its start-of-frame marker.
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32, u8)> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = jpeg[i + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let height = u32::from(u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]));
            let width = u32::from(u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]));
            return Some((width, height, jpeg[i + 9]));
        }
        i += 2 + length;
    }
    None
}
