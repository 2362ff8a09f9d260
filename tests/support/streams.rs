// Shared by tests/mutation.rs and fuzz/fuzz_targets/framing.rs, which `include!` this file.

/// Feeding byte streams to a `Deframer` in every mode and chunking.
mod streams {
    use rosco::osc::{encode_frame, DeframeMode, Deframer, FrameError, Framing};

    /// Length of an OSC 1.0 length prefix.
    const HEADER: usize = 4;

    const MODES: [DeframeMode; 3] = [
        DeframeMode::Fixed(Framing::LengthPrefix),
        DeframeMode::Fixed(Framing::Slip),
        DeframeMode::Detect,
    ];

    /// One thing a deframer hands back.
    type Event = Result<Vec<u8>, FrameError>;

    /// Feeds `stream` to a deframer in each mode: whole, byte by byte, and in chunks of
    /// pseudo-random sizes chosen by `seed` (through `read_from` when `reader`). Checks that
    /// no frame is empty or above `max`, that the buffered remainder stays bounded, that the
    /// chunking changes nothing, and that the frames of a fixed framing, framed again, come
    /// back unchanged. Returns the number of frames found.
    pub(crate) fn check_stream(stream: &[u8], max: usize, seed: u64, reader: bool) -> usize {
        let mut found = 0;
        for mode in MODES {
            let whole = deframe(mode, max, stream, false, &mut || usize::MAX);
            let bytes = deframe(mode, max, stream, false, &mut || 1);
            assert_eq!(whole, bytes, "{mode:?}: byte by byte");
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut chunk = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                1 + (state % 64) as usize
            };
            let chunked = deframe(mode, max, stream, reader, &mut chunk);
            assert_eq!(whole, chunked, "{mode:?}: chunks from seed {seed}");
            let frames: Vec<Vec<u8>> = whole.into_iter().filter_map(Result::ok).collect();
            found += frames.len();
            if let DeframeMode::Fixed(framing) = mode {
                check_reframed(framing, max, &frames);
            }
        }
        found
    }

    /// Frames `packets` (each non-empty and at most `max` bytes) and checks that the fixed
    /// and the detecting deframer both give them back.
    pub(crate) fn check_reframed(framing: Framing, max: usize, packets: &[Vec<u8>]) {
        let mut stream = Vec::new();
        for p in packets {
            encode_frame(framing, p, &mut stream);
        }
        let want: Vec<Event> = packets.iter().cloned().map(Ok).collect();
        for mode in [DeframeMode::Fixed(framing), DeframeMode::Detect] {
            let got = deframe(mode, max, &stream, false, &mut || 7);
            assert_eq!(got, want, "{framing:?} frames through {mode:?}");
        }
    }

    /// Every event of a new deframer fed `stream` in chunks of the sizes `chunk` gives,
    /// draining after each chunk, up to the first fatal error.
    fn deframe(
        mode: DeframeMode,
        max: usize,
        stream: &[u8],
        reader: bool,
        chunk: &mut dyn FnMut() -> usize,
    ) -> Vec<Event> {
        let mut d = Deframer::new(mode, max);
        let mut events = Vec::new();
        let mut rest = stream;
        loop {
            if drain(&mut d, max, &mut events) || rest.is_empty() {
                return events;
            }
            let n = chunk().clamp(1, rest.len());
            let (now, later) = rest.split_at(n);
            if reader {
                let mut source = now;
                assert_eq!(d.read_from(&mut source, n).expect("slice read"), n);
            } else {
                d.push(now);
            }
            rest = later;
        }
    }

    /// Takes every available event; true after a fatal error.
    fn drain(d: &mut Deframer, max: usize, events: &mut Vec<Event>) -> bool {
        while let Some(next) = d.next_frame() {
            match next {
                Ok(frame) => {
                    assert!(!frame.is_empty(), "empty frame");
                    assert!(frame.len() <= max, "{}-byte frame over {max}", frame.len());
                    events.push(Ok(frame.to_vec()));
                }
                Err(e) => {
                    events.push(Err(e));
                    if e.is_fatal() {
                        assert_eq!(d.next_frame(), Some(Err(e)), "fatal errors repeat");
                        return true;
                    }
                }
            }
        }
        assert!(d.pending() <= max + HEADER, "{} bytes pending", d.pending());
        false
    }
}
