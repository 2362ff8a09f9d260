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
    let latin1 = "2f6100002c730000e9000000"; // "/a" ,s "\xe9"
    assert!(rosco(&["decode", latin1]).status.success());
    let out = rosco(&["decode", "--ascii", latin1]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ASCII"));
    // Address compression both ways, and what a bad table entry says.
    let table = ["--address-code", "7=/synth/1/freq"];
    let packed = stdout(&rosco(
        &[&["encode"][..], &table, &["/synth/1/freq", "i", "440"]].concat(),
    ));
    assert_eq!(packed, "2f000000000000072c690000000001b8");
    let out = rosco(&[&["decode"][..], &table, &[&packed]].concat());
    assert_eq!(stdout(&out), "/synth/1/freq i 440");
    for bad in ["7", "x=/a", "7=no-slash"] {
        let out = rosco(&["decode", "--address-code", bad, &packed]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--address-code"));
    }
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
        // oscsend's `-`: the same bytes, raw, on standard output.
        let raw = rosco(&[&["send", "-"], *case].concat());
        assert!(raw.status.success(), "{case:?}");
        let raw: String = raw.stdout.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ours, raw, "{case:?}");
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

/// oscsend's `HOST PORT` destination: UDP to that host and port.
#[test]
fn send_takes_oscsend_host_and_port() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    let expected = stdout(&rosco(&["encode", "/x", "is", "7", "hi"]));
    for host in ["127.0.0.1", "localhost"] {
        let sent = rosco(&["send", host, &port, "/x", "is", "7", "hi"]);
        assert!(sent.status.success(), "{host}: {sent:?}");
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).unwrap();
        let got: String = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected, "{host}");
    }
    let bracketed = rosco(&["send", "[::1]", &port, "/x"]);
    assert!(bracketed.status.success(), "{bracketed:?}");
    let far = rosco(&["send", "localhost", "65536", "/x"]);
    assert_eq!(far.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&far.stderr).contains("port 65536 is out of range"));
    // Without a port after it, a host is not a URL.
    let bad = rosco(&["send", "localhost", "/x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad URL 'localhost'"));
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

/// Lines of a child's stderr as they come, read on a thread.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let err = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line within 10 s for which `pick` gives something.
fn wait_line<T>(
    lines: &std::sync::mpsc::Receiver<String>,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> T {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let line = lines.recv_timeout(left).expect("the line never came");
        if let Some(v) = pick(&line) {
            return v;
        }
    }
}

