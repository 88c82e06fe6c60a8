//! `migbench advise` as a new user tries it (issue 23): `--top 0`
//! refused, values beyond physical sense refused naming their flag (never
//! saturated), a time target the link cannot meet named as such with the
//! closest setting shown, distinct alternatives, and the guide's
//! examples re-run character for character.

mod common;

use common::*;

fn advise(args: &[&str]) -> std::process::Output {
    // Run where no stored model is found: this lab's constants.
    let tmp = tempfile::tempdir().unwrap();
    migbench()
        .current_dir(tmp.path())
        .arg("advise")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 1 GiB guest dirtying 1 MB/s over 1 Gbit, 300 ms.
const LIGHT: [&str; 8] = [
    "--ram",
    "1GiB",
    "--dirty-rate",
    "1MB/s",
    "--link",
    "1gbit",
    "--max-downtime",
    "300ms",
];

const BUSY: [&str; 10] = [
    "--ram",
    "1GiB",
    "--working-set",
    "256MiB",
    "--dirty-rate",
    "20MB/s",
    "--link",
    "100mbit",
    "--max-downtime",
    "500ms",
];

#[test]
fn top_zero_is_refused_and_top_one_still_shows_both_kinds() {
    let zero = advise(&[&BUSY[..], &["--top", "0"]].concat());
    assert_eq!(zero.status.code(), Some(2));
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("--top"), "{err}");
    assert!(text(&zero).is_empty(), "{}", text(&zero));
    // A quiet guest: plain pre-copy first, and post-copy beside it.
    let one = advise(&[
        "--ram",
        "1GiB",
        "--dirty-rate",
        "5MB/s",
        "--link",
        "1gbit",
        "--max-downtime",
        "300ms",
        "--top",
        "1",
    ]);
    assert_exit(one.status, EXIT_OK, "advise --top 1");
    let t = text(shown(&one));
    let rows: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 2, "{t}");
    assert!(rows[0].contains("plain pre-copy"), "{t}");
    assert!(rows[1].contains("post-copy"), "{t}");
    assert!(!t.contains("no setting"), "{t}");
}

#[test]
fn values_beyond_physical_sense_are_refused_naming_the_flag() {
    let base = |ram: &str, dirty: &str, link: &str, down: &str| {
        vec![
            "--ram".to_string(),
            ram.into(),
            "--dirty-rate".into(),
            dirty.into(),
            "--link".into(),
            link.into(),
            "--max-downtime".into(),
            down.into(),
        ]
    };
    for (args, flag) in [
        (
            base("99999999999999999999GiB", "1MB/s", "1gbit", "300ms"),
            "--ram",
        ),
        (base("17TiB", "1MB/s", "1gbit", "300ms"), "--ram"),
        (base("1GiB", "1e30MB/s", "1gbit", "300ms"), "--dirty-rate"),
        (base("1GiB", "101GB/s", "1gbit", "300ms"), "--dirty-rate"),
        (base("1GiB", "1MB/s", "99999999999gbit", "300ms"), "--link"),
        (base("1GiB", "1MB/s", "1001gbit", "300ms"), "--link"),
        (base("1GiB", "1MB/s", "1gbit", "1e30s"), "--max-downtime"),
        (
            [
                base("1GiB", "1MB/s", "1gbit", "300ms"),
                vec!["--working-set".into(), "99999999999999999999GiB".into()],
            ]
            .concat(),
            "--working-set",
        ),
        (
            [
                base("1GiB", "1MB/s", "1gbit", "300ms"),
                vec!["--timeout".into(), "1e30h".into()],
            ]
            .concat(),
            "--timeout",
        ),
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = advise(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(text(&out).is_empty(), "{args:?}: advised on {}", text(&out));
    }
    // The bounds themselves are accepted.
    let edge = advise(&[
        "--ram",
        "16TiB",
        "--dirty-rate",
        "100GB/s",
        "--link",
        "1000gbit",
        "--max-downtime",
        "300ms",
    ]);
    assert!(shown(&edge).status.success());
}

#[test]
fn a_time_the_link_cannot_meet_is_named_and_the_closest_shown() {
    let out = advise(&[&LIGHT[..], &["--max-time", "1s"]].concat());
    // No setting meets the target: advice all the same, not an error.
    assert_exit(out.status, EXIT_OK, "advise --max-time 1s");
    let t = text(shown(&out));
    assert!(
        t.contains("no setting meets the target on this link: moving the guest's"),
        "{t}"
    );
    assert!(t.contains("more than --max-time 1 s"), "{t}");
    assert!(!t.contains("switchover alone"), "{t}");
    assert!(t.contains("\nclosest: "), "{t}");
    assert!(
        t.contains("plain pre-copy would need a link of at least")
            && t.contains("(on this one, moving the guest's"),
        "{t}"
    );
    // 4 GiB: QEMU's setup (TCG) alone is longer, on any link.
    let big = advise(&[&["--ram", "4GiB"], &LIGHT[2..], &["--max-time", "1s"]].concat());
    let t = text(shown(&big));
    assert!(
        t.contains(
            "plain pre-copy meets this target on no link up to 400 Gbit/s: QEMU's setup alone"
        ),
        "{t}"
    );
}

#[test]
fn a_busy_guest_gets_one_row_per_remedy() {
    let out = advise(&[&BUSY[..], &["--top", "10"]].concat());
    assert_exit(out.status, EXIT_OK, "advise --top 10");
    let t = text(shown(&out));
    let rows: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(
        rows.iter().filter(|r| r.contains("auto-converge ")).count() == 1,
        "{t}"
    );
    assert!(rows.iter().any(|r| r.contains("post-copy ")), "{t}");
    assert!(
        t.contains("plain pre-copy would need a link of at least")
            && t.contains("the guest dirties 20.0 MB/s"),
        "{t}"
    );
}

/// Every `$ migbench advise ...` in the guide's code blocks
/// (docs/src/guide/predict.md), re-run with this lab's constants: its
/// output is the block's lines that follow, character for character.
#[test]
fn the_guides_advise_examples_are_what_advise_prints() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/guide/predict.md"),
    )
    .unwrap();
    let mut examples = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(cmd) = line.strip_prefix("$ migbench advise ") else {
            continue;
        };
        let expected: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let out = advise(&args);
        assert!(out.status.success(), "{cmd}: {out:?}");
        let got = text(&out);
        let want = expected.join("\n") + "\n";
        assert!(
            got == want,
            "the guide: `migbench advise {cmd}` shows\n{want}\nbut it prints\n{got}"
        );
        examples += 1;
    }
    assert!(examples >= 3, "{examples} examples in the guide");
}

