//! Choosing the number of components: `demix rank`, `-k auto`, and the library's sweep on
//! synthetic mixtures of known rank (`benches/notes.rs`: N stationary notes with no shared
//! partials, each under its own on/off pattern).

use std::path::Path;

use demix::audio::{Audio, OutputFormat, write_wav};
use demix::nmf::{KRange, NmfParams, RankMethod, RankParams, select_rank};
use demix::sources::Templates;
use demix::spectral::{Stft, StftParams, channel_summed_magnitude};
use serde_json::Value;

use crate::common::{assert_fails, assert_ok, assert_usage_error, demix};

#[path = "../../benches/notes.rs"]
mod notes;

const RATE: u32 = 16_000;
const SECONDS: f64 = 8.0;

fn mixture(n: usize, seed: u64) -> Audio {
    let (mix, _) = notes::note_mixture(n, SECONDS, RATE, seed);
    Audio::new(RATE, vec![mix]).unwrap()
}

fn write_mixture(dir: &Path, name: &str, n: usize) {
    write_wav(dir.join(name), &mixture(n, 0), OutputFormat::Float32).unwrap();
}

fn chosen(n: usize, method: RankMethod) -> usize {
    let stft = Stft::new(&StftParams::new(1024)).unwrap();
    let v = channel_summed_magnitude(&stft, &mixture(n, 0));
    let range = KRange::new(2, n + 3).unwrap();
    let params = RankParams::new(range).with_method(method);
    select_rank(v.t(), &NmfParams::new(1), &params)
        .unwrap()
        .chosen
}

#[test]
fn the_sweep_chooses_the_number_of_notes() {
    for n in [3, 5, 8] {
        assert_eq!(chosen(n, RankMethod::Sweep), n, "{n} notes");
    }
}

/// ARD prunes the 3 + 3 extra components of the range: to the number of notes for 3, and
/// keeping at most two duplicates for 5 and 8 (`cargo run --release --example rank_synthetic 1
/// 8 16000 1024`, these mixtures: 6 of 8 and 9 of 11 components), the overestimate the README
/// reports.
#[test]
fn ard_prunes_to_about_the_number_of_notes() {
    assert_eq!(chosen(3, RankMethod::Ard), 3, "3 notes");
    for n in [5, 8] {
        let k = chosen(n, RankMethod::Ard);
        assert!((n..=n + 2).contains(&k), "{n} notes: {k}");
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rank_writes_json_csv_and_png_that_agree() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    let args = [
        "rank",
        "three.wav",
        "-k",
        "2-6",
        "--n-fft",
        "1024",
        "-o",
        "r",
    ];
    let out = demix(dir.path(), &args);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("three.wav: K = 3 ("), "{stdout}");
    let json = read_json(&dir.path().join("r/rank.json"));
    assert_eq!(json["chosen"], 3);
    assert_eq!(json["input"], "three.wav");
    let per_k = json["per_k"].as_array().unwrap();
    assert_eq!(per_k.len(), 5);
    let csv = std::fs::read_to_string(dir.path().join("r/rank.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "k,cost,stability,held_out,iterations,chosen");
    assert_eq!(lines.len(), per_k.len() + 1);
    for (line, row) in lines[1..].iter().zip(per_k) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], row["k"].to_string());
        for (i, key) in [(1, "cost"), (2, "stability"), (3, "held_out")] {
            let value: f64 = cells[i].parse().unwrap();
            assert_eq!(value, row[key].as_f64().unwrap(), "{key}");
        }
        assert_eq!(cells[5] == "1", row["k"] == 3);
    }
    let png = std::fs::read(dir.path().join("r/rank.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Existing results are kept without --force, replaced with it.
    let again = demix(dir.path(), &args);
    assert_fails(&again, &["rank.json", "--force"]);
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_ok(&demix(dir.path(), &forced));
}

#[test]
fn rank_results_do_not_depend_on_the_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "five.wav", 5);
    let run = |threads: &str, out: &str| {
        let args = [
            "--threads",
            threads,
            "rank",
            "five.wav",
            "-k",
            "3-7",
            "--n-fft",
            "1024",
            "-o",
            out,
        ];
        assert_ok(&demix(dir.path(), &args));
        std::fs::read(dir.path().join(out).join("rank.json")).unwrap()
    };
    assert_eq!(run("1", "one"), run("2", "two"));
}

