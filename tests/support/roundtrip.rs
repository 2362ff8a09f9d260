// Shared by tests/mutation.rs and the fuzz targets in fuzz/, which `include!` this file.

/// Decoding a packet, reading all of it, re-encoding it and checking the copy.
mod roundtrip {
    use rosco::osc::{
        decode_with, encode_message, Arg, DecodeError, DecodeOptions, Json, Message, Packet,
        PacketWriter, Text,
    };

    /// Decodes `bytes` with `opts` (without address compression). When the packet is
    /// accepted, reads every element and argument, re-encodes each message on its own and
    /// the whole packet with [`PacketWriter`], and checks that the copies decode to the same
    /// values (and to the same bytes, unless a message lacks type tags or has a `c` argument,
    /// which may have come in osc4py3's layout). A rejection must point inside the packet.
    /// Panics on any inconsistency.
    pub(crate) fn check_packet(bytes: &[u8], opts: &DecodeOptions) -> Result<(), DecodeError> {
        assert!(
            opts.addresses.is_none(),
            "byte comparisons assume no compression"
        );
        let packet = match decode_with(bytes, opts) {
            Ok(p) => p,
            Err(e) => {
                let len = bytes.len();
                assert!(e.offset <= len, "{e}: offset past the {len}-byte packet");
                assert!(!e.to_string().is_empty());
                return Err(e);
            }
        };
        assert_eq!(packet.as_bytes(), bytes);
        assert!(!Json(packet).to_string().is_empty());
        let (mut whole, mut scratch) = (Vec::new(), Vec::new());
        let mut w = PacketWriter::new(&mut whole);
        let exact = rewrite(packet, &mut w, &mut scratch, opts);
        let len = w.finish().expect("a decoded packet re-encodes");
        assert_eq!(len, whole.len());
        if exact {
            assert_eq!(whole, bytes, "re-encoded packet differs");
        }
        let again = decode_with(&whole, opts).expect("the re-encoded packet decodes");
        same_packet(packet, again);
        Ok(())
    }

    /// Writes `p` with `w`, checking each message alone on the way. True when the copy must
    /// be byte-identical.
    fn rewrite(
        p: Packet<'_>,
        w: &mut PacketWriter<'_, '_>,
        scratch: &mut Vec<u8>,
        opts: &DecodeOptions,
    ) -> bool {
        match p {
            Packet::Message(m) => {
                let args = read_args(&m);
                let exact = check_message(&m, &args, scratch, opts);
                w.message(m.address(), &args).expect("message re-encodes");
                exact
            }
            Packet::Bundle(b) => {
                w.begin_bundle(b.timetag())
                    .expect("nesting within the limit");
                let (mut exact, mut covered) = (true, 16);
                for e in b.elements() {
                    covered += 4 + e.as_bytes().len();
                    exact &= rewrite(e, w, scratch, opts);
                }
                assert_eq!(covered, b.as_bytes().len(), "elements cover the bundle");
                w.end_bundle().expect("bundle closes");
                exact
            }
        }
    }

    /// Every argument, with the accessors cross-checked.
    fn read_args<'a>(m: &Message<'a>) -> Vec<Arg<'a>> {
        let args: Vec<Arg<'a>> = m.args().collect();
        assert_eq!(args.len(), m.len(), "one argument per type tag");
        assert_eq!(m.args().len(), m.len());
        assert_eq!(m.is_empty(), args.is_empty());
        for (a, &tag) in args.iter().zip(m.typetags()) {
            assert_eq!(a.tag(), tag);
            let _ = (a.as_i64(), a.as_f64(), a.as_str());
        }
        if let Some(last) = args.last() {
            assert!(same(m.arg(args.len() - 1).expect("last argument"), *last));
        }
        assert_eq!(m.arg(args.len()), None);
        let _ = m.address_str();
        assert!(!Text(m).to_string().is_empty());
        args
    }

    /// Encodes `m` alone and decodes it again; true when the bytes must be identical.
    fn check_message(
        m: &Message<'_>,
        args: &[Arg<'_>],
        scratch: &mut Vec<u8>,
        opts: &DecodeOptions,
    ) -> bool {
        encode_message(m.address(), args, scratch).expect("message re-encodes");
        let char_arg = args.iter().any(|a| matches!(a, Arg::Char(c) if *c != 0));
        let exact = m.has_typetags() && !char_arg;
        if exact {
            assert_eq!(&scratch[..], m.as_bytes(), "re-encoded message differs");
        }
        match decode_with(scratch, opts).expect("re-encoded message decodes") {
            Packet::Message(again) => {
                assert_eq!(again.address(), m.address());
                same_args(args.iter().copied(), again.args());
            }
            Packet::Bundle(_) => panic!("a message re-encoded as a bundle"),
        }
        exact
    }

    fn same_packet(a: Packet<'_>, b: Packet<'_>) {
        match (a, b) {
            (Packet::Message(x), Packet::Message(y)) => {
                assert_eq!(x.address(), y.address());
                same_args(x.args(), y.args());
            }
            (Packet::Bundle(x), Packet::Bundle(y)) => {
                assert_eq!(x.timetag(), y.timetag());
                assert_eq!(x.elements().count(), y.elements().count());
                for (e, f) in x.elements().zip(y.elements()) {
                    same_packet(e, f);
                }
            }
            _ => panic!("a message and a bundle"),
        }
    }

    fn same_args<'a, 'b>(a: impl Iterator<Item = Arg<'a>>, b: impl Iterator<Item = Arg<'b>>) {
        let (a, b): (Vec<_>, Vec<_>) = (a.collect(), b.collect());
        assert_eq!(a.len(), b.len(), "argument counts");
        for (x, y) in a.into_iter().zip(b) {
            assert!(same(x, y), "{x:?} != {y:?}");
        }
    }

    /// Equality with floats compared by bits, so NaN payloads must survive.
    fn same(a: Arg<'_>, b: Arg<'_>) -> bool {
        match (a, b) {
            (Arg::Float(x), Arg::Float(y)) => x.to_bits() == y.to_bits(),
            (Arg::Double(x), Arg::Double(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }
}
