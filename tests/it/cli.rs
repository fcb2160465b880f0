//! The `demix` binary: one sentence-named test per rejected input, each checking the exit code,
//! a one-line message naming the file (or flag) and the problem, and that nothing is left in the
//! output folder; then the cases that succeed, and how existing output and inputs are treated.

use std::fs;
use std::path::Path;

use demix::audio::{Audio, OutputFormat, read_audio, write_wav};

use crate::common::{
    TestRng, assert_fails, assert_usage_error, demix, flac_bytes, quantize, separate, two_tones,
};

/// One second of two tones at 8 kHz, `channels` channels, `variant` shifting the low one.
fn mix(channels: usize, variant: usize) -> Audio {
    two_tones(channels, 220.0 * (variant + 1) as f32)
}

/// Writes a stereo 16-bit test input at `dir/name`.
fn write_input(dir: &Path, name: &str) {
    write_wav(dir.join(name), &mix(2, 0), OutputFormat::Int16).unwrap();
}

/// Names in `dir/out`, hidden ones included (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir.join("out")) {
        Ok(read) => read
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// The output folder holds no track folder and no hidden temporary folder: it is empty or absent.
#[track_caller]
fn assert_nothing_written(dir: &Path) {
    assert_eq!(
        entries(dir),
        Vec::<String>::new(),
        "left in the output folder"
    );
}

/// Names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn missing_file_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = separate(dir.path(), &["absent.wav"], &[]);
    assert_fails(&out, &["absent.wav", "no such file"]);
    assert_nothing_written(dir.path());
}

#[test]
fn directory_without_audio_files_is_reported() {
    // A folder is walked for audio files (tests/it/batch.rs); this one has none.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("album")).unwrap();
    let out = separate(dir.path(), &["album"], &[]);
    assert_fails(&out, &["album", "no audio files found"]);
    assert_nothing_written(dir.path());
}

#[test]
fn empty_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.wav"), b"").unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "empty"]);
    assert_nothing_written(dir.path());
}

#[test]
fn text_file_named_wav_is_reported_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("x.wav"),
        "These are the lyrics, not the song.\n".repeat(50),
    )
    .unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "unsupported"]);
    assert_nothing_written(dir.path());
}

#[test]
fn wav_header_followed_by_garbage_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = TestRng::new(1);
    let garbage: Vec<u8> = (0..4000).map(|_| rng.next_u64() as u8).collect();
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&(4 + garbage.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVE");
    bytes.extend_from_slice(&garbage);
    fs::write(dir.path().join("x.wav"), bytes).unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "corrupt"]);
    assert_nothing_written(dir.path());
}

/// One second of 16-bit audio at 8 kHz as FLAC.
fn flac_input() -> Vec<u8> {
    let audio = mix(2, 0);
    let ints: Vec<Vec<i32>> = audio.channels.iter().map(|c| quantize(c, 16)).collect();
    flac_bytes(&ints, 16, 8000)
}

#[test]
fn flac_with_flipped_bytes_in_its_frames_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = flac_input();
    // Flip bytes inside the audio frames (the metadata takes the first few hundred bytes).
    let len = bytes.len();
    for i in (len / 2..len / 2 + 64).step_by(8) {
        bytes[i] ^= 0xA5;
    }
    fs::write(dir.path().join("x.flac"), bytes).unwrap();
    let out = separate(dir.path(), &["x.flac"], &[]);
    assert_fails(&out, &["x.flac", "corrupt"]);
    assert_nothing_written(dir.path());
}

#[test]
fn wav_whose_data_chunk_claims_more_bytes_than_present_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let path = dir.path().join("x.wav");
    let mut bytes = fs::read(&path).unwrap();
    // hound writes a 16-byte fmt chunk, so the data chunk's length is at byte 40 and its
    // samples start at 44. Cut the file in the middle of them, as an interrupted copy does.
    assert_eq!(&bytes[36..40], b"data");
    let declared = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 44 + declared);
    bytes.truncate(44 + declared / 2 + 1);
    fs::write(&path, bytes).unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "truncated"]);
    assert_nothing_written(dir.path());
}

