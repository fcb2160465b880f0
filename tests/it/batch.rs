//! Batch processing through the `demix` binary: folders in, a mirrored tree and a report out,
//! files in parallel, resume, Ctrl-C, shards and their merge, and hostile files, each a clear
//! entry of the report that never stops the batch. Then the runner as a library.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use demix::audio::{Audio, OutputFormat, write_wav};
use demix::batch::{self, Item, JobOutput, Plan, RunOptions, Status};

use crate::common::{FAST, demix, flac_bytes, quantize, separate, two_tones};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// One second of two tones at 8 kHz; `variant` shifts the low one.
fn tones(channels: usize, variant: usize) -> Audio {
    two_tones(channels, 200.0 + 40.0 * variant as f32)
}

/// Writes a 16-bit WAV test input at `dir/rel`, making its folders.
fn write_wav_input(dir: &Path, rel: impl AsRef<Path>, variant: usize) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_wav(&path, &tones(2, variant), OutputFormat::Int16).unwrap();
}

/// The bytes of a 16-bit FLAC test input.
fn flac_input(variant: usize) -> Vec<u8> {
    let audio = tones(2, variant);
    let ints: Vec<Vec<i32>> = audio.channels.iter().map(|c| quantize(c, 16)).collect();
    flac_bytes(&ints, 16, 8000)
}

/// Every path under `root`, relative, sorted, hidden ones included; folders end in `/`.
fn tree(root: &Path) -> Vec<String> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(read) = fs::read_dir(dir) else { return };
        for entry in read {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                out.push(format!("{rel}/"));
                visit(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    visit(root, root, &mut out);
    out.sort();
    out
}

fn read_report(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The report entry whose output (or, lacking one, input) is `key`.
#[track_caller]
fn entry<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["output"] == key || (f["output"].is_null() && f["input"] == key))
        .unwrap_or_else(|| panic!("no entry {key} in {report:#}"))
}

fn statuses(report: &Value) -> Vec<String> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_folder_is_separated_into_a_mirrored_tree_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "music/one.wav", 0);
    write_wav_input(d, "music/a/b/three song.wav", 1);
    write_wav_input(d, "music/A/UPPER.WAV", 2);
    fs::write(d.join("music/a/two.flac"), flac_input(3)).unwrap();
    // Found by its content: no extension.
    fs::copy(d.join("music/one.wav"), d.join("music/a/noext")).unwrap();
    // Passed over: no audio extension and no audio content; hidden.
    fs::write(d.join("music/notes.txt"), "not audio").unwrap();
    fs::copy(d.join("music/one.wav"), d.join("music/.hidden.wav")).unwrap();
    fs::create_dir(d.join("music/.cache")).unwrap();
    fs::copy(d.join("music/one.wav"), d.join("music/.cache/x.wav")).unwrap();

    let out = separate(d, &["music"], &[]);
    assert_exit(&out, 0);
    let mut expected = vec![
        "A/",
        "A/UPPER/",
        "A/UPPER/source1.wav",
        "A/UPPER/source2.wav",
        "a/",
        "a/b/",
        "a/b/three song/",
        "a/b/three song/source1.wav",
        "a/b/three song/source2.wav",
        "a/noext/",
        "a/noext/source1.wav",
        "a/noext/source2.wav",
        "a/two/",
        "a/two/source1.wav",
        "a/two/source2.wav",
        "demix-report.json",
        "one/",
        "one/source1.wav",
        "one/source2.wav",
    ];
    expected.sort();
    assert_eq!(tree(&d.join("out")), expected);

    // Not a terminal: one plain line per finished file, then the summary.
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for n in 1..=5 {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("[{n}/5] music/"))),
            "{lines:#?}"
        );
    }
    assert!(
        lines[5].starts_with("5 file(s) separated in "),
        "{}",
        lines[5]
    );
    assert!(lines[5].ends_with("report out/demix-report.json"));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(!stdout(&out).contains('\u{1b}'), "no terminal escapes");

    let report = read_report(&d.join("out/demix-report.json"));
    assert_eq!(report["format"], "demix-report/1");
    assert_eq!(report["command"], "separate");
    assert_eq!(report["summary"]["total"], 5);
    assert_eq!(report["summary"]["ok"], 5);
    // What the run took, saved by the batch itself: no slower than its slowest file.
    let run = &report["run"];
    let slowest = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seconds"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(run["seconds"].as_f64().unwrap() >= slowest, "{run}");
    assert!(run["jobs"].as_u64().unwrap() >= 1, "{run}");
    assert!(run["threads"].as_u64().unwrap() >= 1, "{run}");
    let e = entry(&report, "a/b/three song");
    assert_eq!(e["input"], "music/a/b/three song.wav");
    assert_eq!(e["status"], "ok");
    assert!(e.get("error").is_none());
    assert_eq!(e["params"]["components"], 2);
    assert_eq!(e["params"]["seed"], 0);
    assert_eq!(e["params"]["n_fft"], 256);
    assert!(e["iterations"].as_u64().unwrap() > 0);
    assert!(e["final_cost"].as_f64().unwrap().is_finite());
    assert!(e["seconds"].as_f64().unwrap() > 0.0);
    let outputs = e["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    for o in outputs {
        let path = d.join("out").join(o["path"].as_str().unwrap());
        assert_eq!(
            fs::metadata(path).unwrap().len(),
            o["bytes"].as_u64().unwrap()
        );
    }
}

