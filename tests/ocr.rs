//! Image OCR on this machine, against the real Redis: which pages need it (on real court
//! filings and scans made from them), Tesseract reading a rasterised filing, and what a
//! run says when the OCR tools are missing.
//!
//! Scans are made at test time from `tests/corpus/` with `pdftoppm`
//! ([`lexpipe::testing::scans`]); Tesseract and poppler are installed by
//! `scripts/test.sh`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lexpipe::app::App;
use lexpipe::model::{DocumentStatus, OcrReason, OcrResult};
use lexpipe::ocr::extract_pdf_text;
use lexpipe::runner::{self, RunOptions};
use lexpipe::stages::{DocumentRef, artefact, ocr};
use lexpipe::testing::scans::{self, TextLayer};
use lexpipe::text::sha256_hex;
use lexpipe_tests::{cleanup, config_with, require_redis, unique_env};

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus")).join(name)
}

async fn app(env: &str, artefacts: &Path, overrides: &[(&str, &str)]) -> App {
    lexpipe_tests::app_with_artefacts(config_with(env, overrides), artefacts).await
}

/// Lower-case words of two or more letters and digits, counted. (Single letters are left
/// out: the text layer of a letter-spaced heading such as `O R D E R` is one per letter.)
fn words(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for w in text.split_whitespace() {
        let w: String = w
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if w.chars().count() >= 2 {
            *out.entry(w).or_default() += 1;
        }
    }
    out
}

/// Share of `expected`'s words (with multiplicity) found in `got`, and the words missed.
fn recall(expected: &str, got: &str) -> (f64, Vec<String>) {
    let want = words(expected);
    let have = words(got);
    let total: usize = want.values().sum();
    let mut missed = Vec::new();
    let mut found = 0;
    for (w, n) in &want {
        let seen = (*n).min(have.get(w).copied().unwrap_or(0));
        found += seen;
        if seen < *n {
            missed.push(w.clone());
        }
    }
    (found as f64 / total.max(1) as f64, missed)
}

#[test]
fn no_page_of_a_born_digital_filing_or_of_a_scan_with_a_real_ocr_layer_needs_ocr() {
    // ca8_.pdf is a scan whose text layer is a real OCR of it (an image covers each page);
    // the others are born digital, several with ECF headers.
    for entry in std::fs::read_dir(corpus("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "pdf") {
            continue;
        }
        let result = extract_pdf_text(&std::fs::read(&path).unwrap()).unwrap();
        let flagged: Vec<(u32, Option<OcrReason>)> = result
            .pages
            .iter()
            .filter(|p| p.ocr_reason.is_some() && p.has_text_layer)
            .map(|p| (p.number, p.ocr_reason))
            .collect();
        assert!(flagged.is_empty(), "{}: {flagged:?}", path.display());
    }
}

#[test]
fn a_stamped_scan_needs_ocr_for_its_stamp_and_a_plain_scan_for_its_missing_text_layer() {
    // Arrange: a two-page filing rasterised, with and without an ECF header in the text
    // layer (what PACER does to a scanned filing).
    let source = corpus("ca3_003112692106.pdf");
    let stamped = scans::rasterise(&source, 50, TextLayer::EcfHeader).unwrap();
    let plain = scans::rasterise(&source, 50, TextLayer::None).unwrap();

    // Act
    let stamped = extract_pdf_text(&stamped).unwrap();
    let plain = extract_pdf_text(&plain).unwrap();

    // Assert
    assert_eq!(stamped.pages.len(), 2);
    for page in &stamped.pages {
        assert!(page.has_text_layer, "the stamp is a text layer");
        assert!(page.text.contains("Document 12 Filed"), "{}", page.text);
        assert_eq!(page.ocr_reason, Some(OcrReason::StampOnly));
    }
    assert_eq!(stamped.pages_needing_ocr(), vec![1, 2]);
    for page in &plain.pages {
        assert_eq!(page.ocr_reason, Some(OcrReason::NoTextLayer));
    }
}