#[test]
fn flac_cut_in_the_middle_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = flac_input();
    bytes.truncate(bytes.len() / 2);
    fs::write(dir.path().join("x.flac"), bytes).unwrap();
    let out = separate(dir.path(), &["x.flac"], &[]);
    assert_fails(&out, &["x.flac", "truncated"]);
    assert_nothing_written(dir.path());
}

#[test]
fn audio_shorter_than_one_frame_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let short = Audio::new(8000, vec![mix(1, 0).channels[0][..1000].to_vec()]).unwrap();
    write_wav(dir.path().join("x.wav"), &short, OutputFormat::Int16).unwrap();
    // The default --n-fft of 2048.
    let out = demix(
        dir.path(),
        &["separate", "x.wav", "-o", "out", "-k", "2", "--iter", "20"],
    );
    assert_fails(&out, &["x.wav", "too short", "1000", "2048"]);
    assert_nothing_written(dir.path());
}

/// A float WAV of the test mix with `value` at sample 1234 of channel 1.
fn write_with_sample(dir: &Path, name: &str, value: f32) {
    let mut audio = mix(2, 0);
    audio.channels[1][1234] = value;
    write_wav(dir.join(name), &audio, OutputFormat::Float32).unwrap();
}

#[test]
fn nan_samples_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_with_sample(dir.path(), "x.wav", f32::NAN);
    // An existing output folder: the failed track must not leave its temporary folder in it.
    fs::create_dir(dir.path().join("out")).unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "NaN", "1234"]);
    assert_nothing_written(dir.path());
}

#[test]
fn infinite_samples_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_with_sample(dir.path(), "x.wav", f32::NEG_INFINITY);
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "inf", "1234"]);
    assert_nothing_written(dir.path());
    assert!(
        !dir.path().join("out").exists(),
        "the output folder it created"
    );
}

#[test]
fn zero_or_a_hundred_thousand_threads_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    for threads in ["0", "100000"] {
        let args = ["separate", "x.wav", "-o", "out", "--threads", threads];
        let out = demix(dir.path(), &args);
        assert_usage_error(&out, &["--threads", "between 1 and 1024", threads]);
    }
    assert_nothing_written(dir.path());
}

#[test]
fn a_file_name_with_a_newline_is_printed_escaped_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = demix(dir.path(), &["separate", "a\nb.wav", "-o", "out"]);
    assert_fails(&out, &["a\\nb.wav", "no such file"]);
}

#[test]
fn a_huge_n_fft_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(
        dir.path(),
        &["separate", "x.wav", "-o", "out", "--n-fft", "1073741824"],
    );
    assert_usage_error(&out, &["--n-fft", "at most 1048576", "1073741824"]);
    assert_nothing_written(dir.path());
}

#[test]
fn a_huge_iteration_limit_runs_until_the_fit_converges_instead_of_aborting() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let args = [
        "separate",
        "x.wav",
        "-o",
        "out",
        "--n-fft",
        "256",
        "--iter",
        "1000000000000000000",
    ];
    let out = demix(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("converged after"));
}

#[test]
fn a_hundred_thousand_components_are_refused_with_the_estimate_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(
        dir.path(),
        &["separate", "x.wav", "-o", "out", "-k", "100000"],
    );
    // Either limit may apply (the memory available, or --max-memory): both name the flag.
    assert_fails(
        &out,
        &[
            "x.wav",
            "--max-memory",
            "100000 components",
            "GiB",
            "allowed",
        ],
    );
    assert_nothing_written(dir.path());
    let out = demix(
        dir.path(),
        &["separate", "x.wav", "-o", "out", "--max-memory", "1K"],
    );
    assert_fails(
        &out,
        &["x.wav", "--max-memory", "more than the 1.0 KiB allowed"],
    );
    let out = demix(
        dir.path(),
        &["separate", "x.wav", "-o", "out", "--max-memory", "lots"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn penalties_that_silence_every_activation_are_an_error_not_silent_stems() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(
        dir.path(),
        &[
            "separate",
            "x.wav",
            "-o",
            "out",
            "--smoothness",
            "1e30",
            "--n-fft",
            "256",
        ],
    );
    assert_fails(&out, &["x.wav", "vanished", "smoothness"]);
    assert_nothing_written(dir.path());
}

#[test]
fn learn_refuses_an_output_that_is_not_an_npz_archive() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(dir.path(), &["learn", "x.wav", "-o", "t.wav"]);
    assert_usage_error(&out, &["t.wav", "NAME.npz"]);
    assert_eq!(files_in(dir.path()), ["x.wav"]);
}

