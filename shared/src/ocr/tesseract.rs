//! Local image OCR: pages rendered by poppler's `pdftoppm` and read by the Tesseract CLI.
//!
//! The CLI rather than the `tesseract` crate: it needs no C toolchain or headers at build
//! time (`libtesseract-dev`, `libclang`), only the Debian packages `tesseract-ocr`,
//! `tesseract-ocr-eng` and `poppler-utils` at run time, and a crash in it costs one page,
//! not the process. Its TSV output gives every word with its confidence; lines and
//! paragraphs are rebuilt from the block/paragraph/line numbers.
//!
//! Everything here is blocking: the OCR step runs one page per CPU permit
//! ([`crate::app::App::run_cpu`]), and each Tesseract process is held to one thread
//! (`OMP_THREAD_LIMIT=1`) so that pages in parallel do not oversubscribe the cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::OcrConfig;

/// Method name of Tesseract results, part of the OCR cache key.
pub const METHOD: &str = "tesseract";
/// Bump when the text produced for the same page can change (rendering, TSV assembly).
pub const VERSION: u32 = 1;

/// What to say when a tool is missing.
pub const INSTALL_HINT: &str = "install them with `apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils` (Debian/Ubuntu), \
     or point LEXPIPE_TESSERACT / LEXPIPE_PDFTOPPM at them";

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The command cannot be run (not installed, not on `PATH`).
    #[error("{tool} is not installed or cannot be run ({command}: {message}); {INSTALL_HINT}")]
    Missing {
        tool: &'static str,
        command: String,
        message: String,
    },
    /// The command ran and failed on this page.
    #[error("{tool} failed on page {page}: {message}")]
    Failed {
        tool: &'static str,
        page: u32,
        message: String,
    },
}

/// The text Tesseract read on one page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageText {
    /// Normalised as every engine's text ([`super::normalize_page_text`]).
    pub text: String,
    /// Mean confidence of the words read, 0 to 100; `None` when no word was read.
    pub confidence: Option<f32>,
    /// Words read.
    pub words: usize,
}

/// The commands and their settings.
#[derive(Debug, Clone)]
pub struct Tools {
    pub tesseract: PathBuf,
    pub pdftoppm: PathBuf,
    pub dpi: u32,
    pub lang: String,
}

impl Tools {
    pub fn from_config(cfg: &OcrConfig) -> Tools {
        Tools {
            tesseract: cfg.tesseract.clone(),
            pdftoppm: cfg.pdftoppm.clone(),
            dpi: cfg.dpi,
            lang: cfg.lang.clone(),
        }
    }

    /// Checks that both commands run (`--version` / `-v`). Blocking.
    ///
    /// # Errors
    /// [`ToolError::Missing`] naming the first command that cannot be run.
    pub fn check(&self) -> Result<(), ToolError> {
        for (tool, command, arg) in [
            ("pdftoppm", &self.pdftoppm, "-v"),
            ("tesseract", &self.tesseract, "--version"),
        ] {
            let status = Command::new(command)
                .arg(arg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if let Err(e) = status {
                return Err(ToolError::Missing {
                    tool,
                    command: command.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Renders page `page` (1-based) of the PDF at `pdf` and reads it. Blocking; works in
    /// a temporary folder that is removed afterwards.
    ///
    /// # Errors
    /// A tool is missing or fails on this page.
    pub fn read_page(&self, pdf: &Path, page: u32) -> Result<PageText, ToolError> {
        let dir = tempfile::tempdir().map_err(|e| ToolError::Failed {
            tool: "pdftoppm",
            page,
            message: format!("cannot create a temporary folder: {e}"),
        })?;
        let root = dir.path().join("page");
        let n = page.to_string();
        run(
            "pdftoppm",
            page,
            Command::new(&self.pdftoppm)
                .args(["-r", &self.dpi.to_string(), "-f", &n, "-l", &n])
                .args(["-gray", "-png", "-singlefile"])
                .arg(pdf)
                .arg(&root),
        )?;
        let image = root.with_extension("png");
        let tsv = run(
            "tesseract",
            page,
            Command::new(&self.tesseract)
                .arg(&image)
                .arg("stdout")
                .args(["-l", &self.lang, "--dpi", &self.dpi.to_string(), "tsv"])
                .env("OMP_THREAD_LIMIT", "1"),
        )?;
        Ok(parse_tsv(&String::from_utf8_lossy(&tsv)))
    }
}

fn run(tool: &'static str, page: u32, cmd: &mut Command) -> Result<Vec<u8>, ToolError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ToolError::Missing {
            tool,
            command: program,
            message: e.to_string(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message: String = stderr.trim().chars().take(300).collect();
        return Err(ToolError::Failed {
            tool,
            page,
            message: format!("exit {}: {message}", out.status),
        });
    }
    Ok(out.stdout)
}

/// Text and mean word confidence from Tesseract's TSV output (`level page_num block_num
/// par_num line_num word_num left top width height conf text`): words joined by spaces
/// within a line, lines by newlines, paragraphs and blocks by a blank line.
pub fn parse_tsv(tsv: &str) -> PageText {
    let mut out = String::new();
    let mut last_line: Option<(u32, u32, u32)> = None;
    let mut conf_sum = 0.0f64;
    let mut words = 0usize;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        let conf: f64 = cols[10].trim().parse().unwrap_or(-1.0);
        if text.is_empty() || conf < 0.0 {
            continue;
        }
        let num = |i: usize| cols[i].trim().parse::<u32>().unwrap_or(0);
        let line = (num(2), num(3), num(4));
        match last_line {
            Some(prev) if prev == line => out.push(' '),
            Some(prev) if (prev.0, prev.1) == (line.0, line.1) => out.push('\n'),
            Some(_) => out.push_str("\n\n"),
            None => {}
        }
        last_line = Some(line);
        out.push_str(text);
        conf_sum += conf;
        words += 1;
    }
    PageText {
        text: super::normalize_page_text(&out),
        confidence: (words > 0).then(|| (conf_sum / words as f64) as f32),
        words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_become_lines_and_paragraphs_with_a_mean_confidence() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t2550\t3300\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tUNITED\n\
                   5\t1\t1\t1\t1\t2\t70\t10\t50\t20\t93.5\tSTATES\n\
                   5\t1\t1\t1\t2\t1\t10\t40\t50\t20\t90\tCourt\n\
                   5\t1\t2\t1\t1\t1\t10\t90\t50\t20\t80\tORDER\n\
                   5\t1\t2\t1\t1\t2\t10\t90\t50\t20\t-1\t \n";
        let page = parse_tsv(tsv);
        assert_eq!(page.text, "UNITED STATES\nCourt\n\nORDER");
        assert_eq!(page.words, 4);
        assert!((page.confidence.unwrap() - 90.0).abs() < 1e-3);
        assert_eq!(parse_tsv("").confidence, None);
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let tools = Tools {
            tesseract: PathBuf::from("/nonexistent/tesseract"),
            pdftoppm: PathBuf::from("/nonexistent/pdftoppm"),
            dpi: 300,
            lang: "eng".into(),
        };
        let e = tools.check().unwrap_err();
        assert!(matches!(
            e,
            ToolError::Missing {
                tool: "pdftoppm",
                ..
            }
        ));
        assert!(e.to_string().contains("apt-get install"), "{e}");
    }
}
