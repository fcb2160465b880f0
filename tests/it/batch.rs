//! Batch processing through the `demix` binary.
