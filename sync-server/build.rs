//! Rebuilds the server when the built portal UI (`ui/dist/portal`, embedded by rust-embed)
//! changes: a new build has new hashed file names, which `include_bytes!` alone would miss.

fn main() {
    println!("cargo:rerun-if-changed=../ui/dist/portal");
}
