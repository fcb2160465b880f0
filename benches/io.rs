//! Decoding and writing the W180 workload (3 minutes of stereo at 44.1 kHz; see
//! `workloads.rs`): reading a 16-bit WAV and a 16-bit FLAC file, and writing one stereo stem
//! as 16-bit and as 32-bit float WAV and as 16-bit FLAC, in a temporary folder. The files to read are made
//! outside the timed part.

#[path = "../tests/it/flac.rs"]
mod flac;
mod workloads;

use criterion::{Criterion, criterion_group, criterion_main};
use demix::audio::{FlacStreamWriter, OutputFormat, read_audio, write_wav};
use flac::flac_bytes;
use workloads::W180;

/// 16-bit integer samples of `x` (in [-1, 1]).
fn quantize(x: &[f32]) -> Vec<i32> {
    x.iter()
        .map(|&v| ((v * 32768.0).round() as i32).clamp(-32768, 32767))
        .collect()
}

fn io(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let audio = W180.audio();
    let wav = dir.path().join("w180_16.wav");
    write_wav(&wav, &audio, OutputFormat::Int16).expect("writable");
    let flac = dir.path().join("w180.flac");
    let ints: Vec<Vec<i32>> = audio.channels.iter().map(|x| quantize(x)).collect();
    std::fs::write(&flac, flac_bytes(&ints, 16, audio.sample_rate)).expect("writable");

    let mut group = c.benchmark_group("io_w180");
    group.sample_size(10);
    group.bench_function("decode_wav16", |b| {
        b.iter(|| read_audio(&wav).expect("decodes"))
    });
    group.bench_function("decode_flac16", |b| {
        b.iter(|| read_audio(&flac).expect("decodes"))
    });
    let out = dir.path().join("stem.wav");
    group.bench_function("write_wav16", |b| {
        b.iter(|| write_wav(&out, &audio, OutputFormat::Int16).expect("writes"))
    });
    group.bench_function("write_wav_float32", |b| {
        b.iter(|| write_wav(&out, &audio, OutputFormat::Float32).expect("writes"))
    });
    let out_flac = dir.path().join("stem.flac");
    let planes: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
    group.bench_function("write_flac16", |b| {
        b.iter(|| {
            let mut w =
                FlacStreamWriter::create(&out_flac, 2, audio.sample_rate, OutputFormat::Int16)
                    .expect("writable");
            w.write(&planes).expect("writes");
            w.finish().expect("writes")
        })
    });
    group.finish();
}

criterion_group!(benches, io);
criterion_main!(benches);
