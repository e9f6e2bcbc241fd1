//! Byte → character offset conversion, one pass over the text per `extract` call.

/// Converts byte offsets of one text into character offsets.
///
/// Regexes report byte offsets but mentions carry character offsets. Counting characters
/// from the start for every match would make extraction quadratic on long documents, and
/// a full byte→char table costs four bytes per byte of text. The accepted mentions are
/// sorted and never overlap, so their offsets arrive in increasing order: a cursor that
/// only moves forward converts all of them in a single pass over the text, with no table.
/// An offset behind the cursor (never produced by the extractor) restarts the count, so
/// the answer is always right.
pub(super) struct CharOffsets<'t> {
    text: &'t str,
    /// ASCII text: byte and character offsets coincide.
    ascii: bool,
    byte: usize,
    chars: usize,
}

impl<'t> CharOffsets<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        CharOffsets {
            text,
            ascii: text.is_ascii(),
            byte: 0,
            chars: 0,
        }
    }

    /// Character offset of byte offset `byte` (a char boundary of the text).
    pub(super) fn char_at(&mut self, byte: usize) -> usize {
        if self.ascii {
            return byte;
        }
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}