#[test]
fn free_components_without_a_source_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(
        dir.path(),
        &["separate", "x.wav", "-o", "out", "--free", "2"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--source"));
    assert_nothing_written(dir.path());
}

#[test]
fn a_wav_claiming_four_gigahertz_is_refused_naming_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let path = dir.path().join("x.wav");
    let mut bytes = fs::read(&path).unwrap();
    // The fmt chunk's sample rate and byte rate.
    bytes[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    bytes[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, bytes).unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "4000000000 Hz"]);
    assert_nothing_written(dir.path());
}

#[test]
fn zero_components_is_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(
        dir.path(),
        &[
            "separate", "x.wav", "-o", "out", "-k", "0", "--n-fft", "256",
        ],
    );
    assert_usage_error(&out, &["-k", "at least 1"]);
    assert_nothing_written(dir.path());
}

#[test]
fn zero_hop_is_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--hop", "0"]);
    assert_usage_error(&out, &["--hop", "got 0"]);
    assert_nothing_written(dir.path());
}

#[test]
fn a_floor_of_one_or_more_is_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--floor", "1"]);
    assert_usage_error(&out, &["--floor", "below 1"]);
    assert_nothing_written(dir.path());
}

#[test]
fn too_many_spatial_iterations_are_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--spatial-iterations", "100000"]);
    assert_usage_error(&out, &["--spatial-iterations", "at most 20"]);
    assert_nothing_written(dir.path());
}

#[test]
fn bands_per_octave_beyond_1200_are_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--bands-per-octave", "1201"]);
    assert_usage_error(&out, &["--bands-per-octave", "at most 1200"]);
    assert_nothing_written(dir.path());
}

#[test]
fn shift_penalties_outside_0_to_10_are_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    for bad in ["-0.5", "10.5", "nan", "inf"] {
        let flag = format!("--shift-penalty={bad}");
        let out = separate(dir.path(), &["x.wav"], &[flag.as_str()]);
        assert_usage_error(&out, &["--shift-penalty", "between 0 and 10"]);
    }
    assert_nothing_written(dir.path());
}

#[test]
fn pitch_shifts_beyond_a_tritone_are_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--pitch-shifts", "7"]);
    assert_usage_error(&out, &["--pitch-shifts", "at most 6"]);
    // A negative number is clap's to refuse (with its hint on a second line).
    let out = separate(dir.path(), &["x.wav"], &["--pitch-shifts=-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid value '-1' for '--pitch-shifts")
    );
    assert_nothing_written(dir.path());
}

#[test]
fn hop_larger_than_window_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(
        dir.path(),
        &[
            "separate", "x.wav", "-o", "out", "--n-fft", "512", "--hop", "1024",
        ],
    );
    assert_usage_error(&out, &["--hop", "1024", "512"]);
    assert_nothing_written(dir.path());
}

#[test]
fn unwritable_output_folder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    // Tests run as root, where permissions stop nothing: put the folder under a regular file.
    fs::write(dir.path().join("somefile"), b"keep").unwrap();
    let out = demix(
        dir.path(),
        &[
            "separate",
            "x.wav",
            "-o",
            "somefile/out",
            "--n-fft",
            "256",
            "--iter",
            "20",
        ],
    );
    assert_fails(&out, &["x.wav", "cannot write", "somefile/out"]);
    assert_eq!(fs::read(dir.path().join("somefile")).unwrap(), b"keep");
    assert_eq!(files_in(dir.path()), ["somefile", "x.wav"]);
}

