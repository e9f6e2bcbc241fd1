//! OCR stage engines. Locally: the PDF text layer. STUB: being written.

use crate::model::OcrResult;

/// Method name of the text-layer engine, part of the OCR cache key.
pub const PDF_TEXT_METHOD: &str = "pdf_text";

/// Why a document's text could not be read. Each is terminal for that document only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("not a PDF: the file does not start with %PDF- ({0})")]
    NotPdf(String),
    #[error("encrypted PDF: cannot read it without its password")]
    Encrypted,
    #[error("corrupt PDF: {0}")]
    Corrupt(String),
}

impl OcrError {
    /// Stable name for status output and Step Functions `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            OcrError::Empty => "EmptyDocument",
            OcrError::NotPdf(_) => "NotPdf",
            OcrError::Encrypted => "EncryptedPdf",
            OcrError::Corrupt(_) => "CorruptPdf",
        }
    }
}

/// Text layer of every page. Blocking and CPU-bound: call it from `spawn_blocking`.
/// Never panics, whatever the bytes.
///
/// # Errors
/// [`OcrError`] naming what is wrong with the file.
pub fn extract_pdf_text(bytes: &[u8]) -> Result<OcrResult, OcrError> {
    let _ = bytes;
    Err(OcrError::Empty)
}