#[tokio::test]
async fn a_rasterised_filing_with_an_ecf_stamp_is_read_by_tesseract_with_95_percent_of_its_words() {
    // Arrange: a one-page order rasterised at 200 dpi, stamped; the born-digital text is
    // what OCR should find.
    require_redis().await;
    let env = unique_env("tess");
    let dir = tempfile::tempdir().unwrap();
    let source = corpus("ca7_3.pdf");
    let original = extract_pdf_text(&std::fs::read(&source).unwrap()).unwrap();
    let scan = scans::rasterise(&source, 200, TextLayer::EcfHeader).unwrap();
    let file = dir.path().join("scan.pdf");
    std::fs::write(&file, &scan).unwrap();
    let app = app(&env, dir.path(), &[("LEXPIPE_OCR_ENGINE", "tesseract")]).await;
    let doc = DocumentRef::new(&sha256_hex(&scan), &file.display().to_string());

    // Act
    let first = ocr::start(
        &app,
        ocr::StartInput {
            document: doc.clone(),
        },
    )
    .await
    .expect("OCR succeeds");
    let again = ocr::start(&app, ocr::StartInput { document: doc })
        .await
        .expect("OCR succeeds");

    // Assert
    assert!(first.ready);
    assert_eq!(first.pages_needing_ocr, vec![1]);
    assert!(first.pages_unread.is_empty(), "{:?}", first.warnings);
    assert!(first.method.contains("tesseract"), "{}", first.method);
    let result: OcrResult = artefact::load(&app, first.artefact.as_deref().unwrap())
        .await
        .unwrap();
    let page = &result.pages[0];
    assert_eq!(page.ocr_reason, Some(OcrReason::StampOnly));
    assert_eq!(page.ocr_engine.as_deref(), Some("tesseract"));
    assert!(page.ocr_confidence.is_some_and(|c| c > 70.0), "{page:?}");
    let (share, missed) = recall(&original.full_text(), &page.text);
    assert!(
        share >= 0.95,
        "OCR found {share:.3} of the words, missing {missed:?}:\n{}",
        page.text
    );
    assert_eq!(
        (again.work.computed, again.work.reused),
        (0, 1),
        "the OCR result is cached as its own method"
    );
    assert_eq!(again.artefact, first.artefact);
    cleanup(&env).await;
}

#[tokio::test]
async fn without_the_ocr_tools_a_scan_completes_naming_its_unread_pages_and_how_to_install_them() {
    // Arrange
    require_redis().await;
    let env = unique_env("notools");
    let dir = tempfile::tempdir().unwrap();
    let scan = scans::rasterise(&corpus("ca3_003112692106.pdf"), 50, TextLayer::None).unwrap();
    let file = dir.path().join("scan.pdf");
    std::fs::write(&file, &scan).unwrap();
    let app = app(
        &env,
        dir.path(),
        &[
            ("LEXPIPE_OCR_ENGINE", "tesseract"),
            ("LEXPIPE_TESSERACT", "/nonexistent/tesseract"),
            ("LEXPIPE_PDFTOPPM", "/nonexistent/pdftoppm"),
        ],
    )
    .await;
    let opts = RunOptions {
        out_dir: dir.path().join("out"),
        time_scale: 0.0,
        ..RunOptions::default()
    };

    // Act: twice, so that a cached result would show.
    let first = runner::process(&app, std::slice::from_ref(&file), &opts, &|_| {})
        .await
        .unwrap();
    let second = runner::process(&app, &[file], &opts, &|_| {})
        .await
        .unwrap();

    // Assert
    for summary in [&first, &second] {
        let d = &summary.documents[0];
        assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
        assert_eq!(d.pages_unread, vec![1, 2]);
        assert_eq!(summary.documents_with_warnings, 1);
        let warning = d.warnings.join("\n");
        assert!(
            warning.contains("pages 1, 2 could not be read by OCR"),
            "{warning}"
        );
        assert!(
            warning.contains("apt-get install tesseract-ocr"),
            "{warning}"
        );
    }
    assert_eq!(
        second.stages["ocr"].cached, 0,
        "an incomplete OCR result is never cached"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn ocr_results_are_cached_as_long_as_their_kind_of_document_says() {
    // Arrange: a court filing, a contract, and a scan whose text nobody has read yet,
    // with a lifetime of their own for filings and contracts.
    require_redis().await;
    let env = unique_env("ocr-ttl");
    let dir = tempfile::tempdir().unwrap();
    let samples = lexpipe_tests::samples_dir();
    let scan = dir.path().join("scan.pdf");
    std::fs::write(
        &scan,
        scans::rasterise(&corpus("ca3_003112692106.pdf"), 40, TextLayer::None).unwrap(),
    )
    .unwrap();
    let files = [samples.join("complaint.pdf"), samples.join("nda.pdf"), scan];
    let filing = 90 * 86_400;
    let contract = 86_400;
    let other = 30 * 86_400;
    let app = app(
        &env,
        dir.path(),
        &[
            ("LEXPIPE_OCR_ENGINE", "none"),
            ("LEXPIPE_CACHE_TTL_OCR_FILING_SECS", &filing.to_string()),
            ("LEXPIPE_CACHE_TTL_OCR_CONTRACT_SECS", &contract.to_string()),
        ],
    )
    .await;
    let opts = RunOptions {
        out_dir: dir.path().join("out"),
        time_scale: 0.0,
        ..RunOptions::default()
    };

    // Act
    let summary = runner::process(&app, &files, &opts, &|_| {}).await.unwrap();

    // Assert: each document's OCR entry lives as long as its kind says.
    let mut redis = lexpipe_tests::raw_connection().await;
    for (file, secs) in files.iter().zip([filing, contract, other]) {
        let d = summary
            .documents
            .iter()
            .find(|d| d.source == file.display().to_string())
            .unwrap();
        assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
        let sha = sha256_hex(std::fs::read(file).unwrap());
        let key = ocr::cache_spec(&app, &sha, &ocr::pdf_text_method()).key;
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        let ms = secs * 1000;
        assert!(
            pttl <= ms && pttl > ms - 120_000,
            "{}: PTTL {pttl} ms, expected about {secs} s",
            file.display()
        );
    }
    cleanup(&env).await;
}
