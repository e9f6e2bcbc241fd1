//! A PDF of some pages of another: what `hybrid` sends to Textract, so that only the pages
//! whose text layer is not their content are paid for.
//!
//! Page `i` (1-based) of the subset is page `pages[i - 1]` of the original;
//! [`PageMap`] maps the engine's page numbers back.

use lopdf::Document;

use super::{OcrError, quiet};

/// Original page numbers in subset order: `original(i)` is the original number of page
/// `i` of the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMap {
    pages: Vec<u32>,
}

impl PageMap {
    /// The pages kept, sorted and without duplicates.
    pub fn new(pages: &[u32]) -> PageMap {
        let mut pages = pages.to_vec();
        pages.sort_unstable();
        pages.dedup();
        PageMap { pages }
    }

    /// The original page number of page `subset_page` (1-based) of the subset.
    pub fn original(&self, subset_page: u32) -> Option<u32> {
        let i = usize::try_from(subset_page).ok()?.checked_sub(1)?;
        self.pages.get(i).copied()
    }

    /// The original page numbers, in subset order.
    pub fn pages(&self) -> &[u32] {
        &self.pages
    }

    /// `1,2,5-7`: a compact label of the page set (logs, keys through a hash).
    pub fn label(&self) -> String {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.pages.len() {
            let start = self.pages[i];
            let mut end = start;
            while i + 1 < self.pages.len() && self.pages[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            out.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        out.join(",")
    }
}

/// The bytes of a PDF holding only `keep` (1-based page numbers of `pdf`), in order.
/// Blocking and CPU-bound.
///
/// # Errors
/// [`OcrError::Corrupt`] when the file cannot be parsed or written, or a page to keep is
/// not in it.
pub fn subset_pdf(pdf: &[u8], keep: &PageMap) -> Result<Vec<u8>, OcrError> {
    quiet::catch(|| {
        let mut doc = Document::load_mem(pdf)
            .map_err(|e| OcrError::Corrupt(format!("cannot parse the file: {e}")))?;
        let numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
        if let Some(missing) = keep.pages().iter().find(|p| !numbers.contains(p)) {
            return Err(OcrError::Corrupt(format!(
                "page {missing} is not in the document ({} pages)",
                numbers.len()
            )));
        }
        let drop: Vec<u32> = numbers
            .into_iter()
            .filter(|p| !keep.pages().contains(p))
            .collect();
        doc.delete_pages(&drop);
        doc.prune_objects();
        let mut out = Vec::new();
        doc.save_to(&mut out)
            .map_err(|e| OcrError::Corrupt(format!("cannot write the page subset: {e}")))?;
        Ok(out)
    })
    .map_err(|panic| OcrError::Corrupt(format!("the PDF writer crashed: {panic}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_maps_send_subset_pages_back_to_their_original_numbers() {
        let map = PageMap::new(&[7, 2, 3, 3, 9]);
        assert_eq!(map.pages(), &[2, 3, 7, 9]);
        assert_eq!(map.original(1), Some(2));
        assert_eq!(map.original(3), Some(7));
        assert_eq!(map.original(0), None);
        assert_eq!(map.original(5), None);
        assert_eq!(map.label(), "2-3,7,9");
    }

    #[test]
    fn a_subset_keeps_exactly_the_pages_asked_for_with_their_text() {
        let pdf = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/corpus/ca6_1-3.pdf"
        ))
        .unwrap();
        let original = super::super::extract_pdf_text(&pdf).unwrap();
        let sub = subset_pdf(&pdf, &PageMap::new(&[1, 3])).unwrap();
        let read = super::super::extract_pdf_text(&sub).unwrap();
        assert_eq!(read.pages.len(), 2);
        assert_eq!(read.pages[0].text, original.pages[0].text);
        assert_eq!(read.pages[1].text, original.pages[2].text);
        assert!(subset_pdf(&pdf, &PageMap::new(&[4])).is_err());
    }
}