/// `demix COMMAND INPUT -k auto --k-range RANGE --n-fft 1024 -o OUT EXTRA...` in `dir`, which
/// must succeed; its standard output.
fn auto(dir: &Path, [command, input, range, out]: [&str; 4], extra: &[&str]) -> String {
    let mut args = vec![
        command,
        input,
        "-k",
        "auto",
        "--k-range",
        range,
        "--n-fft",
        "1024",
        "-o",
        out,
    ];
    args.extend_from_slice(extra);
    let output = demix(dir, &args);
    assert_ok(&output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn separate_with_k_auto_writes_one_stem_per_note() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    let stdout = auto(dir.path(), ["separate", "three.wav", "2-6", "out"], &[]);
    assert!(
        stdout.contains("3 sources") && stdout.contains("K = 3 chosen"),
        "{stdout}"
    );
    let mut stems: Vec<String> = std::fs::read_dir(dir.path().join("out/three"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    assert_eq!(stems, ["source1.wav", "source2.wav", "source3.wav"]);
    // --sources without -k chooses K too, at least the number of sources.
    let args = [
        "separate",
        "three.wav",
        "--sources",
        "2",
        "--k-range",
        "2-6",
        "--n-fft",
        "1024",
        "-o",
        "grouped",
    ];
    let out = demix(dir.path(), &args);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("K = 3 chosen"));
}

#[test]
fn inspect_with_k_auto_finds_one_component_per_note() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    let stdout = auto(dir.path(), ["inspect", "three.wav", "2-6", "out"], &[]);
    assert!(
        stdout.contains("3 components") && stdout.contains("K = 3 chosen"),
        "{stdout}"
    );
    let json = read_json(&dir.path().join("out/three/components.json"));
    assert_eq!(json["components"].as_array().unwrap().len(), 3);
    let activations =
        std::fs::read_to_string(dir.path().join("out/three/activations.csv")).unwrap();
    let header = activations.lines().next().unwrap();
    assert_eq!(header.split(',').count(), 1 + 3, "{header}");
}

#[test]
fn inspect_with_k_auto_chooses_on_the_sample_of_a_recording_longer_than_max_frames() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    // 8 s at 16 kHz, hop 256: 501 frames, two blocks of at most 256.
    let stdout = auto(
        dir.path(),
        ["inspect", "three.wav", "2-6", "out"],
        &["--max-frames", "256"],
    );
    assert!(
        stdout.contains("3 components") && stdout.contains("K = 3 chosen"),
        "{stdout}"
    );
    let activations =
        std::fs::read_to_string(dir.path().join("out/three/activations.csv")).unwrap();
    assert_eq!(activations.lines().count(), 1 + 501);
    assert_eq!(
        activations.lines().next().unwrap().split(',').count(),
        1 + 3
    );
}

#[test]
fn inspect_with_k_auto_records_each_files_k_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    write_mixture(&dir.path().join("in"), "three.wav", 3);
    write_mixture(&dir.path().join("in"), "five.wav", 5);
    let stdout = auto(dir.path(), ["inspect", "in", "2-8", "out"], &[]);
    assert!(stdout.contains("K = 3 chosen"), "{stdout}");
    assert!(stdout.contains("K = 5 chosen"), "{stdout}");
    let report = read_json(&dir.path().join("out/demix-report.json"));
    let files = report["files"].as_array().unwrap();
    for file in files {
        assert_eq!(file["params"]["components"], "auto");
        assert_eq!(file["params"]["k_range"], "2-8");
    }
    let mut chosen: Vec<(String, u64)> = files
        .iter()
        .map(|f| {
            let input = Path::new(f["input"].as_str().unwrap()).file_name().unwrap();
            let input = input.to_string_lossy().into_owned();
            (input, f["chosen_k"].as_u64().unwrap())
        })
        .collect();
    chosen.sort();
    assert_eq!(chosen, [("five.wav".into(), 5), ("three.wav".into(), 3)]);
}

