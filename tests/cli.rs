//! The `rosco` command line, driven as users and scripts drive it, and checked against
//! liblo's `oscsend` where it is installed (tests/run_all.sh installs it and sets
//! ROSCO_REQUIRE_PEERS=1 so a missing peer fails instead of skipping).

use serde_json::Value;
use std::process::{Command, Output};

fn rosco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rosco"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn shared(file: &str) -> Value {
    let path = format!("{}/../shared/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether a peer program is installed; fails when run_all.sh says peers are required.
fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("ROSCO_REQUIRE_PEERS").is_some() {
        panic!("{program} is required (ROSCO_REQUIRE_PEERS) but not installed");
    }
    if !found {
        eprintln!("skipping: {program} not installed (tests/run_all.sh installs it)");
    }
    found
}

#[test]
fn decode_json_prints_the_vectors_shape() {
    let v = shared("osc-vectors.json");
    for vec in v["vectors"].as_array().unwrap() {
        let name = vec["name"].as_str().unwrap();
        let hex = vec["hex"].as_str().unwrap();
        let out = rosco(&["decode", "--json", hex]);
        if vec["expect"] == "accept" {
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(json, vec["decoded"], "{name}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{name} should be rejected");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                err.lines().count(),
                1,
                "{name}: one-line error, got {err:?}"
            );
            assert!(err.starts_with("rosco: rejected: "), "{name}: {err}");
        }
    }
}

#[test]
fn decode_reads_stdin_and_prints_text() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosco"))
        .arg("decode")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let bundle = "2362756e646c6500e8e1f480800000000000000c2f6100002c69000000000001\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bundle.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "#bundle e8e1f480.80000000\n  /a i 1");
}

#[test]
fn decode_options_restrict() {
    let no_tags = "2f610000";
    assert!(rosco(&["decode", no_tags]).status.success());
    let out = rosco(&["decode", "--require-typetags", no_tags]);
    assert_eq!(out.status.code(), Some(1));
    let int = "2f6900002c69000000000000";
    assert_eq!(
        rosco(&["decode", "--types", "f", int]).status.code(),
        Some(1)
    );
    let dump = stdout(&rosco(&["decode", "--hexdump", int]));
    assert!(dump.starts_with("0000  2f 69 00 00 2c 69"), "{dump}");
    assert_eq!(rosco(&["decode", "zz"]).status.code(), Some(2));
}

#[test]
fn match_answers_every_pattern_case() {
    let v = shared("osc-patterns.json");
    for case in v["cases"].as_array().unwrap() {
        let (p, a) = (
            case["pattern"].as_str().unwrap(),
            case["address"].as_str().unwrap(),
        );
        let out = rosco(&["match", p, a]);
        let expected = case["match"].as_bool().unwrap();
        match out.status.code() {
            Some(0) => assert_eq!(stdout(&out), expected.to_string(), "{p} vs {a}"),
            Some(2) => assert!(!expected, "{p} is malformed but should match {a}"),
            other => panic!("{p} vs {a}: exit {other:?}"),
        }
    }
    assert_eq!(rosco(&["match", "/[z-a]", "/m"]).status.code(), Some(2));
}

#[test]
fn encode_matches_oscsend_bytes() {
    let cases: &[&[&str]] = &[
        &[
            "/a/b",
            "ifsSchdTFNIm",
            "1",
            "2.5",
            "str",
            "sym",
            "x",
            "5",
            "3.25",
            "00903c7f",
        ],
        &["/x"],
        &["/neg", "ihfd", "-42", "-1234567890123", "-2.25", "-1.5"],
        &[
            "/long/address/with/many/parts",
            "sss",
            "",
            "abcd",
            "abcdefgh",
        ],
    ];
    let oscsend = have("oscsend");
    for case in cases {
        let ours = rosco(&[&["encode"], *case].concat());
        assert!(ours.status.success(), "{case:?}");
        let ours = stdout(&ours);
        let decoded = rosco(&["decode", &ours]);
        assert!(decoded.status.success(), "{case:?} does not decode");
        if oscsend {
            let theirs = Command::new("oscsend")
                .arg("-")
                .args(*case)
                .output()
                .unwrap();
            let hex: String = theirs.stdout.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(ours, hex, "{case:?}");
        }
    }
    let bad = rosco(&["encode", "/x", "i", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'nope'"));
}

#[test]
fn demo_runs() {
    let out = rosco(&["demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("pattern method /synth/*/gate <- /synth/7/gate i 1"),
        "{text}"
    );
    assert!(text.contains("delivered"), "{text}");
}
