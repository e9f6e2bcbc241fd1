//! Redis core. STUB: being written.
