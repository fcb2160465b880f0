//! FLAC encoding of integer samples in memory (flacenc; symphonia only decodes), shared by the
//! integration tests, `benches/io.rs` and `samples/make_sample.rs` (which include this file).

/// Encodes integer samples (`channels[c][i]`, in range for `bits`) as a FLAC file in memory.
pub fn flac_bytes(channels: &[Vec<i32>], bits: usize, rate: u32) -> Vec<u8> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let interleaved: Vec<i32> = (0..channels[0].len())
        .flat_map(|i| channels.iter().map(move |c| c[i]))
        .collect();
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .expect("default config");
    let source =
        flacenc::source::MemSource::from_samples(&interleaved, channels.len(), bits, rate as usize);
    let stream =
        flacenc::encode_with_fixed_block_size(&config, source, config.block_size).expect("encodes");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("writes");
    let mut bytes = sink.as_slice().to_vec();
    // flacenc records the short last block as the minimum block size, which makes symphonia
    // take the fixed-block-size stream for a variable one; the FLAC format excludes the last
    // block from that minimum, so it is set to the maximum (bytes 8-9 and 10-11 of the file).
    bytes.copy_within(10..12, 8);
    bytes
}
