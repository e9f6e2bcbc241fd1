//! What kind of legal document a text is, from the words near the top of its first page
//! and the stamps on its pages: the rules' document type (`extract-structured`) and the
//! coarser [`DocumentKind`] that decides how long a document's OCR result is cached.

use crate::model::Page;

/// How much of the first page names the document (characters).
const HEAD_CHARS: usize = 1500;

/// Document types by the words that name them near the top of a first page, most
/// specific first.
const TYPES: [(&str, &[&str]); 10] = [
    ("motion", &["motion to", "motion for"]),
    ("complaint", &["complaint"]),
    ("order", &["order", "judgment"]),
    ("deposition", &["deposition"]),
    ("settlement_agreement", &["settlement agreement"]),
    (
        "non_disclosure_agreement",
        &[
            "non-disclosure",
            "nondisclosure",
            "confidentiality agreement",
        ],
    ),
    ("lease", &["lease"]),
    ("letter", &["dear ", "sincerely"]),
    ("contract", &["agreement", "contract"]),
    ("brief", &["brief"]),
];

/// Phrases of a court caption: a first page carrying one is a filing whatever it is
/// called.
const COURT_CAPTIONS: [&str; 5] = [
    "district court",
    "court of appeals",
    "superior court",
    "supreme court",
    "bankruptcy court",
];

/// The document type the first page's head names (`motion`, `complaint`, …, `contract`),
/// or `unknown`.
pub fn document_type(first_page: &str) -> &'static str {
    type_of_head(&head(first_page))
}

/// [`document_type`] of a first page's [`head`].
fn type_of_head(head: &str) -> &'static str {
    TYPES
        .iter()
        .find(|(_, words)| words.iter().any(|w| contains_words(head, w)))
        .map_or("unknown", |(t, _)| t)
}

/// Whether `phrase` occurs in `text` as whole words, allowing an inflection at its end
/// ("orders", "ordered", "leases"): not inside a longer word ("lease" is not in
/// "please", nor "order" in "recorder" or "orderly").
fn contains_words(text: &str, phrase: &str) -> bool {
    const INFLECTIONS: [&str; 6] = ["", "s", "es", "d", "ed", "ing"];
    let word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let starts = !word_char(before) || !phrase.starts_with(char::is_alphanumeric);
        let rest = &text[at + phrase.len()..];
        let ends = !phrase.ends_with(char::is_alphanumeric)
            || INFLECTIONS.iter().any(|suffix| {
                rest.strip_prefix(suffix)
                    .is_some_and(|r| !word_char(r.chars().next()))
            });
        starts && ends
    })
}

fn head(first_page: &str) -> String {
    first_page
        .chars()
        .take(HEAD_CHARS)
        .collect::<String>()
        .to_lowercase()
}

/// The kinds of document whose OCR results are kept for different lengths of time
/// (`LEXPIPE_CACHE_TTL_OCR_{KIND}_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// Something filed with a court: a pleading, motion, order, brief or transcript, or
    /// any document carrying an ECF header.
    Filing,
    /// An agreement: contract, lease, NDA, settlement.
    Contract,
    /// An exhibit: a first page headed `EXHIBIT`, or an ECF attachment (`Document 12-3`).
    Exhibit,
    /// None of those (letters, and pages with no text yet).
    Unknown,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Filing => "filing",
            DocumentKind::Contract => "contract",
            DocumentKind::Exhibit => "exhibit",
            DocumentKind::Unknown => "unknown",
        }
    }
}

