//! Any bytes → `demix::audio::decode` → STFT of every channel. Decoding may fail, but must
//! neither panic nor allocate without bound (libFuzzer's -rss_limit_mb and -malloc_limit_mb
//! catch the latter); what decodes must go through the STFT.
#![no_main]

use std::io::Cursor;

use demix::spectral::{Stft, StftParams};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the extension hint, so both probes' paths are taken.
    let Some((&hint, bytes)) = data.split_first() else {
        return;
    };
    let extension = ["wav", "flac", "aiff", "mp3"][usize::from(hint % 4)];
    let Ok(audio) = demix::audio::decode(Box::new(Cursor::new(bytes.to_vec())), Some(extension))
    else {
        return;
    };
    let stft = Stft::new(&StftParams::new(256)).expect("valid parameters");
    for channel in &audio.channels {
        let spectrum = stft.magnitude(channel);
        assert_eq!(spectrum.nrows(), stft.n_frames(channel.len()));
        assert!(spectrum.iter().all(|m| *m >= 0.0 || m.is_nan()));
    }
});
