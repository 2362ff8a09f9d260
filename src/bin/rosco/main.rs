//! `rosco`: the command-line tool users and tests drive. See `rosco help`.

mod demo;
mod netcmd;
mod o2cmd;
mod oscargs;

use rosco::osc::{
    self, AddressTable, DecodeOptions, EncodeOptions, HexDump, Json, Packet, PacketWriter, Text,
    TypeSet,
};
use rosco::pattern;
use std::io::{Read, Write};
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  rosco demo                          loopback demo: messages, pattern dispatch, a timed bundle
  rosco decode [options] [HEX]        print a packet (hex as argument, or on stdin)
      --json                          print the packet as JSON (the vectors' `decoded` shape)
      --hexdump                       print a hex dump first
      --require-typetags              reject messages without a type-tag string
      --check-address                 reject addresses that break the OSC syntax
      --types TAGS                    reject packets with types outside TAGS
      --ascii                         reject text (address, strings, chars) that is not ASCII
      --address-code CODE=ADDRESS     a compressed address (/ and CODE) stands for ADDRESS
                                      (repeatable; the SMC 2011 scheme osc4py3 implements)
      --packet-control                the packet is inside an osc4py3 packet control
                                      envelope (/packet ,sbsbsb); encrypted ones are
                                      refused, checksums and signatures not checked
  rosco encode [--address-code CODE=ADDRESS]... [--packet-control] ADDRESS [TYPES [VALUES...]]
                                      print a message as hex (oscsend's argument syntax;
                                      an m value's 0x prefix is a prefix, where oscsend
                                      counts it among its 8 digits),
                                      ADDRESS compressed to / and CODE when given, in a
                                      packet control envelope with --packet-control
  rosco match PATTERN ADDRESS         print true or false (exit 2 for a malformed pattern)
  rosco dump [options] URL|PORT       print what arrives, like oscdump (PORT: osc.udp://:PORT;
                                      a Unix path is bound; a TCP URL with a host
                                      prints what that server sends)
      --json                          one JSON line per packet instead
      --count N                       exit after N messages (N packets with --json)
      --timeout SECONDS               stop after this long (exit 1 if --count was not reached)
      --no-queue                      deliver timed bundles at once
      --require-typetags, --check-address, --ascii, --types TAGS, --address-code CODE=ADDRESS,
      --packet-control                read packets as decode does (refused ones on stderr)
  rosco send [options] URL ADDRESS [TYPES [VALUES...]]
                                      send one message (oscsend's argument syntax; URL may
                                      also be oscsend's HOST PORT, for UDP, or - for the
                                      packet's bytes on standard output)
      --tcp-framing slip|slip-single|length
                                      framing on osc.tcp:// and osc.unix:// ?stream
                                      (default: length prefix; slip-single: SLIP
                                      without the leading END)
      --at SECONDS                    send it in a bundle timed this far ahead
      --address-code CODE=ADDRESS     send ADDRESS compressed, as encode does
      --raw HEX                       send these bytes as one packet instead
      --packet-control                send it in an osc4py3 packet control envelope
  rosco o2lite host [options] ENSEMBLE
                                      an O2lite host printing clients, services and messages
      --port P, --udp-port U          its TCP and UDP ports (default: any)
      --service NAME                  a service of its own (repeatable); messages are printed
      --no-mdns                       do not advertise it by DNS-SD
      --count N, --timeout SECONDS    stop after N messages / after this long
  rosco o2lite client [options] ENSEMBLE [ADDRESS [TYPES [VALUES...]]]
                                      an O2lite client printing what happens: without
                                      ADDRESS it dumps what reaches its services; with
                                      ADDRESS it sends one message once connected
      --host H:P[:U]                  the host's address, TCP port and UDP port (no discovery)
      --service NAME                  offer a service (repeatable); its messages are printed
      --udp                           send by UDP instead of TCP (once the host's UDP
                                      port is known: --host H:P:U or discovery; by TCP
                                      until then)
      --at SECONDS                    timestamp the message this far ahead (waits for sync)
      --count N, --timeout SECONDS    stop after N messages / after this long";

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1).map(|a| a.into_string());
    let args: Vec<String> = match args.collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!("rosco: argument {bad:?} is not UTF-8 (send such bytes with --raw HEX)");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run().map_err(|e| (1, e)),
        Some("decode") => decode(&args[1..]),
        Some("encode") => encode(&args[1..]),
        Some("match") => match_cmd(&args[1..]),
        Some("dump") => netcmd::dump(&args[1..]),
        Some("send") => netcmd::send(&args[1..]),
        Some("o2lite") => o2cmd::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err((2, USAGE.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("rosco: {msg}");
            ExitCode::from(code)
        }
    }
}