#[test]
fn all_zero_audio_gives_silent_stems_without_nan() {
    let dir = tempfile::tempdir().unwrap();
    let silence = Audio::new(8000, vec![vec![0.0; 8000]; 2]).unwrap();
    write_wav(dir.path().join("quiet.wav"), &silence, OutputFormat::Int16).unwrap();
    // Float output would show a NaN that 16-bit output turns into 0; Itakura-Saito divides by
    // the (zero) data.
    let runs: [(OutputFormat, &[&str]); 3] = [
        (OutputFormat::Int16, &[]),
        (OutputFormat::Float32, &["--float32"]),
        (OutputFormat::Float32, &["--float32", "--loss", "is"]),
    ];
    for (format, flags) in runs {
        let extra: Vec<&str> = flags.iter().copied().chain(["--force"]).collect();
        let out = separate(dir.path(), &["quiet.wav"], &extra);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(entries(dir.path()), ["demix-report.json", "quiet"]);
        let track = dir.path().join("out/quiet");
        assert_eq!(files_in(&track), ["source1.wav", "source2.wav"]);
        for name in ["source1.wav", "source2.wav"] {
            let stem = read_audio(track.join(name)).unwrap();
            assert_eq!(
                (stem.sample_rate, stem.num_channels(), stem.len()),
                (8000, 2, 8000)
            );
            assert!(
                stem.channels.iter().flatten().all(|&x| x == 0.0),
                "{format:?} {name} is not silent (NaN written as a number?)"
            );
        }
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    assert_nothing_written(dir.path());
}

#[test]
fn missing_output_folder_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = demix(dir.path(), &["separate", "x.wav"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    assert_eq!(files_in(dir.path()), ["x.wav"]);
}

#[test]
fn help_exits_0_and_shows_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["separate", "--help"]] {
        let out = demix(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Example") && help.contains("demix separate "),
            "{args:?} shows no example:\n{help}"
        );
    }
}

#[test]
fn existing_track_folder_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    fs::create_dir_all(dir.path().join("out/x")).unwrap();
    fs::write(dir.path().join("out/x/notes.txt"), b"mine").unwrap();
    let out = separate(dir.path(), &["x.wav"], &[]);
    assert_fails(&out, &["x.wav", "already exists", "--force"]);
    assert_eq!(entries(dir.path()), ["x"]);
    assert_eq!(files_in(&dir.path().join("out/x")), ["notes.txt"]);
    assert_eq!(
        fs::read(dir.path().join("out/x/notes.txt")).unwrap(),
        b"mine"
    );
}

#[test]
fn existing_track_folder_is_replaced_with_force() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    fs::create_dir_all(dir.path().join("out/x")).unwrap();
    fs::write(dir.path().join("out/x/notes.txt"), b"mine").unwrap();
    let out = separate(dir.path(), &["x.wav"], &["--force"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        entries(dir.path()),
        ["demix-report.json", "x"],
        "no hidden old or temporary folder"
    );
    assert_eq!(
        files_in(&dir.path().join("out/x")),
        ["source1.wav", "source2.wav"]
    );
}

#[test]
fn input_inside_the_track_folder_is_never_replaced_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("out/song")).unwrap();
    write_input(dir.path(), "out/song/song.wav");
    let before = fs::read(dir.path().join("out/song/song.wav")).unwrap();
    let out = separate(dir.path(), &["out/song/song.wav"], &["--force"]);
    assert_fails(&out, &["out/song/song.wav", "input"]);
    assert_eq!(
        fs::read(dir.path().join("out/song/song.wav")).unwrap(),
        before
    );
    assert_eq!(entries(dir.path()), ["song"]);
    assert_eq!(files_in(&dir.path().join("out/song")), ["song.wav"]);
}

#[test]
fn input_at_the_track_folder_path_is_never_replaced_even_with_force() {
    // An input without extension, `out/song`, whose track folder is `out/song` itself.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("out")).unwrap();
    write_input(dir.path(), "out/song");
    let before = fs::read(dir.path().join("out/song")).unwrap();
    let out = separate(dir.path(), &["out/song"], &["--force"]);
    assert_fails(&out, &["out/song", "input"]);
    assert_eq!(fs::read(dir.path().join("out/song")).unwrap(), before);
    assert_eq!(entries(dir.path()), ["song"]);
}

