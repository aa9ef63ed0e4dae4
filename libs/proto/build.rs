//! Compiles `proto/` at build time with protox (pure Rust), so no system `protoc` is needed and every
//! machine generates byte-identical code. The encoded FileDescriptorSet is written next to the code so
//! reflection and the gateway read exactly what was compiled.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with `env!`: a build-script binary is reused by every
    // checkout sharing a target directory (worktrees), and a baked path would compile another
    // checkout's contracts.
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let mut files = Vec::new();
    collect_protos(&root.join("ironmesh"), &mut files)?;
    // google/rpc is not imported by our contracts but services use its error details.
    collect_protos(&root.join("google"), &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(&files)?;
    // Encoded by protox itself: a decode/re-encode through prost_types would drop custom options
    // such as `google.api.http`, which the gateway reads.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("ironmesh_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `prost::Name` on every message: event payloads name their type in content_type
        // (`application/protobuf; proto=<full name>`).
        .compile_fds_with_config(fds, {
            let mut config = tonic_prost_build::Config::new();
            config.enable_type_names();
            config
        })?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