/// Exit status and one-line message of a failed command.
type CmdError = (u8, String);
type CmdResult = Result<(), CmdError>;

fn usage_error(msg: &str) -> CmdError {
    (2, format!("{msg}\n{USAGE}"))
}

/// The decoder flags `decode` and `dump` share without a value, and those with one.
pub(crate) const DECODER_FLAGS: &[&str] = &["--require-typetags", "--check-address", "--ascii"];
pub(crate) const DECODER_VALUE_FLAGS: &[&str] = &["--types", "--address-code"];

/// Applies one of the decoder flags (`value` for those that take one); false for any other
/// flag.
pub(crate) fn decoder_flag(
    opts: &mut DecodeOptions,
    name: &str,
    value: Option<&str>,
) -> Result<bool, CmdError> {
    match (name, value) {
        ("--require-typetags", _) => opts.require_typetags = true,
        ("--check-address", _) => opts.check_address = true,
        ("--ascii", _) => opts.ascii_only = true,
        ("--types", Some(tags)) => {
            opts.allowed_types = TypeSet::known(tags.as_bytes()).map_err(|t| {
                (
                    2,
                    format!("--types {tags}: unknown type tag '{}'", t as char),
                )
            })?;
        }
        ("--address-code", Some(spec)) => address_code(&mut opts.addresses, spec)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Adds `--address-code CODE=ADDRESS` to a compression table.
pub(crate) fn address_code(
    table: &mut Option<std::sync::Arc<AddressTable>>,
    spec: &str,
) -> CmdResult {
    let bad = |why: &str| (2, format!("--address-code {spec}: {why}"));
    let (code, address) = spec
        .split_once('=')
        .ok_or_else(|| bad("not CODE=ADDRESS"))?;
    let code = code.parse().map_err(|_| bad("CODE is not an int32"))?;
    std::sync::Arc::make_mut(table.get_or_insert_with(Default::default))
        .insert(code, address)
        .map_err(|e| bad(&e.to_string()))
}

fn decode(args: &[String]) -> CmdResult {
    let mut opts = DecodeOptions::DEFAULT;
    let (mut json, mut hexdump, mut envelope, mut hex) = (false, false, false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--hexdump" => hexdump = true,
            "--packet-control" => envelope = true,
            flag if DECODER_VALUE_FLAGS.contains(&flag) => {
                let value = it
                    .next()
                    .ok_or_else(|| usage_error(&format!("{flag} needs a value")))?;
                decoder_flag(&mut opts, flag, Some(value))?;
            }
            flag if decoder_flag(&mut opts, flag, None)? => {}
            flag if flag.starts_with("--") => {
                return Err(usage_error(&format!("unknown option {flag}")))
            }
            h => hex = Some(h.to_string()),
        }
    }
    let hex = match hex {
        Some(h) => h,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| (1, e.to_string()))?;
            s
        }
    };
    let bytes =
        oscargs::hex_bytes(hex.trim()).ok_or_else(|| (2, "input is not hex".to_string()))?;
    if hexdump {
        println!("{}", HexDump(&bytes));
    }
    let (bytes, inside) = match envelope {
        true => {
            let inner = open_envelope(&bytes).map_err(|e| (1, format!("rejected: {e}")))?;
            (inner, " (offsets in the packet the envelope carries)")
        }
        false => (&bytes[..], ""),
    };
    let packet =
        osc::decode_with(bytes, &opts).map_err(|e| (1, format!("rejected: {e}{inside}")))?;
    if json {
        println!("{}", Json(packet));
    } else {
        print_packet(&packet, 0);
    }
    Ok(())
}

