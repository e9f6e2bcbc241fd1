//! Local runner. STUB: being written.
