//! The HTML report as a reader sees it: rendered by a real browser (headless Chromium),
//! screenshots taken and the DOM the browser built checked. Chromium missing is a failure
//! that names the install command, never a skip.
//!
//! `LEXPIPE_REPORT_SCREENSHOT=docs/report.png` keeps the document page's screenshot
//! (how the one in `docs/` is made).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lexpipe::model::{DocumentOutput, EntityKind, Mention, Page};

const INSTALL: &str = "apt-get install -y chromium (or run ./scripts/test.sh, which installs it)";

fn lexpipe(env: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_lexpipe"))
        .args(args)
        .env("LEXPIPE_ENV", env)
        .env(
            "REDIS_URL",
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )
        .output()
        .expect("lexpipe runs");
    assert!(
        out.status.success(),
        "lexpipe {args:?}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn unique_env() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    format!("t-report-{t:x}-{}", std::process::id())
}

fn cleanup(env: &str) {
    lexpipe_tests::cleanup_blocking(env);
}

/// The Chromium binary, or a panic naming the install command.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        });
        if let Some(p) = found {
            return p;
        }
    }
    panic!(
        "chromium is not installed: the report test renders in a real browser. Install it: {INSTALL}"
    );
}

/// Runs headless Chromium on `file` with `action` (`--dump-dom` or `--screenshot=…`),
/// in a fresh profile, killed after two minutes. Returns stdout.
fn browse(file: &Path, action: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(format!("file://{}", file.canonicalize().unwrap().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromium ({e}); install it: {INSTALL}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "chromium did not finish {action} of {} in 120 s",
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium {action}: exit {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn screenshot(file: &Path, png: &Path) {
    browse(file, &format!("--screenshot={}", png.display()));
    let bytes =
        std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(bytes.len() > 10_000, "a blank page? {} bytes", bytes.len());
}

fn samples() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../samples").to_string()
}

#[test]
fn process_html_writes_a_report_the_browser_renders_with_every_document_and_highlighted_mentions() {
    // Arrange
    let env = unique_env();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();

    // Act
    lexpipe(&env, &["process", &samples(), "--out", dir, "--html"]);
    let index = out.path().join("index.html");
    let index_dom = browse(&index, "--dump-dom");
    screenshot(&index, &out.path().join("index.png"));
    let complaint = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("complaint-") && n.ends_with(".html")
        })
        .expect("a page for complaint.pdf");
    let page_dom = browse(&complaint, "--dump-dom");
    let png = out.path().join("complaint.png");
    screenshot(&complaint, &png);
    if let Ok(keep) = std::env::var("LEXPIPE_REPORT_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
    cleanup(&env);

    // Assert: the index has the summary, a linked row per sample and a bar per stage.
    assert!(out.path().join("summary.json").is_file());
    let pdfs = std::fs::read_dir(samples())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pdf"))
        .count();
    assert_eq!(
        index_dom.matches("<tr><td><a href=").count(),
        pdfs,
        "{index_dom}"
    );
    assert!(
        index_dom.contains("<svg class=\"stage-chart\""),
        "{index_dom}"
    );
    for stage in lexpipe::stages::names::ALL {
        assert!(
            index_dom.contains(&format!("data-stage=\"{stage}\"")),
            "{stage}"
        );
    }
    assert!(index_dom.contains("cache reuse") && index_dom.contains("API calls"));
    // The document page: a legend entry per kind and highlighted mentions with hover text.
    for kind in EntityKind::ALL {
        let class = format!("kind-{}", kind.as_str().to_ascii_lowercase());
        assert!(
            page_dom.contains(&format!("<li><mark class=\"{class}\">")),
            "{class}"
        );
    }
    let marks = page_dom.matches("<mark class=\"kind-").count() - EntityKind::ALL.len();
    assert!(marks > 10, "only {marks} highlighted mentions:\n{page_dom}");
    assert!(page_dom.contains("title=\"PERSON m"), "{page_dom}");
    assert!(page_dom.contains("confidence 0."));
    assert!(
        page_dom.contains("<h2>Entities</h2>") && page_dom.contains("<h2>Structured data</h2>")
    );
}

/// A document whose text holds markup, an ampersand, quotes and multibyte characters,
/// with mentions at character offsets after them and one on a page without a text layer.
fn hostile_document() -> (DocumentOutput, &'static str) {
    let page1 = "Filed by Zoë Müller 🎉 <script>alert(1)</script> & \"Acme <Corp>\" < 5";
    let page2 = "Signed: Jürgen Ørsted";
    let full: Vec<char> = format!("{page1}\n\n{page2}").chars().collect();
    let find = |needle: &str| -> (usize, usize) {
        let n: Vec<char> = needle.chars().collect();
        let start = full
            .windows(n.len())
            .position(|w| w == n.as_slice())
            .unwrap();
        (start, start + n.len())
    };
    let mention = |id: &str, kind, needle: &str| {
        let (start, end) = find(needle);
        Mention {
            id: id.into(),
            kind,
            text: needle.into(),
            normalized: format!("{needle} \"norm\" <n>"),
            start,
            end,
            confidence: 0.87,
            chunk_id: "c0".into(),
        }
    };
    let doc = DocumentOutput {
        document_uuid: "11111111-2222-3333-4444-555555555555".into(),
        source: "filings/hostile <x>.pdf".into(),
        content_sha256: "00".into(),
        ocr_method: "pdf_text".into(),
        pages: vec![
            Page {
                number: 1,
                text: page1.into(),
                has_text_layer: true,
                ..Page::default()
            },
            Page {
                number: 2,
                text: page2.into(),
                has_text_layer: false,
                ..Page::default()
            },
        ],
        chunks: vec![],
        mentions: vec![
            mention("m0", EntityKind::Person, "Zoë Müller"),
            mention("m1", EntityKind::Org, "Acme <Corp>"),
            mention("m2", EntityKind::Person, "Jürgen Ørsted"),
        ],
        entities: vec![],
        structured: None,
        producer: "test".into(),
    };
    (doc, "hostile_x_-11111111")
}

#[test]
fn report_of_a_folder_renders_script_ampersands_and_quotes_in_a_filing_as_text() {
    // Arrange: only a document file, no summary.
    let out = tempfile::tempdir().unwrap();
    let (doc, stem) = hostile_document();
    std::fs::write(
        out.path().join(format!("{stem}.json")),
        serde_json::to_vec_pretty(&doc).unwrap(),
    )
    .unwrap();

    // Act
    lexpipe("unused", &["report", out.path().to_str().unwrap()]);
    let page = out.path().join(format!("{stem}.html"));
    let dom = browse(&page, "--dump-dom");
    let index_dom = browse(&out.path().join("index.html"), "--dump-dom");
    screenshot(&page, &out.path().join("hostile.png"));

    // Assert: the browser built no script element; the text is there, as text.
    assert!(!dom.contains("<script"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \""),
        "{dom}"
    );
    assert!(dom.contains("</mark>\" &lt; 5"), "{dom}");
    assert!(dom.contains(">Zoë Müller</mark>"), "{dom}");
    assert!(dom.contains(">Acme &lt;Corp&gt;</mark>"), "{dom}");
    assert!(
        dom.contains(
            "title=\"ORG m1: Acme &lt;Corp&gt; &quot;norm&quot; &lt;n&gt; (confidence 0.87)\""
        ),
        "{dom}"
    );
    // The second page needs OCR, and its mention is placed on it.
    let page2 = dom.split("id=\"page-2\"").nth(1).expect("page 2");
    assert!(
        page2.contains("needs OCR") && page2.contains(">Jürgen Ørsted</mark>"),
        "{dom}"
    );
    assert!(dom.contains("class=\"page needs-ocr\" id=\"page-2\""));
    // The index shows the file without a summary and escapes its name.
    assert!(index_dom.contains("hostile &lt;x&gt;.pdf"), "{index_dom}");
    assert!(index_dom.contains("No run summary"));
    assert!(!index_dom.contains("<script"));
}