/// The kind of the document with these pages: an exhibit by its first line or its ECF
/// attachment number, a filing by an ECF header on any page or its type or caption, a
/// contract by its type.
pub fn document_kind(pages: &[Page]) -> DocumentKind {
    let first = pages.first().map_or("", |p| p.text.as_str());
    let first_line = first.lines().map(str::trim).find(|l| !l.is_empty());
    if first_line.is_some_and(|l| l.to_lowercase().starts_with("exhibit")) {
        return DocumentKind::Exhibit;
    }
    let stamped: Vec<&Page> = pages
        .iter()
        .filter(|p| crate::ocr::decide::has_ecf_stamp(&p.text))
        .collect();
    if stamped.iter().any(|p| is_ecf_attachment(&p.text)) {
        return DocumentKind::Exhibit;
    }
    let head = head(first);
    match type_of_head(&head) {
        "motion" | "complaint" | "order" | "deposition" | "brief" => DocumentKind::Filing,
        _ if !stamped.is_empty() => DocumentKind::Filing,
        "settlement_agreement" | "non_disclosure_agreement" | "lease" | "contract" => {
            DocumentKind::Contract
        }
        _ if COURT_CAPTIONS.iter().any(|c| contains_words(&head, c)) => DocumentKind::Filing,
        _ => DocumentKind::Unknown,
    }
}

/// The ECF header names an attachment of a docket entry: `Document 12-3` (attachment 3
/// of entry 12, where exhibits go).
fn is_ecf_attachment(text: &str) -> bool {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens.windows(2).any(|w| {
        w[0].trim_end_matches(':').eq_ignore_ascii_case("document")
            && w[1].split_once('-').is_some_and(|(entry, part)| {
                !entry.is_empty()
                    && !part.is_empty()
                    && entry.bytes().all(|b| b.is_ascii_digit())
                    && part.bytes().all(|b| b.is_ascii_digit())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(texts: &[&str]) -> Vec<Page> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Page::from_text_layer(i as u32 + 1, (*t).to_string()))
            .collect()
    }

    #[test]
    fn the_first_page_names_the_document_type() {
        assert_eq!(document_type("DEFENDANT'S MOTION TO DISMISS"), "motion");
        assert_eq!(
            document_type("MUTUAL NON-DISCLOSURE AGREEMENT"),
            "non_disclosure_agreement"
        );
        assert_eq!(document_type("Dear Ms. Smith,"), "letter");
        assert_eq!(document_type(""), "unknown");
    }

    #[test]
    fn words_inside_longer_words_do_not_name_a_type() {
        // "lease" in "please", "order" in "recorder", "brief" in "briefly".
        assert_eq!(
            document_type("FINAL DEMAND\nPlease remit the balance within ten days."),
            "unknown"
        );
        assert_eq!(
            document_type("County Recorder, Instrument 2024-11"),
            "unknown"
        );
        assert_eq!(document_type("As briefly noted in our call"), "unknown");
        assert_eq!(document_type("Keep the office orderly"), "unknown");
        assert_eq!(
            document_type("COMMERCIAL LEASE\nThis lease is made"),
            "lease"
        );
        assert_eq!(document_type("ORDER GRANTING SUMMARY JUDGMENT"), "order");
        assert_eq!(document_type("IT IS SO ORDERED."), "order");
        assert_eq!(document_type("PLAINTIFFS' COMPLAINTS"), "complaint");
    }

    #[test]
    fn filings_contracts_and_exhibits_are_told_apart() {
        let stamp = "Case 1:19-cv-01234-ABC Document 12 Filed 03/04/2019 Page 1 of 9";
        let attachment = "Case 1:19-cv-01234-ABC Document 12-3 Filed 03/04/2019 Page 1 of 4";
        use DocumentKind::*;
        for (texts, kind) in [
            (vec![stamp, stamp], Filing),
            (
                vec!["UNITED STATES DISTRICT COURT\nDISTRICT OF NEVADA"],
                Filing,
            ),
            (vec!["PLAINTIFF'S COMPLAINT FOR DAMAGES"], Filing),
            (vec!["COMMERCIAL LEASE\nThis lease is made"], Contract),
            (vec!["SERVICES AGREEMENT"], Contract),
            (vec!["EXHIBIT A\nInvoice 7781"], Exhibit),
            (vec![attachment, attachment], Exhibit),
            (vec!["Dear Mr. Ortiz,"], Unknown),
            (vec!["", ""], Unknown),
            (vec![], Unknown),
        ] {
            assert_eq!(document_kind(&pages(&texts)), kind, "{texts:?}");
        }
    }
}
