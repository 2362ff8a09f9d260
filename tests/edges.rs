//! Edge cases at the limits of the formats: very deep OSC arrays and bundles rendered as
//! JSON on a small stack, and timetags for delays the 32.32 format cannot represent.

use rosco::osc::{decode, decode_with, DecodeOptions, Json};
use rosco::TimeTag;
use std::time::Duration;

/// An OSC string: the bytes, a NUL, padding to 4.
fn osc_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// `/a` with `depth` nested arrays around `inner` type tags (whose data is `data`).
fn nested_arrays(depth: usize, inner: &[u8], data: &[u8]) -> Vec<u8> {
    let mut tags = vec![b','];
    tags.extend(std::iter::repeat(b'[').take(depth));
    tags.extend_from_slice(inner);
    tags.extend(std::iter::repeat(b']').take(depth));
    let mut p = Vec::new();
    osc_string(&mut p, b"/a");
    osc_string(&mut p, &tags);
    p.extend_from_slice(data);
    p
}

/// Renders on a thread with a stack of `stack` bytes: rendering must not recurse per level.
fn render_on_small_stack(packet: &[u8], opts: &DecodeOptions, stack: usize) -> String {
    let packet = decode_with(packet, opts).expect("valid packet");
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn_scoped(s, || Json(packet).to_string())
            .unwrap()
            .join()
            .unwrap()
    })
}

const ARRAY: &str = "{\"type\":\"array\",\"items\":[";

#[test]
fn json_of_100000_nested_arrays_on_a_small_stack() {
    let depth = 100_000;
    let p = nested_arrays(depth, b"", b"");
    let json = render_on_small_stack(&p, &DecodeOptions::DEFAULT, 256 << 10);
    let typetags = format!(",{}{}", "[".repeat(depth), "]".repeat(depth));
    let expected = format!(
        "{{\"kind\":\"message\",\"address\":\"/a\",\"typetags\":\"{typetags}\",\"args\":[{}{}]}}",
        ARRAY.repeat(depth),
        "]}".repeat(depth)
    );
    assert!(json == expected, "output differs ({} bytes)", json.len());
}

#[test]
fn json_of_deep_arrays_with_values_between_levels() {
    // ,i[i[...i[T]...]i]i: values before, inside and after every level.
    let depth: usize = 20_000;
    let mut tags = Vec::new();
    for _ in 0..depth {
        tags.extend_from_slice(b"i[");
    }
    tags.push(b'T');
    for _ in 0..depth {
        tags.extend_from_slice(b"]i");
    }
    let mut data = Vec::new();
    for i in 0..2 * depth {
        data.extend_from_slice(&(i as i32).to_be_bytes());
    }
    let mut p = Vec::new();
    osc_string(&mut p, b"/a");
    osc_string(&mut p, &[b",", &tags[..]].concat());
    p.extend_from_slice(&data);
    let json = render_on_small_stack(&p, &DecodeOptions::DEFAULT, 256 << 10);

    let mut args = String::new();
    for i in 0..depth {
        args += &format!("{{\"type\":\"i\",\"value\":{i}}},{ARRAY}");
    }
    args += "{\"type\":\"T\",\"value\":true}";
    for i in depth..2 * depth {
        args += &format!("]}},{{\"type\":\"i\",\"value\":{i}}}");
    }
    let typetags = format!(",{}", String::from_utf8(tags).unwrap());
    let expected = format!(
        "{{\"kind\":\"message\",\"address\":\"/a\",\"typetags\":\"{typetags}\",\"args\":[{args}]}}"
    );
    assert!(json == expected, "output differs ({} bytes)", json.len());
}

#[test]
fn json_of_small_arrays_is_unchanged() {
    // ,[[]i]T[]: an empty array, one closing after a value, and siblings.
    let mut p = Vec::new();
    osc_string(&mut p, b"/a");
    osc_string(&mut p, b",[[]i]T[]");
    p.extend_from_slice(&5i32.to_be_bytes());
    let json = Json(decode(&p).unwrap()).to_string();
    assert_eq!(
        json,
        concat!(
            r#"{"kind":"message","address":"/a","typetags":",[[]i]T[]","args":["#,
            r#"{"type":"array","items":[{"type":"array","items":[]},{"type":"i","value":5}]},"#,
            r#"{"type":"T","value":true},{"type":"array","items":[]}]}"#
        )
    );
}

