//! Synthetic legal documents shipped in `samples/`. STUB: being written.