#[test]
fn second_input_with_the_same_stem_is_reported_and_the_first_still_written() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("a")).unwrap();
    fs::create_dir(dir.path().join("b")).unwrap();
    let (first, second) = (mix(1, 0), mix(1, 2));
    write_wav(dir.path().join("a/song.wav"), &first, OutputFormat::Float32).unwrap();
    write_wav(
        dir.path().join("b/song.wav"),
        &second,
        OutputFormat::Float32,
    )
    .unwrap();
    let out = separate(dir.path(), &["a/song.wav", "b/song.wav"], &["--float32"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "the duplicate, then the count:\n{stderr}");
    assert!(
        lines[0].contains("b/song.wav") && lines[0].contains("a/song.wav"),
        "{stderr}"
    );
    assert!(lines[1].contains("1 of 2"), "{stderr}");

    // Two inputs make a batch, which keeps a report.
    assert_eq!(entries(dir.path()), ["demix-report.json", "song"]);
    let track = dir.path().join("out/song");
    assert_eq!(files_in(&track), ["source1.wav", "source2.wav"]);
    // The stems are those of a/song.wav: they add up to it, not to b/song.wav.
    let stems: Vec<Audio> = ["source1.wav", "source2.wav"]
        .iter()
        .map(|n| read_audio(track.join(n)).unwrap())
        .collect();
    let sum: Vec<f32> = (0..first.len())
        .map(|i| stems[0].channels[0][i] + stems[1].channels[0][i])
        .collect();
    let diff = |x: &Audio| crate::common::max_abs_diff(&sum, &x.channels[0]);
    assert!(
        diff(&first) < 1e-4,
        "stems do not add up to a/song.wav: {}",
        diff(&first)
    );
    assert!(diff(&second) > 0.1);
}

#[test]
fn failing_input_is_skipped_and_the_next_one_written() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "good.wav");
    let out = separate(dir.path(), &["absent.wav", "good.wav"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().next().unwrap().contains("absent.wav"),
        "{stderr}"
    );
    assert_eq!(entries(dir.path()), ["demix-report.json", "good"]);
    assert_eq!(
        files_in(&dir.path().join("out/good")),
        ["source1.wav", "source2.wav"]
    );
}

/// Regression: the parents that `-o a/b/out` created were left behind, empty, when the track
/// failed (only the last folder was removed).
#[test]
fn failed_track_leaves_no_parent_folders_of_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_with_sample(dir.path(), "x.wav", f32::NAN);
    let out = demix(
        dir.path(),
        &[
            "separate",
            "x.wav",
            "-o",
            "new/deeper/out",
            "--n-fft",
            "256",
        ],
    );
    assert_fails(&out, &["x.wav", "NaN"]);
    assert_eq!(files_in(dir.path()), ["x.wav"]);
}

/// Regression: `--force` over a regular file with the track folder's name wrote the stems, then
/// failed to delete the file it had moved aside (as a folder), exited 1 and left it behind as a
/// hidden `.x.demix-old-*` file.
#[test]
fn force_replaces_a_file_that_has_the_track_folders_name() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    fs::create_dir(dir.path().join("out")).unwrap();
    fs::write(dir.path().join("out/x"), b"not a folder").unwrap();
    let out = separate(dir.path(), &["x.wav"], &["--force"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entries(dir.path()), ["demix-report.json", "x"]);
    assert_eq!(
        files_in(&dir.path().join("out/x")),
        ["source1.wav", "source2.wav"]
    );
}

#[test]
fn each_help_describes_only_its_own_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let help = |command: &str| {
        let out = demix(dir.path(), &[command, "--help"]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let separate = help("separate");
    let learn = help("learn");
    let inspect = help("inspect");
    for (name, text) in [("separate", &separate), ("inspect", &inspect)] {
        assert!(!text.contains("for learn"), "{name}:\n{text}");
    }
    assert!(!inspect.contains("templates'"), "{inspect}");
    assert!(!learn.contains("templates'"), "{learn}");
    // Each names its own defaults.
    assert!(
        learn.contains("[default: is]")
            && learn.contains("keep the fit with the lowest cost, at most 100 [default: 1]"),
        "{learn}"
    );
    assert!(separate.contains("[default: kl; with --source, the templates' own]"));
    assert!(inspect.contains("[default: kl]"), "{inspect}");
}
