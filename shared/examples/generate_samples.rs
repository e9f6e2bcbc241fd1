//! Writes the synthetic sample documents (PDFs, a byte-identical copy, the expected entities
//! and a README) into a folder: `cargo run -p lexpipe --example generate_samples -- samples`.
//!
//! The content and the PDF writer live in `lexpipe::samples`; this is only the command line.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("samples"));
    for path in lexpipe::samples::write_samples(&dir)? {
        let size = std::fs::metadata(&path)?.len();
        println!("{:>7} bytes  {}", size, path.display());
    }
    Ok(())
}
