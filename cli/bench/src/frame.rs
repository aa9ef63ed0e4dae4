//! Request bodies for h2load: one uncompressed gRPC frame each, written to a file h2load sends
//! (`-d`).

use std::path::Path;

use crate::error::BenchError;

/// An empty request message (every field default) as one gRPC frame: uncompressed, length 0.
pub const EMPTY_FRAME: [u8; 5] = [0; 5];

/// One uncompressed gRPC frame: flag 0, big-endian length, message.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).expect("a small message");
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// Writes `frame` to `path`, the body h2load sends with every request.
pub fn write_frame(path: &Path, frame: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, frame).map_err(BenchError::io(format!(
        "cannot write the request body {}",
        path.display()
    )))
}
