//! The function binaries are linked as position-dependent executables (`-no-pie`): a PIE
//! carries one dynamic relocation for every pointer in its read-only data (1.5 MB of
//! `.rela.dyn` in `ocr-poll`, a tenth of the file), which the loader applies at every cold
//! start, and provided.al2023's glibc 2.34 predates packed relocations (DT_RELR). The code
//! stays position-independent; only the final link differs.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