#[test]
fn json_of_deeply_nested_bundles_on_a_small_stack() {
    // Bundles nest only as deep as DecodeOptions::max_depth allows (32 by default), but a
    // caller may raise it, up to DEPTH_LIMIT; the rendering keeps open bundles on the heap.
    let depth = rosco::osc::DEPTH_LIMIT - 1;
    let mut message = Vec::new();
    osc_string(&mut message, b"/m");
    osc_string(&mut message, b",");
    let mut p = message.clone();
    for _ in 0..depth {
        let mut b = b"#bundle\0".to_vec();
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&(p.len() as i32).to_be_bytes());
        b.extend_from_slice(&p);
        // A second element at every level, so separators are checked too.
        b.extend_from_slice(&(message.len() as i32).to_be_bytes());
        b.extend_from_slice(&message);
        p = b;
    }
    let opts = DecodeOptions {
        max_depth: depth + 1,
        ..DecodeOptions::DEFAULT
    };
    // Decoding validates recursively (bounded by max_depth); do it on a roomy thread.
    let json = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, || render_on_small_stack(&p, &opts, 32 << 10))
            .unwrap()
            .join()
            .unwrap()
    });
    let msg = r#"{"kind":"message","address":"/m","typetags":",","args":[]}"#;
    let open = r#"{"kind":"bundle","timetag":{"sec":0,"frac":1,"immediate":true},"elements":["#;
    // Each level: its inner bundle, then the second message, then the close.
    let expected = format!(
        "{}{msg}{}",
        open.repeat(depth),
        format!(",{msg}]}}").repeat(depth)
    );
    assert!(json == expected, "output differs ({} bytes)", json.len());
}

// --- timetags beyond the format ---------------------------------------------------------

#[test]
fn after_never_wraps_into_the_past() {
    let now = TimeTag::now();
    // 2^32 - 10 s used to give 10 s in the past, 2^32 s "now".
    for secs in [
        (1u64 << 32) - 10,
        1 << 32,
        (1 << 32) + 5,
        1 << 33,
        1 << 40,
        u64::MAX,
    ] {
        let d = Duration::from_secs(secs);
        let t = TimeTag::after(d);
        assert!(t > now, "{secs} s from now sorts before now: {t:?}");
        assert_eq!(t, TimeTag::MAX, "{secs}");
        assert_eq!(TimeTag::checked_after(d), None, "{secs}");
        assert_eq!(now.checked_add(d), None, "{secs}");
        assert_eq!(now + d, TimeTag::MAX, "{secs}");
    }
    assert_eq!(TimeTag::after(Duration::MAX), TimeTag::MAX);
}

#[test]
fn representable_delays_are_unchanged() {
    let now = TimeTag::now();
    let year = 365 * 86_400u64;
    for secs in [0, 1, 3_600, 10 * year, 60 * year] {
        let d = Duration::from_secs(secs) + Duration::from_millis(250);
        let t = now.checked_add(d).expect("representable");
        assert_eq!(now + d, t);
        assert_eq!(
            t.duration_since(now).map(|x| x.as_millis()),
            Some(d.as_millis())
        );
        let after = TimeTag::checked_after(d).unwrap();
        assert!(after >= t && after.duration_since(t) < Some(Duration::from_secs(5)));
    }
    // Exact bit patterns, across the 2036 rollover, as before.
    let before = TimeTag::new(u32::MAX, 0);
    assert_eq!(before + Duration::from_secs(2), TimeTag::new(1, 0));
    assert_eq!(
        before.checked_add(Duration::from_millis(1500)),
        Some(TimeTag::new(0, 0x8000_0000))
    );
    // The largest delay that fits ends exactly at MAX's second.
    let to_max = TimeTag::MAX.duration_since(now).unwrap();
    let secs = Duration::from_secs(to_max.as_secs());
    assert!(now.checked_add(secs).is_some());
    assert_eq!(now.checked_add(secs + Duration::from_secs(1)), None);
    // About 78 years from 2026: the end of NTP era 1 under the RFC 4330 pivot.
    assert!(to_max > Duration::from_secs(60 * year));
}

#[test]
fn max_sorts_last_and_names_2104() {
    assert_eq!(TimeTag::MAX.to_bits(), 0x7FFF_FFFF_FFFF_FFFF);
    assert!(TimeTag::MAX > TimeTag::new(u32::MAX, u32::MAX));
    assert!(TimeTag::MAX > TimeTag::new(0, 2));
    // 2104-02-26 09:42:23 UTC, the last whole second.
    let unix = TimeTag::MAX
        .to_system_time()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(unix.as_secs(), 4_233_462_143);
    assert_eq!(unix.subsec_nanos(), 999_999_999);
    assert_eq!(TimeTag::from_unix_secs_f64(1e12), TimeTag::MAX);
}