/// `predict --fit` on runs of one RAM size (the link-speed fixture: all
/// 1 GiB) says which constants it could not identify and keeps the
/// prior's per-GiB slopes, so `advise --model` still pauses a post-copy
/// switch of a larger guest (it said "a 0 ms pause" when the slopes were
/// fitted as 0); the stored model, edited to hold a negative constant,
/// is refused naming the field.
#[test]
fn a_fit_on_one_ram_size_names_what_it_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ls");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/model/link-speed.jsonl"),
        dir.join("runs.jsonl"),
    )
    .unwrap();
    let sc = tmp.path().join("s.toml");
    std::fs::write(&sc, "[guest]\nram = \"1GiB\"\n[link]\nrate = \"1gbit\"\n").unwrap();
    let model = tmp.path().join("m.json");
    let fit = migbench()
        .current_dir(tmp.path())
        .arg("predict")
        .arg(&sc)
        .arg("--fit")
        .arg(&dir)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&shown(&fit).stderr).into_owned();
    assert!(fit.status.success(), "{err}");
    assert!(
        err.contains("not identified by these runs, prior kept: the per-GiB costs (every run has 1024 MiB of RAM)"),
        "{err}"
    );
    let out = advise(&[
        "--ram",
        "4GiB",
        "--working-set",
        "1GiB",
        "--dirty-rate",
        "200MB/s",
        "--link",
        "1gbit",
        "--max-downtime",
        "500ms",
        "--model",
        model.to_str().unwrap(),
        "--top",
        "10",
    ]);
    let t = text(shown(&out));
    let pc = t
        .lines()
        .find(|l| l.contains("post-copy after the first pass"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(!pc.contains("a 0 ms pause"), "{t}");
    // The stored model edited by hand: a negative constant is refused,
    // naming the file and the field.
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    m["constants"]["tail_bytes"] = serde_json::json!(-1.0);
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, m.to_string()).unwrap();
    let out = advise(&[&LIGHT[..], &["--model", bad.to_str().unwrap()]].concat());
    assert_exit(out.status, EXIT_REFUSED, "advise --model bad.json");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json: constants.tail_bytes is -1.0; allowed: 0 or more"),
        "{err}"
    );
}