/// The packet in an osc4py3 packet control envelope (`--packet-control`). rosco knows no
/// encryption, checksum or signature functions: an encrypted packet is refused, and a
/// checksum or signature is not checked, which stderr says.
pub(crate) fn open_envelope(packet: &[u8]) -> Result<&[u8], String> {
    let e = osc::Envelope::open(packet).map_err(|e| e.to_string())?;
    let name = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    if !e.encryption_protocol.is_empty() {
        let protocol = name(e.encryption_protocol);
        return Err(format!(
            "encrypted with '{protocol}', which rosco cannot decrypt"
        ));
    }
    let checks = [
        ("checksum", e.checksum_protocol, e.checksum),
        ("signature", e.signature_protocol, e.signature),
    ];
    for (what, protocol, value) in checks {
        match (protocol.is_empty(), value.is_empty()) {
            (true, true) => {}
            (true, false) => eprintln!("rosco: {what} (no protocol named) not checked"),
            (false, _) => eprintln!("rosco: {what} '{}' not checked", name(protocol)),
        }
    }
    Ok(e.data)
}

/// `packet` in an osc4py3 packet control envelope with nothing to check (`--packet-control`).
pub(crate) fn seal_envelope(packet: &[u8]) -> Result<Vec<u8>, CmdError> {
    let mut sealed = Vec::new();
    osc::Envelope::plain(packet)
        .seal(&mut sealed)
        .map_err(|e| (2, e.to_string()))?;
    Ok(sealed)
}

fn print_packet(p: &Packet<'_>, indent: usize) {
    match p {
        Packet::Message(m) => {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{:indent$}", "");
            let _ = Text(m).write_raw(&mut out);
            let _ = writeln!(out);
        }
        Packet::Bundle(b) => {
            println!("{:indent$}#bundle {}", "", b.timetag());
            for e in b.elements() {
                print_packet(&e, indent + 2);
            }
        }
    }
}

fn encode(args: &[String]) -> CmdResult {
    let mut opts = EncodeOptions::default();
    let (mut args, mut envelope) = (args, false);
    while let [flag, rest @ ..] = args {
        match flag.as_str() {
            "--packet-control" => (envelope, args) = (true, rest),
            "--address-code" => {
                let (spec, rest) = rest
                    .split_first()
                    .ok_or_else(|| usage_error("--address-code needs CODE=ADDRESS"))?;
                address_code(&mut opts.addresses, spec)?;
                args = rest;
            }
            _ => break,
        }
    }
    let (address, rest) = args
        .split_first()
        .ok_or_else(|| usage_error("encode needs an ADDRESS"))?;
    let (types, values) = rest
        .split_first()
        .map_or(("", &[][..]), |(t, v)| (t.as_str(), v));
    let owned = oscargs::parse(types, values).map_err(|e| (2, e))?;
    let args: Vec<_> = owned.iter().map(osc::OwnedArg::as_arg).collect();
    let mut buf = Vec::new();
    PacketWriter::with_options(&mut buf, &opts)
        .message(address, &args)
        .map_err(|e| (2, e.to_string()))?;
    if envelope {
        buf = seal_envelope(&buf)?;
    }
    println!(
        "{}",
        buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    Ok(())
}

fn match_cmd(args: &[String]) -> CmdResult {
    let [pat, address] = args else {
        return Err(usage_error("match needs PATTERN and ADDRESS"));
    };
    let matched = pattern::matches(pat.as_bytes(), address.as_bytes())
        .map_err(|e| (2, format!("malformed pattern: {e}")))?;
    println!("{matched}");
    Ok(())
}
