//! Compiles the test-only contract under `tests/proto/` (not the repository's `proto/`) with
//! protox, the same way `ironmesh-proto` compiles the real ones: the descriptor set keeps custom
//! options, so the integration tests route it exactly as production routes the real contracts.
//! Only `tests/support/transcoding.rs` includes the output; the library never does.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time (see libs/proto/build.rs): a shared target dir reuses compiled scripts.
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let own = manifest.join("tests/proto");
    let shared = manifest.join("../proto");
    let file = own.join("ironmesh/testing/v1/transcoding.proto");
    println!("cargo:rerun-if-changed={}", own.display());
    println!("cargo:rerun-if-changed={}", file.display());

    let mut compiler = protox::Compiler::new([&own, &shared])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files([&file])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("testing_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".google.api", "::ironmesh_proto::google::api")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
