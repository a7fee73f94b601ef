//! Tests that span the crate's modules: the fuzz targets of the stream decoding.

mod fuzz_sse;