#[test]
fn globs_filter_the_files_of_folders_but_not_files_named_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for rel in [
        "in/a.wav",
        "in/x/b.wav",
        "in/drafts/c.wav",
        "in/x/d.aiff.wav",
        // Excluded by `!*.aiff.wav` if the globs applied to files named on the command line.
        "e.aiff.wav",
    ] {
        write_wav_input(d, rel, 0);
    }
    let out = separate(
        d,
        &["in", "e.aiff.wav"],
        &[
            "--glob",
            "*.wav",
            "--glob",
            "!drafts/**",
            "--glob",
            "!*.aiff.wav",
        ],
    );
    assert_exit(&out, 0);
    let tracks: Vec<String> = tree(&d.join("out"))
        .into_iter()
        .filter(|p| p.ends_with("source1.wav"))
        .collect();
    assert_eq!(
        tracks,
        ["a/source1.wav", "e.aiff/source1.wav", "x/b/source1.wav"]
    );

    let bad = separate(d, &["in"], &["--glob", "[a-"]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("--glob"), "{}", stderr(&bad));
}

#[test]
fn the_output_folder_inside_the_input_folder_is_not_walked() {
    let dir = tempfile::tempdir().unwrap();
    write_wav_input(dir.path(), "music/a.wav", 0);
    for _ in 0..2 {
        let out = demix(
            dir.path(),
            &[
                "separate",
                "music",
                "-o",
                "music/stems",
                "--n-fft",
                "256",
                "-k",
                "2",
            ],
        );
        assert_exit(&out, 0);
    }
    let tree = tree(&dir.path().join("music"));
    assert_eq!(
        tree,
        [
            "a.wav",
            "stems/",
            "stems/a/",
            "stems/a/source1.wav",
            "stems/a/source2.wav",
            "stems/demix-report.json"
        ]
    );
}

#[test]
fn files_in_parallel_give_the_same_bytes_as_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write_wav_input(dir.path(), format!("in/{i}.wav"), i);
    }
    let run = |jobs: &str, out: &str| {
        let result = demix(
            dir.path(),
            &[
                "separate",
                "in",
                "-o",
                out,
                "-j",
                jobs,
                "--threads",
                "2",
                "-k",
                "3",
                "--iter",
                "40",
                "--n-fft",
                "512",
                "-v",
            ],
        );
        assert_exit(&result, 0);
        let at_once = format!("{jobs} file(s) at once");
        assert!(stderr(&result).contains(&at_once), "{}", stderr(&result));
        (0..3)
            .flat_map(|i| (1..=3).map(move |s| format!("{out}/{i}/source{s}.wav")))
            .map(|p| fs::read(dir.path().join(p)).unwrap())
            .collect::<Vec<_>>()
    };
    let one = run("1", "one");
    assert_eq!(one, run("2", "two"));
    assert_eq!(one, run("3", "three"));
}

#[test]
fn a_failing_file_is_reported_and_skipped_and_the_exit_code_is_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "in/a.wav", 0);
    fs::write(
        d.join("in/b.wav"),
        b"RIFF\x04\0\0\0WAVEjunk that is not a wave file",
    )
    .unwrap();
    write_wav_input(d, "in/c.wav", 1);
    let out = separate(d, &["in"], &[]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("demix: error: [") && lines[0].contains("in/b.wav: "));
    assert!(lines[1].contains("1 of 3 files failed; see out/demix-report.json"));
    assert_eq!(
        stdout(&out).lines().count(),
        2,
        "the two files that succeeded"
    );
    let report = read_report(&d.join("out/demix-report.json"));
    assert_eq!(entry(&report, "a")["status"], "ok");
    assert_eq!(entry(&report, "c")["status"], "ok");
    let b = entry(&report, "b");
    assert_eq!(b["status"], "failed");
    assert!(b["error"].as_str().unwrap().contains("unsupported"), "{b}");
    assert!(b.get("outputs").is_none());
    assert!(!d.join("out/b").exists());
}

