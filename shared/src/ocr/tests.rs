use super::*;
use crate::samples;
use lopdf::{Stream, dictionary};

// ---------------------------------------------------------------------------------------
// Helpers

fn sample(name: &str) -> Vec<u8> {
    let doc = samples::documents()
        .into_iter()
        .find(|d| d.file_name == name)
        .unwrap_or_else(|| panic!("no sample {name}"));
    samples::render_pdf(&doc)
}

/// The same PDF with its streams deflated, as most real PDFs are (the samples are not), so
/// that damage also reaches the decompressor.
fn compressed(bytes: &[u8]) -> Vec<u8> {
    let mut doc = Document::load_mem(bytes).unwrap();
    doc.compress();
    save(&mut doc)
}

fn save(doc: &mut Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// Deterministic xorshift64*, enough to generate fuzz input without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Builds a PDF page by page from raw content streams, with Helvetica as /F1 and the given
/// extra entries in each page's resources. Returns the document and the page ids, for tests
/// to break in specific ways before saving.
fn handmade(pages: &[(&[u8], Dictionary)]) -> (Document, Vec<ObjectId>) {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let mut ids = Vec::new();
    for (content, extra) in pages {
        let mut resources = dictionary! { "Font" => dictionary! { "F1" => font } };
        for (key, value) in extra.iter() {
            resources.set(key.clone(), value.clone());
        }
        let content = doc.add_object(Stream::new(Dictionary::new(), content.to_vec()));
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            "Resources" => resources,
            "Contents" => content,
        });
        ids.push(page);
    }
    let kids: Vec<Object> = ids.iter().map(|&id| id.into()).collect();
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    (doc, ids)
}

/// Makes `id` the page's only XObject, named `/X0` for forms and `/Im0` for images.
fn set_xobject(doc: &mut Document, page: ObjectId, id: ObjectId) {
    let is_image = matches!(
        doc.get_object(id),
        Ok(Object::Stream(s)) if s.dict.get(b"Subtype").ok() == Some(&Object::Name(b"Image".to_vec()))
    );
    let name = if is_image { "Im0" } else { "X0" };
    doc.get_object_mut(page)
        .and_then(Object::as_dict_mut)
        .and_then(|page| page.get_mut(b"Resources"))
        .and_then(Object::as_dict_mut)
        .unwrap()
        .set("XObject", dictionary! { name => id });
}

const PAGE_ONE: &[u8] = b"BT /F1 12 Tf 72 720 Td (Page one is fine.) Tj ET";

fn text_of(result: &OcrResult) -> Vec<(&str, bool)> {
    result
        .pages
        .iter()
        .map(|p| (p.text.as_str(), p.has_text_layer))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reading text

#[test]
fn pages_come_back_separately_numbered_from_one_with_their_paragraph_breaks() {
    let pdf = samples::text_only_pdf(&[
        "First paragraph, line one.\nLine two.\n\nSecond paragraph.",
        "Page two: 42 U.S.C. § 1983 and José Ramírez.",
        "Third page.",
    ]);

    let result = extract_pdf_text(&pdf).unwrap();

    assert_eq!(result.method, PDF_TEXT_METHOD);
    let numbers: Vec<u32> = result.pages.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(
        text_of(&result),
        [
            (
                "First paragraph, line one.\nLine two.\n\nSecond paragraph.",
                true
            ),
            ("Page two: 42 U.S.C. § 1983 and José Ramírez.", true),
            ("Third page.", true),
        ]
    );
}

#[test]
fn a_page_without_a_text_layer_is_recorded_as_such_and_is_not_an_error() {
    let result = extract_pdf_text(&samples::pdf_with_blank_page()).unwrap();

    assert_eq!(
        text_of(&result),
        [
            ("Page one has a text layer.", true),
            ("", false),
            ("Page three has a text layer.", true),
        ]
    );
    assert_eq!(result.pages_without_text(), [2]);
}

#[test]
fn a_document_in_which_no_page_has_text_is_still_ok() {
    let result = extract_pdf_text(&samples::text_only_pdf(&["", ""])).unwrap();

    assert_eq!(text_of(&result), [("", false), ("", false)]);
}

#[test]
fn a_scanned_page_drawing_an_image_reads_as_a_page_without_text() {
    // pdf-extract interprets the data of every XObject a page draws as a content stream,
    // images included: image bytes that happen to look like text operators would come out
    // as text.
    let mut image = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => 4,
            "Height" => 4,
            "ColorSpace" => "DeviceGray",
            "BitsPerComponent" => 8,
        },
        b"BT /F1 12 Tf 72 720 Td (NOT TEXT) Tj ET \x00\xff(((<<]]".to_vec(),
    );
    image.allows_compression = false;
    let scan: &[u8] = b"q 612 0 0 792 0 0 cm /Im0 Do Q";
    let (mut doc, ids) = handmade(&[(PAGE_ONE, Dictionary::new()), (scan, Dictionary::new())]);
    let image_id = doc.add_object(image);
    set_xobject(&mut doc, ids[1], image_id);

    let result = extract_pdf_text(&save(&mut doc)).unwrap();

    assert_eq!(text_of(&result), [("Page one is fine.", true), ("", false)]);
}