#[test]
fn learn_with_k_auto_learns_one_template_per_note() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "five.wav", 5);
    let stdout = auto(dir.path(), ["learn", "five.wav", "2-8", "five.npz"], &[]);
    assert!(
        stdout.contains("5 is templates") && stdout.contains("K = 5 chosen"),
        "{stdout}"
    );
    let templates = Templates::load(&dir.path().join("five.npz")).unwrap();
    assert_eq!(templates.len(), 5);
}

#[test]
fn backwards_and_zero_ranges_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    for bad in ["5-2", "0-4", "x"] {
        let out = demix(dir.path(), &["rank", "three.wav", "-k", bad, "-o", "r"]);
        assert_usage_error(&out, &[bad, "LOW-HIGH"]);
        for (command, out) in [("separate", "s"), ("inspect", "i"), ("learn", "l.npz")] {
            let args = [
                command,
                "three.wav",
                "-k",
                "auto",
                "--k-range",
                bad,
                "-o",
                out,
            ];
            assert_usage_error(&demix(dir.path(), &args), &[bad, "LOW-HIGH"]);
        }
    }
    for out in ["r", "s", "i", "l.npz"] {
        assert!(!dir.path().join(out).exists(), "{out}");
    }
}

#[test]
fn a_bad_range_is_refused_without_k_auto_too() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    for (command, out) in [("separate", "s"), ("inspect", "i"), ("learn", "l.npz")] {
        let args = [
            command,
            "three.wav",
            "-k",
            "3",
            "--k-range",
            "5-2",
            "-o",
            out,
        ];
        assert_usage_error(&demix(dir.path(), &args), &["5-2", "LOW-HIGH"]);
        assert!(!dir.path().join(out).exists(), "{out}");
    }
}

#[test]
fn k_auto_with_note_templates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_mixture(dir.path(), "three.wav", 3);
    let args = [
        "inspect",
        "three.wav",
        "-k",
        "auto",
        "--notes",
        "C3-C5",
        "-o",
        "i",
    ];
    assert_usage_error(&demix(dir.path(), &args), &["-k", "auto", "note templates"]);
    assert!(!dir.path().join("i").exists());
}

#[test]
fn a_range_beyond_the_frames_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 0.2 s at 16 kHz: 13 frames of hop 256.
    let short = Audio::new(RATE, vec![mixture(3, 0).channels[0][..3200].to_vec()]).unwrap();
    write_wav(dir.path().join("short.wav"), &short, OutputFormat::Float32).unwrap();
    let out = demix(
        dir.path(),
        &[
            "rank",
            "short.wav",
            "-k",
            "2-20",
            "--n-fft",
            "1024",
            "-o",
            "r",
        ],
    );
    assert_fails(&out, &["short.wav", "up to 20", "13 frames"]);
    for (command, out) in [("inspect", "i"), ("learn", "l.npz")] {
        let args = [
            command,
            "short.wav",
            "-k",
            "auto",
            "--k-range",
            "2-20",
            "--n-fft",
            "1024",
            "-o",
            out,
        ];
        let failed = demix(dir.path(), &args);
        assert_fails(&failed, &["short.wav", "up to 20", "13 frames"]);
    }
    for out in ["r", "i", "l.npz"] {
        assert!(!dir.path().join(out).exists(), "{out}");
    }
}