#[test]
fn a_rerun_skips_complete_files_retries_failed_ones_and_force_redoes_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "in/a.wav", 0);
    write_wav_input(d, "in/b.wav", 1);
    fs::write(d.join("in/c.wav"), b"not audio").unwrap();
    assert_exit(&separate(d, &["in"], &[]), 1);
    let stem = d.join("out/a/source1.wav");
    let written = fs::metadata(&stem).unwrap().modified().unwrap();

    // c is fixed: only it is processed.
    write_wav_input(d, "in/c.wav", 2);
    let out = separate(d, &["in"], &["-v"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("in/c.wav: 2 sources"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("1 file(s) separated, 2 already complete"));
    assert!(stderr(&out).contains("in/a.wav: complete according to the report"));
    assert_eq!(fs::metadata(&stem).unwrap().modified().unwrap(), written);

    // A new file joins, and a stem that went missing is not silently rewritten.
    write_wav_input(d, "in/d.wav", 3);
    fs::remove_file(d.join("out/b/source2.wav")).unwrap();
    let out = separate(d, &["in"], &[]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("in/d.wav: 2 sources"));
    assert!(
        stderr(&out).contains("in/b.wav: output folder out/b already exists; use --force")
            && stderr(&out).contains("(some of its existing outputs are missing or changed)"),
        "{}",
        stderr(&out)
    );

    // Other parameters: not complete, and said so.
    let out = separate(d, &["in"], &["--seed", "7"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("(its existing outputs were made with other parameters)"),
        "{}",
        stderr(&out)
    );

    let out = separate(d, &["in"], &["--force"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("4 file(s) separated in"),
        "{}",
        stdout(&out)
    );
    let report = read_report(&d.join("out/demix-report.json"));
    assert_eq!(statuses(&report), ["ok"; 4]);
}

/// Starts a batch of `files` files that take about a second each, one at a time, waits until
/// the first is done, sends `signal`, and returns the finished process's output.
fn interrupt_a_batch(dir: &Path, files: usize, signal: &str) -> Output {
    for i in 0..files {
        write_wav_input(dir, format!("in/{i}.wav"), i);
    }
    let child = Command::new(env!("CARGO_BIN_EXE_demix"))
        .current_dir(dir)
        .args([
            "separate", "in", "-o", "out", "-j", "1", "--n-fft", "256", "-k", "2", "--tol", "0",
            "--iter", "40000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let report = dir.join("out/demix-report.json");
    let started = Instant::now();
    loop {
        let done = fs::read(&report)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|r| r["summary"]["ok"].as_u64() >= Some(1));
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no file finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Into the second file's NMF.
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

/// No hidden temporary folder or file, and every track folder complete.
#[track_caller]
fn assert_no_partial_output(out: &Path) {
    for path in tree(out) {
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap();
        assert!(!name.starts_with('.'), "left behind: {path}");
        // (A name that is not UTF-8 is checked by its test; `tree` shows it lossily.)
        if path.ends_with(".wav") && !path.contains('\u{fffd}') {
            let track = Path::new(&path).parent().unwrap();
            assert!(out.join(track).join("source1.wav").is_file());
            assert!(out.join(track).join("source2.wav").is_file());
        }
    }
}

#[test]
fn ctrl_c_stops_the_batch_cleanly_and_a_rerun_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = interrupt_a_batch(d, 5, "-INT");
    assert_exit(&out, 130);
    assert!(stderr(&out).contains("demix: stopping"), "{}", stderr(&out));
    assert!(stderr(&out).contains("run the same command again to continue"));
    assert_no_partial_output(&d.join("out"));
    let report = read_report(&d.join("out/demix-report.json"));
    let s = statuses(&report);
    assert!(s.iter().filter(|s| *s == "ok").count() >= 1, "{s:?}");
    assert!(s.iter().any(|s| s == "pending"), "{s:?}");
    assert!(!s.iter().any(|s| s == "failed"), "{s:?}");
    let done = s.iter().filter(|s| *s == "ok").count();
    // The file running at the signal (one at a time): recorded as such, nothing of it on disk.
    assert_eq!(s.iter().filter(|s| *s == "interrupted").count(), 1, "{s:?}");
    for f in report["files"].as_array().unwrap() {
        if f["status"] == "interrupted" {
            assert!(!d.join("out").join(f["output"].as_str().unwrap()).exists());
        }
    }

    let rerun = demix(
        d,
        &[
            "separate", "in", "-o", "out", "--n-fft", "256", "-k", "2", "--tol", "0", "--iter",
            "40000",
        ],
    );
    assert_exit(&rerun, 0);
    let expected = format!("{} file(s) separated, {done} already complete", 5 - done);
    assert!(stdout(&rerun).contains(&expected), "{}", stdout(&rerun));
    assert_eq!(
        statuses(&read_report(&d.join("out/demix-report.json"))),
        ["ok"; 5]
    );
    assert_no_partial_output(&d.join("out"));
}

#[test]
fn a_rerun_after_a_kill_removes_what_the_killed_run_left_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let killed = interrupt_a_batch(d, 3, "-KILL");
    assert_eq!(killed.status.code(), None, "killed by the signal");
    let hidden = |out: &Path| -> Vec<String> {
        tree(out)
            .into_iter()
            .filter(|p| {
                p.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .starts_with('.')
            })
            .collect()
    };
    let left = hidden(&d.join("out"));
    assert!(
        left.iter().any(|p| p.starts_with(".1.demix-tmp-")),
        "the second file's temporary folder: {left:?}"
    );

    let rerun = demix(
        d,
        &[
            "separate", "in", "-o", "out", "--n-fft", "256", "-k", "2", "--tol", "0", "--iter",
            "40000",
        ],
    );
    assert_exit(&rerun, 0);
    assert!(stdout(&rerun).contains("2 file(s) separated, 1 already complete"));
    assert_eq!(hidden(&d.join("out")), Vec::<String>::new());
    assert_no_partial_output(&d.join("out"));
}

#[test]
fn sigterm_from_a_scheduler_stops_the_batch_as_ctrl_c_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = interrupt_a_batch(dir.path(), 3, "-TERM");
    assert_exit(&out, 130);
    assert_no_partial_output(&dir.path().join("out"));
}

#[test]
fn shards_split_the_files_between_them_and_their_reports_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..9 {
        write_wav_input(d, format!("in/{}/{i}.wav", i % 3), i);
    }
    fs::write(d.join("in/bad.wav"), b"").unwrap();
    let mut seen = Vec::new();
    for shard in 0..3 {
        let spec = format!("{shard}/3");
        let out = separate(d, &["in"], &["--shard", &spec, "-q"]);
        let name = format!("out/demix-report.shard-{shard}-of-3.json");
        let report = read_report(&d.join(&name));
        assert_eq!(report["shard"], spec);
        let has_bad = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["input"] == "in/bad.wav");
        assert_exit(&out, if has_bad { 1 } else { 0 });
        for f in report["files"].as_array().unwrap() {
            seen.push(f["input"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    let mut all: Vec<String> = (0..9).map(|i| format!("in/{}/{i}.wav", i % 3)).collect();
    all.push("in/bad.wav".into());
    all.sort();
    assert_eq!(seen, all, "every file in exactly one shard");
    assert!(!d.join("out/demix-report.json").exists());

    let merge = demix(
        d,
        &[
            "report",
            "merge",
            "out/demix-report.shard-0-of-3.json",
            "out/demix-report.shard-1-of-3.json",
            "out/demix-report.shard-2-of-3.json",
            "-o",
            "out/demix-report.json",
        ],
    );
    assert_exit(&merge, 0);
    assert!(stdout(&merge).contains("10 files from 3 reports: 9 ok, 1 failed"));
    let merged = read_report(&d.join("out/demix-report.json"));
    assert_eq!(merged["summary"]["total"], 10);
    assert_eq!(merged["merged_from"].as_array().unwrap().len(), 3);
    // Nothing is replaced without --force, and never one of the reports being merged.
    let shards: Vec<String> = (0..3)
        .map(|i| format!("out/demix-report.shard-{i}-of-3.json"))
        .collect();
    let merge_into = |target: &str, extra: &[&str]| {
        let mut args = vec!["report", "merge"];
        args.extend(shards.iter().map(String::as_str));
        args.extend(["-o", target]);
        args.extend(extra);
        demix(d, &args)
    };
    let before = fs::read(d.join("out/demix-report.json")).unwrap();
    let again = merge_into("out/demix-report.json", &[]);
    assert_exit(&again, 1);
    assert!(
        stderr(&again).contains("already exists; use --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::read(d.join("out/demix-report.json")).unwrap(), before);
    assert_exit(&merge_into("out/demix-report.json", &["--force"]), 0);
    let shard0 = fs::read(d.join(&shards[0])).unwrap();
    let onto_input = merge_into(&shards[0], &["--force"]);
    assert_exit(&onto_input, 2);
    assert!(stderr(&onto_input).contains("is one of the reports being merged"));
    assert_eq!(fs::read(d.join(&shards[0])).unwrap(), shard0);
    // The merged report lets an unsharded rerun resume.
    fs::remove_file(d.join("in/bad.wav")).unwrap();
    let rerun = separate(d, &["in"], &[]);
    assert_exit(&rerun, 0);
    assert!(stdout(&rerun).contains("0 file(s) separated, 9 already complete"));

    let bad = demix(d, &["report", "merge", "in/0/0.wav", "-o", "x.json"]);
    assert_exit(&bad, 1);
    assert!(
        stderr(&bad).contains("in/0/0.wav: not JSON"),
        "{}",
        stderr(&bad)
    );
    let bad_shard = separate(d, &["in"], &["--shard", "3/3"]);
    assert_exit(&bad_shard, 2);
}

/// Hostile files in one folder with two good ones: the batch finishes, the good ones are
/// separated, and each hostile one is one line on stderr and one clear entry in the report.
#[test]
fn hostile_files_never_stop_the_batch_and_each_is_a_clear_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let i = d.join("in");
    write_wav_input(d, "in/good one.wav", 0);
    let good = fs::read(i.join("good one.wav")).unwrap();
    let flac = flac_input(1);
    fs::write(i.join("good.flac"), &flac).unwrap();

    fs::write(i.join("truncated wav.wav"), &good[..good.len() / 2]).unwrap();
    fs::write(i.join("truncated flac.flac"), &flac[..flac.len() / 2]).unwrap();
    let mut corrupt = flac.clone();
    let n = corrupt.len();
    for k in (n / 2..n / 2 + 64).step_by(8) {
        corrupt[k] ^= 0xA5;
    }
    fs::write(i.join("corrupt.flac"), corrupt).unwrap();
    let mut corrupt = good.clone();
    corrupt[20..22].copy_from_slice(&0x7777u16.to_le_bytes()); // an unknown format tag
    fs::write(i.join("bad format.wav"), corrupt).unwrap();
    let mut huge = good[..2000].to_vec();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    huge[40..44].copy_from_slice(&(u32::MAX - 64).to_le_bytes());
    fs::write(i.join("huge.wav"), huge).unwrap();
    fs::write(i.join("empty.wav"), b"").unwrap();
    fs::write(
        i.join("text.flac"),
        b"just some text in a file named .flac\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("nowhere.wav", i.join("dangling.wav")).unwrap();
    std::os::unix::fs::symlink("self.wav", i.join("self.wav")).unwrap();
    fs::create_dir(i.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", i.join("sub/loop")).unwrap();
    fs::create_dir(i.join("folder.wav")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(i.join("pipe.wav"))
        .status()
        .unwrap();
    assert!(fifo.success());
    // Two files that want one output folder, and one whose output would lie inside another's.
    fs::write(i.join("song.flac"), &flac).unwrap();
    fs::write(i.join("song.wav"), &good).unwrap();
    fs::write(i.join("x.wav"), &good).unwrap();
    fs::create_dir(i.join("x")).unwrap();
    fs::write(i.join("x/y.wav"), &good).unwrap();
    // A name that is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9 cr\xe8me.wav");
    fs::write(i.join(latin1), &good).unwrap();

    let out = separate(d, &["in"], &[]);
    assert_exit(&out, 1);
    // Every file's line carries a counter [k/N], problems found before the run included, and
    // the summary's "F of N files failed" counts the same N.
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let counters: Vec<(usize, usize)> = all
        .lines()
        .filter_map(|l| {
            let l = l
                .trim_start_matches("demix: error: ")
                .trim_start_matches("demix: warning: ");
            let (k, n) = l.strip_prefix('[')?.split_once(']')?.0.split_once('/')?;
            Some((k.parse().unwrap(), n.parse().unwrap()))
        })
        .collect();
    let n = counters[0].1;
    let mut ks: Vec<usize> = counters.iter().map(|&(k, _)| k).collect();
    ks.sort_unstable();
    assert_eq!(ks, (1..=n).collect::<Vec<_>>(), "{all}");
    assert!(counters.iter().all(|&(_, m)| m == n), "{all}");
    let summary = all.lines().find(|l| l.contains("files failed")).unwrap();
    assert!(
        summary.contains(&format!(" of {n} files failed")),
        "{summary}"
    );
    let report = read_report(&d.join("out/demix-report.json"));
    let expect = |key: &str, status: &str, needle: &str| {
        let e = entry(&report, key);
        assert_eq!(e["status"], status, "{key}: {e}");
        if !needle.is_empty() {
            let error = e["error"].as_str().unwrap_or("");
            assert!(error.contains(needle), "{key}: {needle:?} not in {error:?}");
            let line = format!(": {error}");
            assert!(
                stderr(&out).contains(&line),
                "{key}: no line for it on stderr"
            );
        }
    };
    expect("good one", "ok", "");
    expect("good", "ok", "");
    expect("truncated wav", "failed", "truncated: the header declares");
    expect("truncated flac", "failed", "truncated: the header declares");
    expect("corrupt", "failed", "corrupt audio");
    expect("bad format", "failed", "unsupported");
    expect("huge", "failed", "truncated: the header declares");
    expect("empty", "failed", "file is empty");
    expect("text", "failed", "unsupported or unrecognised audio format");
    expect(
        "dangling",
        "failed",
        "dangling symbolic link (to nowhere.wav",
    );
    expect("self", "failed", "symbolic link loop");
    expect(
        "in/sub/loop",
        "skipped",
        "symbolic link loop: it leads back to in",
    );
    expect("pipe", "failed", "not a regular file (a named pipe)");
    expect("song", "ok", "");
    // A folder's files come right after its name, and "x" sorts before "x.wav".
    expect("x/y", "ok", "");
    // The second of each pair that collide, found by its input.
    let by_input = |input: &str| {
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["input"] == input)
            .unwrap_or_else(|| panic!("no entry for {input}"))
            .clone()
    };
    let song = by_input("in/song.wav");
    assert_eq!(song["status"], "failed");
    assert!(
        song["error"]
            .as_str()
            .unwrap()
            .contains("is also that of in/song.flac")
    );
    let x = by_input("in/x.wav");
    assert!(
        x["error"]
            .as_str()
            .unwrap()
            .contains("would hold that of in/x/y.wav")
    );
    // The non-UTF-8 name survives exactly, and its stems are where it says.
    let cafe = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["input"]["lossy"] == "in/caf\u{fffd} cr\u{fffd}me.wav")
        .unwrap();
    assert_eq!(cafe["status"], "ok");
    assert_eq!(cafe["output"]["hex"], "636166e9206372e86d65");
    assert!(
        d.join("out")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9 cr\xe8me/source1.wav"))
            .is_file()
    );

    // Every line on stderr is one entry (failures and the skipped loop) or the summary.
    let s = report["summary"].clone();
    let lines = stderr(&out).lines().count() as u64;
    assert_eq!(
        lines,
        s["failed"].as_u64().unwrap() + s["skipped"].as_u64().unwrap() + 1
    );
    assert!(
        stderr(&out)
            .lines()
            .last()
            .unwrap()
            .contains(&format!("{} of {} files failed", s["failed"], s["total"]))
    );
    assert_no_partial_output(&d.join("out"));
}

/// Tests run as root, where permissions stop no read: the binary is then run as `nobody`
/// (uid 65534), for whom a file with mode 000 is unreadable.
#[test]
fn an_unreadable_file_is_reported_and_the_others_separated() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "in/a.wav", 0);
    write_wav_input(d, "in/locked.wav", 1);
    fs::create_dir(d.join("in/closed")).unwrap();
    write_wav_input(d, "in/closed/b.wav", 2);
    for (path, mode) in [
        ("", 0o777),
        ("in", 0o755),
        ("in/locked.wav", 0o000),
        ("in/closed", 0o000),
    ] {
        fs::set_permissions(d.join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
    let is_root = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    // A copy of the binary that `nobody` can run wherever the build lives (/root, say).
    let binary = d.join("demix");
    fs::copy(env!("CARGO_BIN_EXE_demix"), &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(&binary);
    command
        .current_dir(d)
        .args(["separate", "in", "-o", "out"])
        .args(FAST);
    if is_root {
        command.uid(65534).gid(65534);
    }
    let out = match command.output() {
        Ok(out) => out,
        // A sandbox that lets root not change user: nothing here can be unreadable to root.
        Err(e) if is_root && e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: cannot run demix as uid 65534 ({e})");
            return;
        }
        Err(e) => panic!("demix does not start: {e}"),
    };
    assert_exit(&out, 1);
    let report = read_report(&d.join("out/demix-report.json"));
    assert_eq!(entry(&report, "a")["status"], "ok");
    let locked = entry(&report, "locked");
    assert_eq!(locked["status"], "failed");
    assert!(
        locked["error"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{locked}"
    );
    let closed = entry(&report, "in/closed");
    assert_eq!(closed["status"], "failed");
    assert!(
        closed["error"]
            .as_str()
            .unwrap()
            .contains("cannot read folder"),
        "{closed}"
    );
}

#[test]
fn a_single_file_writes_its_report_when_it_succeeds_and_several_files_do_as_they_go() {
    let dir = tempfile::tempdir().unwrap();
    write_wav_input(dir.path(), "a.wav", 0);
    write_wav_input(dir.path(), "b.wav", 1);
    fs::write(dir.path().join("bad.wav"), b"not audio").unwrap();
    let out = separate(dir.path(), &["bad.wav"], &[]);
    assert_exit(&out, 1);
    assert!(!dir.path().join("out/demix-report.json").exists());
    let out = separate(dir.path(), &["a.wav"], &[]);
    assert_exit(&out, 0);
    assert!(dir.path().join("out/demix-report.json").exists());
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = separate(dir.path(), &["a.wav", "b.wav"], &["--force"]);
    assert_exit(&out, 0);
    assert!(dir.path().join("out/demix-report.json").exists());
}

#[test]
fn no_audio_in_the_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("in")).unwrap();
    fs::write(dir.path().join("in/notes.txt"), "x").unwrap();
    let out = separate(dir.path(), &["in"], &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("no audio files found in in"));
}

/// A plan of `n` items `0`, `1`, ... with outputs of the same names.
fn plan(n: usize) -> Plan {
    let items = (0..n).map(|id| Item {
        id,
        ..Item::new(
            PathBuf::from(format!("in/{id}")),
            PathBuf::from(id.to_string()),
            Some(PathBuf::from(id.to_string())),
        )
    });
    Plan {
        items: items.collect(),
    }
}

#[test]
fn a_panicking_job_fails_its_file_only() {
    let out = tempfile::tempdir().unwrap();
    let mut options = RunOptions::new(out.path());
    options.report = Some(out.path().join("r.json"));
    options.jobs = Some(2);
    let summary = batch::run(&plan(4), &options, &(), |item, _| {
        if item.id == 1 {
            panic!("boom");
        }
        Ok(JobOutput::default())
    })
    .unwrap();
    assert_eq!((summary.ok, summary.failed), (3, 1));
    let report = batch::Report::load(&out.path().join("r.json")).unwrap();
    let failed = report.entry(Path::new("1")).unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("demix panicked (boom)")
    );
}

#[test]
fn a_cancelled_run_interrupts_running_jobs_and_starts_no_more() {
    let out = tempfile::tempdir().unwrap();
    let mut options = RunOptions::new(out.path());
    options.report = Some(out.path().join("r.json"));
    options.jobs = Some(1);
    let cancel = options.cancel.clone();
    let summary = batch::run(&plan(5), &options, &(), |item, ctx| {
        if item.id == 2 {
            cancel.cancel();
        }
        ctx.stop_if_cancelled();
        Ok(JobOutput::default())
    })
    .unwrap();
    assert_eq!(
        (summary.ok, summary.interrupted, summary.not_started),
        (2, 1, 2)
    );
    assert!(!summary.all_ok());
    let report = batch::Report::load(&out.path().join("r.json")).unwrap();
    let s: Vec<Status> = report.files.iter().map(|f| f.status).collect();
    assert_eq!(
        s,
        [
            Status::Ok,
            Status::Ok,
            Status::Interrupted,
            Status::Pending,
            Status::Pending
        ]
    );
}

#[test]
fn a_file_too_large_for_the_memory_limit_fails_alone_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tone = |seconds: usize| {
        let x = (0..8000 * seconds)
            .map(|i| 0.3 * (i as f32 * 0.17).sin())
            .collect();
        Audio::new(8000, vec![x]).unwrap()
    };
    fs::create_dir_all(d.join("in")).unwrap();
    write_wav(d.join("in/short.wav"), &tone(1), OutputFormat::Int16).unwrap();
    write_wav(d.join("in/long.wav"), &tone(30), OutputFormat::Int16).unwrap();
    // One thread, so that the estimate (which counts per-thread buffers) is the same anywhere:
    // under 2 MiB for the short file, 4.2 MiB for the long one.
    let out = separate(d, &["in"], &["--threads", "1", "--max-memory", "3M"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("long.wav: --max-memory: the factorisation needs about")
            && err.contains("more than the 3.0 MiB allowed"),
        "{err}"
    );
    let report = read_report(&d.join("out/demix-report.json"));
    assert_eq!(entry(&report, "short")["status"], "ok");
    assert_eq!(entry(&report, "long")["status"], "failed");
    assert!(d.join("out/short/source1.wav").is_file());
    assert!(!d.join("out/long").exists());
}

#[test]
fn an_output_folder_that_is_the_input_folder_never_takes_its_own_stems_as_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "music/song.wav", 0);
    let run = || {
        let mut args = vec!["separate", "music", "-o", "music"];
        args.extend(FAST);
        demix(d, &args)
    };
    assert_exit(&run(), 0);
    assert!(d.join("music/song/source1.wav").is_file());
    // The second run finds the song complete and leaves the stems alone.
    let again = run();
    assert_exit(&again, 0);
    assert!(
        stdout(&again).contains("0 file(s) separated, 1 already complete"),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    assert!(!d.join("music/song/source1").exists());
    let report = read_report(&d.join("music/demix-report.json"));
    assert_eq!(report["files"].as_array().unwrap().len(), 1);
}

#[test]
fn a_report_of_the_wrong_shape_is_described_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            r#"{"format": "demix-report/1", "files": 3}"#,
            r#""files" is a number, not a list"#,
        ),
        (
            r#"{"format": "demix-report/1", "files": [{"input": "a.wav", "status": "done"}]}"#,
            r#"entry 1 of "files" has status "done", not one of ok, failed"#,
        ),
        (
            r#"{"format": "demix-report/1", "files": [7]}"#,
            r#"entry 1 of "files" is a number"#,
        ),
    ];
    for (i, (text, words)) in cases.iter().enumerate() {
        let name = format!("r{i}.json");
        fs::write(d.join(&name), text).unwrap();
        let out = demix(d, &["report", "merge", &name, "-o", "merged.json"]);
        assert_exit(&out, 1);
        assert!(stderr(&out).contains(words), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1);
    }
    assert!(!d.join("merged.json").exists());
}

#[test]
fn a_second_run_on_the_same_report_refuses_naming_the_first_and_a_dead_ones_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "in/a.wav", 0);
    write_wav_input(d, "in/b.wav", 1);
    fs::create_dir_all(d.join("out")).unwrap();
    let lock = d.join("out/.demix-report.json.lock");
    // A live process holds the lock: this test's own.
    let me = std::process::id();
    fs::write(&lock, format!("{me}\n")).unwrap();
    let out = separate(d, &["in"], &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "being written by another demix run (process {me})"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!d.join("out/demix-report.json").exists() && !d.join("out/a").exists());
    // A lock left by a process that is gone (killed) does not block the next run.
    fs::write(&lock, "999999999\n").unwrap();
    assert_exit(&separate(d, &["in"], &[]), 0);
    assert!(d.join("out/a/source1.wav").is_file() && !lock.exists());
}

