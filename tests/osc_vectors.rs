//! Every packet of `shared/vectors/osc-vectors.json`: accepted ones decode to `decoded` and
//! (where a real peer produced them) re-encode to the same bytes; rejected ones fail.

use rosco::osc::{decode, Arg, Json, OwnedArg, Packet, PacketWriter};
use rosco::TimeTag;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/osc-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("shared/vectors beside the repository");
    serde_json::from_str(&text).unwrap()
}

include!("support/hex.rs");

fn owned_args(args: &Value, out: &mut Vec<OwnedArg>) {
    for a in args.as_array().unwrap() {
        let ty = a["type"].as_str().unwrap();
        let bits = |w: usize| u64::from_str_radix(&a["bits"].as_str().unwrap()[..w], 16).unwrap();
        let bytes4 = |v: &Value| {
            let v: Vec<u8> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u8)
                .collect();
            [v[0], v[1], v[2], v[3]]
        };
        let plain = match ty {
            "i" => Arg::Int(a["value"].as_i64().unwrap() as i32),
            "h" => Arg::Long(a["value"].as_i64().unwrap()),
            "f" => Arg::Float(f32::from_bits(bits(8) as u32)),
            "d" => Arg::Double(f64::from_bits(bits(16))),
            "t" => Arg::Time(TimeTag::new(
                a["sec"].as_u64().unwrap() as u32,
                a["frac"].as_u64().unwrap() as u32,
            )),
            "c" => Arg::Char(a["code"].as_u64().unwrap() as u8),
            "m" => Arg::Midi(bytes4(&a["value"])),
            "r" => Arg::Rgba(bytes4(&a["value"])),
            "T" => Arg::True,
            "F" => Arg::False,
            "N" => Arg::Nil,
            "I" => Arg::Impulse,
            "s" | "S" | "b" => {
                let bytes = unhex(a["hex"].as_str().unwrap());
                out.push(match ty {
                    "s" => OwnedArg::Str(bytes),
                    "S" => OwnedArg::Symbol(bytes),
                    _ => OwnedArg::Blob(bytes),
                });
                continue;
            }
            "array" => {
                out.push(OwnedArg::Value(Arg::ArrayStart));
                owned_args(&a["items"], out);
                Arg::ArrayEnd
            }
            other => panic!("unknown type {other}"),
        };
        out.push(OwnedArg::Value(plain));
    }
}

fn encode_into(w: &mut PacketWriter<'_, '_>, d: &Value) {
    if d["kind"] == "bundle" {
        let tt = &d["timetag"];
        w.begin_bundle(TimeTag::new(
            tt["sec"].as_u64().unwrap() as u32,
            tt["frac"].as_u64().unwrap() as u32,
        ))
        .unwrap();
        for e in d["elements"].as_array().unwrap() {
            encode_into(w, e);
        }
        w.end_bundle().unwrap();
    } else {
        let mut owned = Vec::new();
        owned_args(&d["args"], &mut owned);
        let args: Vec<Arg<'_>> = owned.iter().map(OwnedArg::as_arg).collect();
        w.message(d["address"].as_str().unwrap(), &args).unwrap();
    }
}

#[test]
fn accepted_vectors_decode_to_their_json_and_reencode() {
    let v = vectors();
    let mut decoded = 0;
    let mut reencoded = 0;
    for vec in v["vectors"].as_array().unwrap() {
        if vec["expect"] != "accept" {
            continue;
        }
        let name = vec["name"].as_str().unwrap();
        let bytes = unhex(vec["hex"].as_str().unwrap());
        let packet = decode(&bytes).unwrap_or_else(|e| panic!("{name}: rejected: {e}"));
        let ours: Value = serde_json::from_str(&Json(packet).to_string())
            .unwrap_or_else(|e| panic!("{name}: bad JSON from rosco: {e}"));
        assert_eq!(ours, vec["decoded"], "{name}: decoded differs");
        decoded += 1;

        let from_peer = vec["producer"] != "handmade";
        if from_peer && !name.ends_with(".osc4py3") {
            let mut buf = Vec::new();
            let mut w = PacketWriter::new(&mut buf);
            encode_into(&mut w, &vec["decoded"]);
            w.finish().unwrap();
            assert_eq!(buf, bytes, "{name}: re-encoding differs");
            reencoded += 1;
        }
    }
    assert_eq!(decoded, 76);
    assert!(reencoded >= 60, "only {reencoded} re-encoded");
}

#[test]
fn rejected_vectors_fail_cleanly() {
    let v = vectors();
    let mut rejected = 0;
    for vec in v["vectors"].as_array().unwrap() {
        if vec["expect"] != "reject" {
            continue;
        }
        let name = vec["name"].as_str().unwrap();
        let bytes = unhex(vec["hex"].as_str().unwrap());
        let err = decode(&bytes).err();
        assert!(err.is_some(), "{name}: accepted");
        assert!(
            err.unwrap().offset <= bytes.len(),
            "{name}: offset out of range"
        );
        rejected += 1;
    }
    assert_eq!(rejected, 27);
}

#[test]
fn nested_32_is_the_limit() {
    let v = vectors();
    let find = |n: &str| {
        let vs = v["vectors"].as_array().unwrap();
        unhex(
            vs.iter().find(|x| x["name"] == n).unwrap()["hex"]
                .as_str()
                .unwrap(),
        )
    };
    let ok = find("edge_bundle_nested_32");
    let mut depth = 0;
    let mut p = decode(&ok).unwrap();
    while let Packet::Bundle(b) = p {
        depth += 1;
        p = b.elements().next().unwrap();
    }
    assert_eq!(depth, 32);
    let err = decode(&find("malformed_bundle_nested_33")).unwrap_err();
    assert_eq!(err.kind, rosco::osc::DecodeErrorKind::TooDeep { max: 32 });
}