#[test]
fn o2lite_host_and_clients_serve_as_test_peers() {
    use std::process::Stdio;
    let bin = env!("CARGO_BIN_EXE_rosco");
    // Dump mode: a host printing what reaches its service, and a client printing what
    // reaches its own; both stop after --count messages.
    let mut host = Command::new(bin)
        .args(["o2lite", "host", "--no-mdns", "--service", "server"])
        .args(["--count", "2", "--timeout", "20", "rosco-cli"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let host_err = stderr_lines(&mut host);
    let ports = wait_line(&host_err, |l| {
        let rest = l.split_once("TCP port ")?.1;
        let (tcp, udp) = rest.split_once(" and UDP port ")?;
        Some(format!("127.0.0.1:{tcp}:{udp}"))
    });
    let listener = Command::new(bin)
        .args([
            "o2lite",
            "client",
            "--host",
            &ports,
            "--service",
            "listener",
        ])
        .args(["--count", "1", "--timeout", "20", "rosco-cli"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_line(&host_err, |l| {
        l.contains("ServiceAdded { name: \"listener\" }")
            .then_some(())
    });
    // Send mode: one message each, by TCP, by UDP, and timestamped 0.3 s ahead.
    let send = |extra: &[&str], message: &[&str]| {
        let mut args = vec!["o2lite", "client", "--host", &ports];
        args.extend(extra);
        args.push("rosco-cli");
        args.extend(message);
        let out = rosco(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    send(&[], &["/listener/note", "s", "hi"]);
    send(&["--udp"], &["/server/hello", "if", "42", "2.5"]);
    send(&["--at", "0.3"], &["/server/later"]);

    let host_out = host.wait_with_output().unwrap();
    assert!(host_out.status.success(), "{host_out:?}");
    let printed = stdout(&host_out);
    assert!(
        printed.contains("/server/hello if 42 2.500000 (timestamp 0.000000, udp)"),
        "{printed}"
    );
    let later = printed
        .lines()
        .find(|l| l.starts_with("/server/later"))
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(
        later.ends_with(", tcp)") && !later.contains("timestamp 0.000000"),
        "{later}"
    );
    let listened = listener.wait_with_output().unwrap();
    assert!(listened.status.success(), "{listened:?}");
    assert_eq!(
        stdout(&listened),
        "/listener/note s \"hi\" (timestamp 0.000000, tcp)"
    );
}

/// Runs `rosco` with `input` on stdin.
fn rosco_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosco"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

/// Asserts a usage error: exit 2, one line on stderr containing `text`, no panic.
fn assert_usage_error(args: &[&str], text: &str) {
    let out = rosco(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: one-line error, got {err:?}"
    );
    assert!(
        err.starts_with("rosco: ") && err.contains(text),
        "{args:?}: {err}"
    );
}

#[test]
fn decode_json_of_100000_nested_arrays() {
    // Rendering recursed once per array level and overflowed the stack.
    let depth = 100_000;
    let tags = format!(",{}{}", "[".repeat(depth), "]".repeat(depth));
    let mut packet = b"/a\0\0".to_vec();
    packet.extend_from_slice(tags.as_bytes());
    packet.extend(std::iter::repeat(0).take(4 - tags.len() % 4));
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let out = rosco_stdin(&["decode", "--json"], hex.as_bytes());
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let array = r#"{"type":"array","items":["#;
    let expected = format!(
        r#"{{"kind":"message","address":"/a","typetags":"{tags}","args":[{}{}]}}"#,
        array.repeat(depth),
        "]}".repeat(depth)
    );
    assert!(text == expected, "output differs ({} bytes)", text.len());
}

#[test]
fn huge_durations_are_usage_errors_or_forever() {
    // Too far ahead for a timetag (past 2104), or for a Duration: usage errors, not panics
    // or a time wrapped into the past.
    for at in ["1e300", "1e19", "4294967296", "4294967286", "2500000000"] {
        assert_usage_error(
            &["send", "--at", at, "osc.udp://127.0.0.1:9", "/a"],
            "out of range",
        );
    }
    assert_usage_error(
        &[
            "o2lite",
            "client",
            "--host",
            "127.0.0.1:1:1",
            "--at",
            "1e300",
            "e",
            "/a",
        ],
        "out of range",
    );
    for bad in ["-1", "nan", "x", "-inf"] {
        assert_usage_error(&["dump", "--timeout", bad, "0"], "not a number of seconds");
        assert_usage_error(
            &["send", "--at", bad, "osc.udp://127.0.0.1:9", "/a"],
            "not a number of seconds",
        );
    }
    // A timeout too long for the clock (or infinite) means no time limit: --count 0
    // returns at once, after the deadline is worked out.
    for t in ["1e300", "1e19", "18446744073709551616", "inf"] {
        for args in [
            &["dump", "--timeout", t, "--count", "0", "0"][..],
            &[
                "o2lite",
                "host",
                "--no-mdns",
                "--timeout",
                t,
                "--count",
                "0",
                "e",
            ],
            &[
                "o2lite",
                "client",
                "--host",
                "127.0.0.1:1:1",
                "--timeout",
                t,
                "--count",
                "0",
                "e",
            ],
        ] {
            let out = rosco(args);
            assert!(out.status.success(), "{args:?}: {out:?}");
        }
    }
}

/// A `rosco dump` killed if the test ends without waiting for it (a failed assertion).
struct Dump(Option<std::process::Child>);

impl Dump {
    fn wait_with_output(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `rosco dump ARGS` on a UDP port of its choosing: the process, its stderr lines, the port.
fn spawn_dump(args: &[&str]) -> (Dump, std::sync::mpsc::Receiver<String>, String) {
    use std::process::Stdio;
    let mut dump = Command::new(env!("CARGO_BIN_EXE_rosco"))
        .arg("dump")
        .args(args)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut dump);
    let port = wait_line(&lines, |l| {
        let rest = l.split_once("listening on osc.udp://")?.1;
        Some(rest.rsplit_once(':')?.1.trim_end_matches('/').to_string())
    });
    (Dump(Some(dump)), lines, port)
}

#[test]
fn dump_with_an_endless_timeout_waits_and_send_at_far_ahead_is_timed_right() {
    let (dump, _lines, port) = spawn_dump(&["--json", "--count", "1", "--timeout", "1e300"]);
    // 1e9 s (31.7 years) ahead: past the 2036 rollover, within NTP era 1 (ends 2104).
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let url = format!("osc.udp://127.0.0.1:{port}");
    let sent = rosco(&["send", "--at", "1000000000", &url, "/late", "i", "1"]);
    assert!(sent.status.success(), "{sent:?}");
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = dump.wait_with_output();
    assert!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sec = json["timetag"]["sec"].as_u64().unwrap();
    let ntp = |unix: u64| (unix + 2_208_988_800 + 1_000_000_000) % (1 << 32);
    assert!(
        (ntp(before)..=ntp(after) + 1).contains(&sec),
        "timetag seconds {sec}, expected {}..={}",
        ntp(before),
        ntp(after)
    );
    assert_eq!(json["elements"][0]["address"], "/late");
}

#[test]
fn hex_arguments_take_hex_digits_only() {
    // from_str_radix alone takes a leading '+'.
    for (types, word) in [
        ("b", "+1+2"),
        ("m", "+0903c7f"),
        ("r", "+1"),
        ("t", "+1.+2"),
    ] {
        let out = rosco(&["encode", "/a", types, word]);
        assert_eq!(out.status.code(), Some(2), "{types} {word}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(word));
    }
    let out = rosco(&["decode", "+2+f+6+1+0+0+0+0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(rosco(&["encode", "/a", "bm", "0102", "0x00903c7f"])
        .status
        .success());
}

#[test]
fn dump_refuses_what_its_decoder_flags_refuse() {
    for json in [false, true] {
        let mut args = vec![
            "--types",
            "is",
            "--ascii",
            "--count",
            "1",
            "--timeout",
            "10",
        ];
        if json {
            args.push("--json");
        }
        let (dump, lines, port) = spawn_dump(&args);
        let url = format!("osc.udp://127.0.0.1:{port}");
        let refused = [
            ("f", "1.5", "type tag 'f' not allowed"),
            ("s", "café", "not ASCII"),
        ];
        for (types, value, why) in refused {
            let sent = rosco(&["send", &url, "/x", types, value]);
            assert!(sent.status.success(), "{sent:?}");
            // Refused and reported before the next one is sent.
            let line = wait_line(&lines, |l| l.contains("malformed").then(|| l.to_string()));
            assert!(line.contains(why), "{line}");
        }
        let sent = rosco(&["send", &url, "/x", "i", "7"]);
        assert!(sent.status.success(), "{sent:?}");
        let out = dump.wait_with_output();
        assert!(out.status.success(), "{out:?}");
        let printed = stdout(&out);
        let seven = match json {
            true => printed.contains(r#""value":7"#),
            false => printed.ends_with(" /x i 7"),
        };
        assert!(seven && printed.lines().count() == 1, "{printed}");
    }
}

/// osc4py3's envelope around `/a/b ,if 1 2.5` with nothing to check (its own bytes).
const PLAIN_ENVELOPE: &str = "2f7061636b6574002c7362736273620000000000000000000000000000000000\
                              00000000000000142f612f62000000002c6966000000000140200000";

#[test]
fn packet_control_envelopes_are_written_and_read() {
    let out = rosco(&["encode", "--packet-control", "/a/b", "if", "1", "2.5"]);
    assert_eq!(stdout(&out), PLAIN_ENVELOPE);
    let out = rosco(&["decode", "--packet-control", PLAIN_ENVELOPE]);
    assert_eq!(stdout(&out), "/a/b if 1 2.500000");
    assert!(out.stderr.is_empty(), "nothing to report");
    // A checksum, named or not, is read but not checked, and stderr says so.
    let with_checksum = |protocol: &[u8]| {
        let mut inner = Vec::new();
        rosco::osc::encode_message("/a/b", &[rosco::osc::Arg::Int(1)], &mut inner).unwrap();
        let mut packet = Vec::new();
        rosco::osc::Envelope {
            checksum_protocol: protocol,
            checksum: &[1, 2, 3, 4],
            ..rosco::osc::Envelope::plain(&inner)
        }
        .seal(&mut packet)
        .unwrap();
        packet
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for (protocol, said) in [
        (&b"crc32"[..], "checksum 'crc32' not checked"),
        (b"", "checksum (no protocol named) not checked"),
    ] {
        let out = rosco(&["decode", "--packet-control", &with_checksum(protocol)]);
        assert_eq!(stdout(&out), "/a/b i 1");
        assert!(String::from_utf8_lossy(&out.stderr).contains(said));
    }
    // What is not an envelope, or holds a malformed packet, is refused with why.
    let plain = stdout(&rosco(&["encode", "/a/b"]));
    let out = rosco(&["decode", "--packet-control", &plain]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a packet control envelope"));
    let mut packet = Vec::new();
    rosco::osc::Envelope::plain(b"/a\0\0,i\0\0")
        .seal(&mut packet)
        .unwrap();
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let out = rosco(&["decode", "--packet-control", &hex]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the packet the envelope carries"));
    // So does dump, with the sender.
    let (_dump, lines, port) = spawn_dump(&["--packet-control"]);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(&packet, ("127.0.0.1", port.parse::<u16>().unwrap()))
        .unwrap();
    let from = sender.local_addr().unwrap().to_string();
    wait_line(&lines, |l| {
        let said = l.contains(&format!("malformed packet from {from}"))
            && l.ends_with("(offsets in the packet the envelope carries)");
        said.then_some(())
    });
}

#[test]
fn send_and_dump_refuse_what_they_cannot_do() {
    assert_usage_error(&["dump", "osc.udp://127.0.0.1:9"], "dump listens");
    assert_usage_error(&["dump", "osc.udp://127.0.0.1:9?local=0"], "dump listens");
    assert_usage_error(&["dump", "osc.udp://localhost:9"], "dump listens");
    assert_usage_error(
        &["dump", "osc.udp://239.255.42.11:9?join=0"],
        "does not join its group",
    );
    // A Unix path is the listener dump makes of it: auto-detection is allowed, in any
    // spelling of the scheme, and `?listen=0` is overruled.
    let path = std::env::temp_dir().join(format!("rosco-cli-auto-{}", std::process::id()));
    for query in ["stream&framing=auto", "listen=0"] {
        for scheme in ["osc.unix", "OSC.UNIX"] {
            let url = format!("{scheme}://{}?{query}", path.display());
            let out = rosco(&["dump", "--timeout", "0.1", &url]);
            let _ = std::fs::remove_file(&path);
            assert!(out.status.success(), "{url}: {out:?}");
        }
    }
    assert_usage_error(&["dump", "70000"], "port 70000 is out of range");
    assert_usage_error(&["dump", "+70000"], "port +70000 is out of range");
    assert_usage_error(&["send", "osc.tcp://:9", "/a"], "listens");
    assert_usage_error(
        &[
            "send",
            "--at",
            "1",
            "--raw",
            "2f6100002c000000",
            "osc.udp://127.0.0.1:9",
        ],
        "--at",
    );
    assert_usage_error(
        &[
            "send",
            "--tcp-framing",
            "slip",
            "osc.udp://127.0.0.1:9",
            "/a",
        ],
        "--tcp-framing",
    );
    assert_usage_error(&["send", "osc.udp://:9?iface=lo", "/a"], "multicast group");
    // An argument that is not UTF-8: a usage error, not a panic.
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_rosco"))
        .args(["encode", "/a", "s"])
        .arg(std::ffi::OsStr::from_bytes(b"\xe9t\xe9"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
}

/// A stream `send` that cannot connect says where to and why, not just "closed".
#[test]
fn send_says_why_it_could_not_connect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let missing = std::env::temp_dir().join(format!("rosco-cli-none-{}", std::process::id()));
    for (url, why) in [
        (format!("osc.tcp://127.0.0.1:{port}"), "Connection refused"),
        (
            format!("osc.unix://{}?stream", missing.display()),
            "No such file",
        ),
        (format!("osc.unix://{}", missing.display()), "No such file"),
    ] {
        let out = rosco(&["send", &url, "/a"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {out:?}");
        assert!(
            stderr.contains(&format!("cannot deliver to {url}")) && stderr.contains(why),
            "{url}: {stderr}"
        );
    }
}

/// `dump osc.unix:///PATH` binds PATH, as oscdump does, and prints text as its bytes: a
/// char as one byte, a string that is not UTF-8 unchanged.
#[test]
fn dump_binds_a_unix_path_and_prints_text_bytes() {
    use std::process::Stdio;
    let path = std::env::temp_dir().join(format!("rosco-cli-dump-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("osc.unix://{}", path.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosco"))
        .args(["dump", "--count", "1", "--timeout", "10", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let dump = Dump(Some(child));
    wait_line(&lines, |l| {
        l.contains("listening on osc.unix://").then_some(())
    });
    // /u ,cs 0xc3 "\xe9t\xe9"
    let raw = "2f7500002c637300000000c3e974e900";
    let sent = rosco(&["send", "--raw", raw, &url]);
    assert!(sent.status.success(), "{sent:?}");
    let out = dump.wait_with_output();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{out:?}");
    let line = out.stdout.splitn(2, |&b| b == b' ').nth(1).unwrap();
    assert_eq!(line, b"/u cs '\xc3' \"\xe9t\xe9\"\n");
}

/// `rosco dump | head -1`: once its reader has gone, dump ends (as SIGPIPE ends oscdump)
/// instead of running on with nowhere to write.
#[test]
fn dump_ends_when_its_output_is_closed() {
    use std::io::BufRead;
    let (mut dump, _lines, port) = spawn_dump(&[]);
    let child = dump.0.as_mut().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let url = format!("osc.udp://127.0.0.1:{port}");
    assert!(rosco(&["send", &url, "/first", "i", "1"]).status.success());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("/first"), "{line}");
    drop(out);
    let stop = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < stop {
        assert!(rosco(&["send", &url, "/more", "i", "2"]).status.success());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = child.try_wait().unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// Output that fails for another reason than a reader gone (a full disk) ends the dump
/// with the reason and a failure status, not as if all went well.
#[test]
fn dump_fails_when_its_output_cannot_be_written() {
    let Ok(full) = std::fs::File::create("/dev/full") else {
        return eprintln!("skipped: no /dev/full");
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosco"))
        .args(["dump", "--timeout", "20", "0"])
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let port = wait_line(&lines, |l| {
        let rest = l.split_once("listening on osc.udp://")?.1;
        Some(rest.rsplit_once(':')?.1.trim_end_matches('/').to_string())
    });
    let mut dump = Dump(Some(child));
    let url = format!("osc.udp://127.0.0.1:{port}");
    assert!(rosco(&["send", &url, "/lost", "i", "1"]).status.success());
    let why = wait_line(&lines, |l| {
        l.contains("cannot write").then(|| l.to_string())
    });
    let status = dump.0.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(1), "{why}");
}

/// `rosco send` to a multicast group does not join it, as oscsend does not: a receiver
/// holding the group's port without sharing it gets the message.
#[test]
fn send_reaches_a_group_whose_port_is_held() {
    let holder = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let group = std::net::Ipv4Addr::new(239, 255, 42, 6);
    if let Err(e) = holder.join_multicast_v4(&group, &std::net::Ipv4Addr::LOCALHOST) {
        return eprintln!("skipped: no multicast here: {e}");
    }
    holder
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let url = format!("osc.udp://{group}:{port}?iface=127.0.0.1");
    let sent = rosco(&["send", &url, "/to/group", "i", "7"]);
    assert!(sent.status.success(), "{sent:?}");
    let mut buf = [0; 64];
    let n = holder.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"/to/group\0"));
}