#[test]
fn a_rerun_without_force_finishes_what_a_stopped_force_run_was_replacing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_wav_input(d, "in/a.wav", 0);
    write_wav_input(d, "in/b.wav", 1);
    assert_exit(&separate(d, &["in"], &[]), 0);
    // What a --force run killed while it worked on b leaves: a finished (ok), b pending with
    // its replacement unfinished, b's old stems still in place.
    let path = d.join("out/demix-report.json");
    let mark = |replace: bool| {
        let mut report = read_report(&path);
        for f in report["files"].as_array_mut().unwrap() {
            if f["output"] == "b" {
                f["status"] = "pending".into();
                f["outputs"] = serde_json::json!([]);
                if replace {
                    f["replace"] = true.into();
                }
            }
        }
        fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    };
    // Without that mark (a run that was not asked to replace), b's stems are kept: an error.
    mark(false);
    let out = separate(d, &["in"], &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // With it, the same command without --force redoes b and keeps a.
    mark(true);
    let out = separate(d, &["in"], &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("1 file(s) separated, 1 already complete"),
        "{}",
        stdout(&out)
    );
    let report = read_report(&path);
    let b = entry(&report, "b");
    assert_eq!(b["status"], "ok");
    assert!(b.get("replace").is_none(), "{b}");
}
