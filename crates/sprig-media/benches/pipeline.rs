//! The photo pipeline on a 12 MP (4000 × 3000) camera-like JPEG with EXIF and GPS, and video
//! sniffing. `benches/photo_pipeline.sh` at the repository root compares the same pipeline with
//! `vipsthumbnail`.
//!
//! `cargo bench -p sprig-media --bench pipeline`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sprig_media::{Limits, PhotoOptions, process_photo, sniff_video};
use sprig_testkit::images;

fn bench(c: &mut Criterion) {
    let photo = images::photo_12mp();
    let options = PhotoOptions::default();
    let mut group = c.benchmark_group("photo");
    // One run takes ~0.2 s; ten samples in 15 s give a stable mean without a minutes-long run.
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("process_12mp_jpeg", |b| {
        b.iter(|| process_photo(black_box(&photo), &options).expect("benchmark photo is valid"));
    });
    group.finish();

    let head = images::mp4_head();
    let limits = Limits::default();
    c.bench_function("video/sniff_mp4_head", |b| {
        b.iter(|| sniff_video(black_box(&head), 100 << 20, &limits).expect("valid head"));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
