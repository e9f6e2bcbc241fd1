//! Lambda binaries live in `src/bin/`, one per stage, each a thin wrapper around
//! `lexpipe::stages`. They arrive with the AWS deployment work.
