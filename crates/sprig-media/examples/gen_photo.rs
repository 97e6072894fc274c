//! Writes the deterministic 12 MP benchmark JPEG (4000 × 3000, EXIF with GPS) to a path.
//!
//! `cargo run --release -p sprig-media --example gen_photo -- photo.jpg`

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: gen_photo <output.jpg>")?;
    std::fs::write(&path, sprig_testkit::images::photo_12mp())?;
    Ok(())
}
