//! Runs the photo pipeline on a file and writes the processed JPEG (and, optionally, the
//! thumbnail): what the benchmark script times against `vipsthumbnail`.
//!
//! `cargo run --release -p sprig-media --example process -- in.jpg out.jpg [thumb.jpg]`

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: process <input> <output.jpg> [thumbnail.jpg]".into());
    };
    let bytes = std::fs::read(&input)?;
    let processed = sprig_media::process_photo(&bytes, &sprig_media::PhotoOptions::default())?;
    std::fs::write(&output, &processed.photo.bytes)?;
    if let Some(thumbnail) = args.next() {
        std::fs::write(thumbnail, &processed.thumbnail.bytes)?;
    }
    Ok(())
}