#[test]
fn a_page_without_a_media_box_is_read_as_letter_size() {
    let (mut doc, ids) = handmade(&[(PAGE_ONE, Dictionary::new())]);
    doc.get_object_mut(ids[0])
        .and_then(Object::as_dict_mut)
        .unwrap()
        .remove(b"MediaBox");

    let result = extract_pdf_text(&save(&mut doc)).unwrap();

    assert_eq!(text_of(&result), [("Page one is fine.", true)]);
}

#[test]
fn a_pdf_with_only_an_owner_password_is_read_like_any_other() {
    let result = extract_pdf_text(&samples::restricted_pdf()).unwrap();

    assert_eq!(text_of(&result), [("Restricted but readable.", true)]);
}

#[test]
fn leading_bytes_before_the_header_are_accepted_as_readers_do() {
    let pdf = samples::text_only_pdf(&["Hello."]);
    for prefix in [
        b"\xEF\xBB\xBF".to_vec(),
        b"\r\n  \t".to_vec(),
        vec![b' '; PDF_HEADER_SEARCH_LIMIT],
    ] {
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(&pdf);

        let result = extract_pdf_text(&bytes);

        assert_eq!(
            result.map(|r| r.pages[0].text.clone()),
            Ok("Hello.".to_string()),
            "prefix of {} bytes",
            prefix.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn an_empty_file_is_reported_as_empty() {
    assert_eq!(extract_pdf_text(b""), Err(OcrError::Empty));
}

#[test]
fn a_zip_or_office_file_is_not_a_pdf_and_the_message_says_what_it_looks_like() {
    let err = extract_pdf_text(b"PK\x03\x04\x14\x00\x06\x00word/document.xml").unwrap_err();

    let OcrError::NotPdf(description) = &err else {
        panic!("expected NotPdf, got {err:?}");
    };
    assert!(description.contains("ZIP"), "{description}");
    assert!(err.to_string().starts_with("not a PDF:"), "{err}");
}

#[test]
fn other_common_uploads_are_described_by_what_they_look_like() {
    let cases: [(&[u8], &str); 6] = [
        (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", "JPEG"),
        (b"\x89PNG\r\n\x1A\n\x00\x00", "PNG"),
        (b"II*\x00\x08\x00\x00\x00", "TIFF"),
        (b"\n<!DOCTYPE html><html><body>502", "HTML"),
        (b"Dear Sir or Madam,\nplease find attached", "plain text"),
        (b"\x00\x01\x02\x03\xfe\xff", "\\x00\\x01\\x02"),
    ];
    for (bytes, expected) in cases {
        let err = extract_pdf_text(bytes).unwrap_err();

        let OcrError::NotPdf(description) = &err else {
            panic!("expected NotPdf for {expected}, got {err:?}");
        };
        assert!(description.contains(expected), "{expected}: {description}");
    }
}

#[test]
fn a_header_further_than_1024_bytes_into_the_file_is_not_a_pdf() {
    let mut bytes = vec![b'x'; PDF_HEADER_SEARCH_LIMIT + 1];
    bytes.extend_from_slice(&samples::text_only_pdf(&["Hello."]));

    assert!(matches!(extract_pdf_text(&bytes), Err(OcrError::NotPdf(_))));
}

#[test]
fn a_pdf_that_needs_a_user_password_is_reported_as_encrypted() {
    let err = extract_pdf_text(&samples::encrypted_pdf()).unwrap_err();

    assert_eq!(err, OcrError::Encrypted);
    assert_eq!(err.error_type(), "EncryptedPdf");
}

#[test]
fn a_garbage_cross_reference_table_is_reported_as_corrupt() {
    let mut pdf = sample("complaint.pdf");
    let xref = pdf.windows(6).rposition(|w| w == b"\nxref\n").unwrap() + 1;
    let trailer = pdf.windows(7).rposition(|w| w == b"trailer").unwrap();
    for (i, byte) in pdf[xref..trailer].iter_mut().enumerate() {
        *byte = b"#@!garbage%& "[i % 13];
    }

    let err = extract_pdf_text(&pdf).unwrap_err();

    assert!(matches!(err, OcrError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().starts_with("corrupt PDF:"), "{err}");
}

#[test]
fn a_pdf_whose_page_tree_is_empty_is_corrupt() {
    let (mut doc, _) = handmade(&[]);

    let err = extract_pdf_text(&save(&mut doc)).unwrap_err();

    assert!(
        matches!(&err, OcrError::Corrupt(reason) if reason.contains("no pages")),
        "{err:?}"
    );
}

#[test]
fn a_page_the_extractor_fails_on_costs_only_that_page() {
    // A Tj with a number instead of a string makes pdf-extract panic.
    let broken: &[u8] = b"BT /F1 12 Tf 72 720 Td 42 Tj ET";
    let (mut doc, _) = handmade(&[(PAGE_ONE, Dictionary::new()), (broken, Dictionary::new())]);

    let result = extract_pdf_text(&save(&mut doc)).unwrap();

    assert_eq!(text_of(&result), [("Page one is fine.", true), ("", false)]);
}

#[test]
fn a_document_whose_every_page_fails_is_corrupt_and_says_why() {
    let broken: &[u8] = b"BT /F1 12 Tf 72 720 Td 42 Tj ET";
    let (mut doc, _) = handmade(&[(broken, Dictionary::new())]);

    let err = extract_pdf_text(&save(&mut doc)).unwrap_err();

    let OcrError::Corrupt(reason) = &err else {
        panic!("expected Corrupt, got {err:?}");
    };
    assert!(reason.contains("page 1"), "{reason}");
    assert!(reason.contains("crashed"), "{reason}");
}

#[test]
fn a_form_xobject_that_draws_itself_fails_its_page_instead_of_overflowing_the_stack() {
    for own_resources in [true, false] {
        let (mut doc, ids) = handmade(&[
            (PAGE_ONE, Dictionary::new()),
            (b"/X0 Do", Dictionary::new()),
        ]);
        let form_id = doc.new_object_id();
        let mut form_dict = dictionary! { "Type" => "XObject", "Subtype" => "Form" };
        if own_resources {
            form_dict.set(
                "Resources",
                dictionary! { "XObject" => dictionary! { "X0" => form_id } },
            );
        }
        doc.objects.insert(
            form_id,
            Object::Stream(Stream::new(form_dict, b"/X0 Do".to_vec())),
        );
        set_xobject(&mut doc, ids[1], form_id);

        let result = extract_pdf_text(&save(&mut doc)).unwrap();

        assert_eq!(
            text_of(&result),
            [("Page one is fine.", true), ("", false)],
            "own resources: {own_resources}"
        );
    }
}

#[test]
fn a_form_xobject_without_its_own_resources_that_draws_text_is_read() {
    let (mut doc, ids) = handmade(&[(b"/X0 Do", Dictionary::new())]);
    let form = Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Form" },
        b"BT /F1 12 Tf 72 720 Td (Drawn by a form.) Tj ET".to_vec(),
    );
    let form_id = doc.add_object(form);
    set_xobject(&mut doc, ids[0], form_id);

    let result = extract_pdf_text(&save(&mut doc)).unwrap();

    assert_eq!(text_of(&result), [("Drawn by a form.", true)]);
}

#[test]
fn a_parent_cycle_in_the_page_tree_fails_its_page_instead_of_overflowing_the_stack() {
    let (mut doc, ids) = handmade(&[(PAGE_ONE, Dictionary::new()), (PAGE_ONE, Dictionary::new())]);
    let page = doc
        .get_object_mut(ids[1])
        .and_then(Object::as_dict_mut)
        .unwrap();
    // No attributes of its own, and a Parent pointing back at itself: an inherited lookup
    // would never end.
    page.remove(b"Resources");
    page.set("Parent", ids[1]);

    let result = extract_pdf_text(&save(&mut doc)).unwrap();

    assert_eq!(text_of(&result), [("Page one is fine.", true), ("", false)]);
}

// ---------------------------------------------------------------------------------------
// Never panics

#[test]
fn every_prefix_of_a_real_pdf_is_an_error_and_never_a_panic() {
    let pdf = sample("complaint.pdf");
    let startxref = pdf.windows(9).rposition(|w| w == b"startxref").unwrap();

    for len in (0..pdf.len()).step_by(50) {
        let result = extract_pdf_text(&pdf[..len]);

        match len {
            0 => assert_eq!(result, Err(OcrError::Empty)),
            1..5 => assert!(
                matches!(result, Err(OcrError::NotPdf(_))),
                "{len}: {result:?}"
            ),
            _ if len < startxref => {
                assert!(
                    matches!(result, Err(OcrError::Corrupt(_))),
                    "{len}: {result:?}"
                );
            }
            _ => {} // cut inside the trailer: anything but a panic
        }
    }
}

#[test]
fn every_prefix_of_a_compressed_pdf_never_panics() {
    let pdf = compressed(&sample("deposition_excerpt.pdf"));

    for len in (0..pdf.len()).step_by(50) {
        let _ = extract_pdf_text(&pdf[..len]);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for round in 0..300 {
        let len = rng.below(4096);
        let mut bytes = rng.bytes(len);
        if round % 2 == 1 {
            // Past the header check, into the parser.
            let mut with_header = b"%PDF-1.7\n".to_vec();
            with_header.append(&mut bytes);
            if round % 4 == 3 {
                with_header.extend_from_slice(b"\nstartxref\n9\n%%EOF\n");
            }
            bytes = with_header;
        }

        let result = extract_pdf_text(&bytes);

        assert!(result.is_err() || round % 2 == 1, "{result:?}");
    }
}

#[test]
fn randomly_damaged_pdfs_never_panic() {
    let originals = [
        sample("complaint.pdf"),
        samples::pdf_with_blank_page(),
        compressed(&sample("lease.pdf")),
    ];
    let mut rng = Rng(0xDA4A_6ED0_0000_0002);
    for round in 0..600 {
        let mut bytes = originals[round % originals.len()].clone();
        for _ in 0..1 + rng.below(12) {
            let at = rng.below(bytes.len());
            bytes[at] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => b"()<>[]/\\%0123456789 RTjTfDo"[rng.below(27)],
                2 => b' ',
                _ => b'9',
            };
        }

        // Whatever it returns, it returns.
        let _ = extract_pdf_text(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// Normalisation and helpers

#[test]
fn normalisation_unifies_line_endings_strips_trailing_spaces_and_collapses_blank_lines() {
    let raw =
        "\n\n   Title line  \r\nsecond line\t\r\n\r\n\r\n\n  \n\nNext paragraph\rlast  \n\n\n";

    assert_eq!(
        normalize_page_text(raw),
        "Title line\nsecond line\n\nNext paragraph\nlast"
    );
}

#[test]
fn normalisation_keeps_single_blank_lines_and_indentation_inside_the_page() {
    assert_eq!(normalize_page_text("a\n\nb\n    c"), "a\n\nb\n    c");
    assert_eq!(normalize_page_text(" \n\t \n"), "");
}

#[test]
fn page_count_hint_reads_the_declared_page_count_and_gives_up_on_non_pdfs() {
    let doc = samples::documents()
        .into_iter()
        .find(|d| d.file_name == "complaint.pdf")
        .unwrap();

    assert_eq!(
        page_count_hint(&samples::render_pdf(&doc)),
        Some(doc.page_count())
    );
    assert_eq!(page_count_hint(&samples::pdf_with_blank_page()), Some(3));
    assert_eq!(page_count_hint(b"PK\x03\x04"), None);
    assert_eq!(page_count_hint(b""), None);
    assert_eq!(page_count_hint(b"%PDF-1.7\ngarbage"), None);
}

#[test]
fn error_types_are_the_stable_names_step_functions_matches_on() {
    assert_eq!(OcrError::Empty.error_type(), "EmptyDocument");
    assert_eq!(OcrError::NotPdf(String::new()).error_type(), "NotPdf");
    assert_eq!(OcrError::Encrypted.error_type(), "EncryptedPdf");
    assert_eq!(OcrError::Corrupt(String::new()).error_type(), "CorruptPdf");
}
