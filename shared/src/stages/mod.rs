//! Stages. STUB: being written.
