//! `rosco dump` and `rosco send`: liblo's `oscdump` and `oscsend`, on any rosco channel.

use crate::oscargs;
use rosco::dispatch::Flow;
use rosco::osc::{self, Json, OwnedArg, PacketWriter, Text};
use rosco::runtime::{Event, HookVerdict, Reconnect};
use rosco::transport::url::{ChannelUrl, StreamFraming};
use rosco::{Context, ContextOptions, TimeTag};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{CmdError, CmdResult};

pub(crate) fn fail(e: impl std::fmt::Display) -> CmdError {
    (1, e.to_string())
}

pub(crate) fn usage(msg: &str) -> CmdError {
    (2, msg.to_string())
}

/// Options as `(name, value)`; flags have no value.
pub(crate) type Flags<'a> = Vec<(&'a str, Option<&'a str>)>;

/// Options taking a value, then the positional arguments.
pub(crate) fn split_flags<'a>(
    args: &'a [String],
    with_value: &[&str],
    flags: &[&str],
) -> Result<(Flags<'a>, &'a [String]), CmdError> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() && args[i].starts_with("--") {
        let name = args[i].as_str();
        if with_value.contains(&name) {
            let value = args
                .get(i + 1)
                .ok_or_else(|| usage(&format!("{name} needs a value")))?;
            opts.push((name, Some(value.as_str())));
            i += 2;
        } else if flags.contains(&name) {
            opts.push((name, None));
            i += 1;
        } else {
            return Err(usage(&format!("unknown option {name}")));
        }
    }
    Ok((opts, &args[i..]))
}

/// A non-negative, finite number of seconds (fractions allowed).
fn non_negative(v: &str) -> Result<f64, CmdError> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| usage(&format!("not a number of seconds: '{v}'")))
}

/// A number of seconds, as for `--at`; too many for a `Duration` (about 1.8e19 s) is a
/// usage error.
pub(crate) fn seconds(v: &str) -> Result<Duration, CmdError> {
    Duration::try_from_secs_f64(non_negative(v)?)
        .map_err(|_| usage(&format!("not a number of seconds: '{v}' is out of range")))
}

/// A `--timeout`: a number of seconds, where one too long to count (`inf` included) means
/// no time limit, given as `Duration::MAX`; see [`deadline`].
pub(crate) fn timeout(v: &str) -> Result<Duration, CmdError> {
    let secs = match v.parse::<f64>() {
        Ok(f64::INFINITY) => f64::INFINITY,
        _ => non_negative(v)?,
    };
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// When a timeout that starts now ends; `None` when there is none, or when it ends too far
/// ahead for the clock to count (which waits for ever, as such a timeout means).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// The timetag `v` seconds from now, for `send --at`: a usage error when no timetag can
/// name that time (past 2104-02-26, the end of NTP era 1), rather than a time wrapped
/// into the past.
fn timetag_after(v: &str) -> Result<TimeTag, CmdError> {
    let delay = Duration::try_from_secs_f64(non_negative(v)?).ok();
    delay.and_then(TimeTag::checked_after).ok_or_else(|| {
        let most = TimeTag::MAX
            .duration_since(TimeTag::now())
            .unwrap_or_default()
            .as_secs();
        usage(&format!(
            "--at {v} is out of range: a timetag names no time after \
             2104-02-26 09:42:23 UTC ({most} seconds from now)"
        ))
    })
}

pub(crate) fn dump(args: &[String]) -> CmdResult {
    let flags = [
        &["--json", "--no-queue", "--packet-control"][..],
        crate::DECODER_FLAGS,
    ]
    .concat();
    let values = [&["--count", "--timeout"][..], crate::DECODER_VALUE_FLAGS].concat();
    let (opts, rest) = split_flags(args, &values, &flags)?;
    let [target] = rest else {
        return Err(usage("dump needs one URL or PORT"));
    };
    let (url, listening) = match target.parse::<u16>() {
        Ok(port) => {
            let opts = Default::default();
            (
                ChannelUrl::Udp {
                    host: None,
                    port,
                    opts,
                },
                true,
            )
        }
        Err(_) if is_number(target) => {
            return Err(usage(&format!(
                "port {target} is out of range (0 to 65535)"
            )))
        }
        Err(_) => receiving(target)?,
    };
    let (mut json, mut count, mut timeout, mut queue) = (false, None, None, true);
    let mut envelope = false;
    let mut options = ContextOptions::default();
    for (name, value) in opts {
        match (name, value) {
            (flag, v) if crate::decoder_flag(&mut options.receive.decode, flag, v)? => {}
            ("--json", _) => json = true,
            ("--no-queue", _) => queue = false,
            ("--packet-control", _) => envelope = true,
            ("--count", Some(v)) => {
                count = Some(
                    v.parse::<u64>()
                        .map_err(|_| usage("--count needs a whole number"))?,
                )
            }
            ("--timeout", Some(v)) => timeout = Some(self::timeout(v)?),
            _ => unreachable!("split_flags knows these"),
        }
    }
    options.receive.queue_bundles = queue;
    let decode = options.receive.decode.clone();
    let ctx = Context::new(options).map_err(fail)?;
    ctx.set_event_callback(Some(move |e: &Event| match e {
        Event::Malformed {
            source,
            reason,
            error,
            ..
        } => {
            let from = source.map_or(String::new(), |s| format!(" from {s}"));
            // With --packet-control what was decoded is the packet inside the envelope.
            let inside = match envelope && error.is_some() {
                true => " (offsets in the packet the envelope carries)",
                false => "",
            };
            eprintln!("rosco: malformed packet{from}: {reason}{inside}");
        }
        Event::Disconnected { peer, reason, .. } => {
            let who = peer.map_or("peer".to_string(), |p| p.to_string());
            eprintln!("rosco: {who} disconnected: {reason}");
        }
        Event::Reconnecting {
            attempt,
            delay,
            reason,
            ..
        } => eprintln!(
            "rosco: reconnecting (attempt {attempt}) in {} ms: {reason}",
            delay.as_millis()
        ),
        Event::GaveUp { reason, .. } => eprintln!("rosco: gave up connecting: {reason}"),
        _ => {}
    }));
    let seen = Arc::new(AtomicU64::new(0));
    // Why stdout could not be written, which ends the dump: its reader went away
    // (`rosco dump | head -1`, ended as SIGPIPE ends oscdump), or a failure, reported.
    let gone: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
    let id = ctx.open("dump", &url.to_string()).map_err(fail)?;
    if json {
        // A tap on the raw packets: one JSON line each, as they arrive.
        let (seen, gone) = (seen.clone(), gone.clone());
        let hook: rosco::runtime::PacketHook = Box::new(move |raw, out| {
            let Some(raw) = opened(envelope, raw) else {
                return HookVerdict::Drop;
            };
            match osc::decode_with(raw, &decode) {
                Ok(packet) => {
                    print_line(&gone, |out| write!(out, "{}", Json(packet)));
                    seen.fetch_add(1, Ordering::Relaxed);
                    HookVerdict::Drop
                }
                // Passed on: the receiver refuses it too, and the event callback says why
                // and where from.
                Err(_) if !envelope => HookVerdict::Pass,
                Err(_) => {
                    out.extend_from_slice(raw);
                    HookVerdict::Replace
                }
            }
        });
        ctx.set_packet_hooks(id, Some(hook), None).map_err(fail)?;
    } else {
        if envelope {
            let unwrap: rosco::runtime::PacketHook =
                Box::new(move |raw, out| match opened(envelope, raw) {
                    Some(inner) => {
                        out.extend_from_slice(inner);
                        HookVerdict::Replace
                    }
                    None => HookVerdict::Drop,
                });
            ctx.set_packet_hooks(id, Some(unwrap), None).map_err(fail)?;
        }
        let (seen, gone) = (seen.clone(), gone.clone());
        ctx.methods()
            .add_method(None, None, move |m, info| {
                let time = match info.bundle_time {
                    Some(t) if !t.is_immediate() => t,
                    _ => info.received,
                };
                print_line(&gone, |out| {
                    write!(out, "{time} ")?;
                    Text(m).write_raw(out)
                });
                seen.fetch_add(1, Ordering::Relaxed);
                Flow::Handled
            })
            .map_err(fail)?;
    }
    let url = ctx.url(id).map_err(fail)?;
    match listening {
        true => eprintln!("rosco: listening on {url}"),
        false => eprintln!("rosco: receiving on {url}"),
    }
    let until = deadline(timeout);
    loop {
        match gone.lock().unwrap().take() {
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Some(e) => return Err(fail(format!("cannot write the output: {e}"))),
            None => {}
        }
        if count.is_some_and(|c| seen.load(Ordering::Relaxed) >= c) {
            return Ok(());
        }
        let left = until.map(|u| u.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return match count {
                Some(_) => Err(fail("timed out")),
                None => Ok(()),
            };
        }
        ctx.poll(Some(
            left.unwrap_or(Duration::from_secs(1))
                .min(Duration::from_millis(200)),
        ))
        .map_err(fail)?;
    }
}

/// Writes one line to stdout; `gone` keeps the first failure, and nothing more is written.
fn print_line(
    gone: &Mutex<Option<std::io::Error>>,
    line: impl FnOnce(&mut std::io::StdoutLock<'_>) -> std::io::Result<()>,
) {
    let mut gone = gone.lock().unwrap();
    if gone.is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = line(&mut out)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        *gone = Some(e);
    }
}

/// The URL `dump` opens for `target`, and whether it listens (rather than receiving on a
/// sender's port or a client's connection): a Unix socket path is bound, as oscdump binds
/// it; a UDP URL sending to a host that is not a multicast group, which would only hear
/// replies on a port chosen at random, is a usage error unless `?local=` names that port.
/// A stream client (TCP, O2lite, OOCSI) receives what its server sends.
fn receiving(target: &str) -> Result<(ChannelUrl, bool), CmdError> {
    let bad = |e: rosco::transport::url::UrlError| usage(&format!("{e}"));
    let unix = target
        .get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("osc.unix:"));
    let mut url = match target.parse::<ChannelUrl>() {
        Ok(url) => url,
        // Refused as a sending URL (`?framing=auto` is for listeners): parsed as the
        // listener dump makes of it.
        Err(e) if unix => format!(
            "{target}{}listen",
            if target.contains('?') { '&' } else { '?' }
        )
        .parse()
        .map_err(|_| bad(e))?,
        Err(e) => return Err(bad(e)),
    };
    let group = match &mut url {
        ChannelUrl::Unix { opts, .. } => {
            opts.listen = true;
            false
        }
        ChannelUrl::Udp {
            host: Some(host),
            port,
            opts,
        } => match is_group(host, *port) {
            false if !matches!(opts.local, Some(p) if p != 0) => {
                return Err(usage(&format!(
                    "{target} sends to {host}: dump listens on osc.udp://:PORT, a multicast \
                     group, or a sending URL's ?local=PORT"
                )))
            }
            true if opts.join == Some(false) => {
                return Err(usage(&format!(
                    "{target} does not join its group (join=0): dump receives a group by \
                     joining it"
                )))
            }
            group => group,
        },
        _ => false,
    };
    let listening = url.is_listener() || group;
    Ok((url, listening))
}

/// Whether `host` is a multicast group, or a name for one (a name that does not resolve
/// is let through: opening the channel says why).
fn is_group(host: &rosco::transport::url::Host, port: u16) -> bool {
    use std::net::ToSocketAddrs;
    match host.ip() {
        Some(ip) => ip.is_multicast(),
        None => (host.to_string(), port)
            .to_socket_addrs()
            .map_or(true, |mut addrs| addrs.any(|a| a.ip().is_multicast())),
    }
}

/// True for what reads as a number (a port out of range), not as a URL.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// With `envelope` (`--packet-control`), the packet inside the envelope `raw` is, or
/// nothing (said so on stderr); without, `raw` as it is.
fn opened(envelope: bool, raw: &[u8]) -> Option<&[u8]> {
    match envelope {
        true => crate::open_envelope(raw)
            .map_err(|e| eprintln!("rosco: refused packet: {e}"))
            .ok(),
        false => Some(raw),
    }
}

pub(crate) fn send(args: &[String]) -> CmdResult {
    let (opts, rest) = split_flags(
        args,
        &["--tcp-framing", "--at", "--raw", "--address-code"],
        &["--packet-control"],
    )?;
    let (mut framing, mut at, mut raw, mut envelope) = (None, None, None, false);
    let mut encode = osc::EncodeOptions::default();
    for (name, value) in opts {
        match (name, value) {
            ("--address-code", Some(spec)) => crate::address_code(&mut encode.addresses, spec)?,
            ("--packet-control", _) => envelope = true,
            ("--tcp-framing", Some("slip")) => framing = Some(StreamFraming::Slip),
            ("--tcp-framing", Some("slip-single")) => framing = Some(StreamFraming::SlipSingleEnd),
            ("--tcp-framing", Some("length")) => framing = Some(StreamFraming::Length),
            ("--tcp-framing", Some(other)) => {
                return Err(usage(&format!(
                    "--tcp-framing is slip, slip-single or length, not '{other}'"
                )))
            }
            ("--at", Some(v)) => at = Some(timetag_after(v)?),
            ("--raw", Some(v)) => {
                raw = Some(oscargs::hex_bytes(v).ok_or_else(|| usage("--raw needs hex bytes"))?)
            }
            _ => unreachable!("split_flags knows these"),
        }
    }
    let (first, message) = rest
        .split_first()
        .ok_or_else(|| usage("send needs a URL"))?;
    // oscsend's forms too: `HOST PORT` (UDP) and `-` (the bytes on standard output).
    let port = message
        .first()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let (url, message) = match port {
        _ if first == "-" => (None, message),
        Some(port) if !first.contains("://") => {
            let port: u16 = port
                .parse()
                .map_err(|_| usage(&format!("port {port} is out of range (1 to 65535)")))?;
            let host = match first.contains(':') && !first.starts_with('[') {
                true => format!("[{first}]"),
                false => first.clone(),
            };
            (Some(format!("osc.udp://{host}:{port}")), &message[1..])
        }
        _ => (Some(first.clone()), message),
    };
    let mut url: Option<ChannelUrl> = match url {
        Some(url) => Some(url.parse().map_err(|e| usage(&format!("{e}")))?),
        None => None,
    };
    if let Some(url) = url.as_ref().filter(|u| u.is_listener()) {
        return Err(usage(&format!(
            "{url} listens: send needs a URL with a host (or a Unix path without ?listen)"
        )));
    }
    // A group is sent to without joining it, as oscsend does: its port may be held by a
    // receiver that does not share it (oscdump -L). A group's address only: a name is
    // not resolved twice for it (`?join=0` says so for a name).
    if let Some(ChannelUrl::Udp {
        host: Some(host),
        opts,
        ..
    }) = &mut url
    {
        if opts.join.is_none() && host.is_multicast() {
            opts.join = Some(false);
        }
    }
    match (framing, &mut url) {
        (None, _) => {}
        (Some(_), None) => return Err(usage("--tcp-framing needs a URL, not -")),
        (Some(f), Some(ChannelUrl::Tcp { opts, .. })) => opts.framing = Some(f),
        (Some(f), Some(ChannelUrl::Unix { opts, .. })) if opts.stream => opts.framing = Some(f),
        (Some(_), _) => {
            return Err(usage(
                "--tcp-framing is for osc.tcp and osc.unix ?stream URLs (datagrams: ?framing=)",
            ))
        }
    }
    let packet = match raw {
        Some(_) if at.is_some() => {
            return Err(usage("--at times ADDRESS's message, not --raw bytes"))
        }
        Some(_) if encode.addresses.is_some() => {
            return Err(usage(
                "--address-code applies to ADDRESS, not to --raw bytes",
            ))
        }
        Some(bytes) if message.is_empty() => bytes,
        Some(_) => return Err(usage("--raw takes no ADDRESS")),
        None => build(message, at, &encode)?,
    };
    let packet = match envelope {
        true => crate::seal_envelope(&packet)?,
        false => packet,
    };
    let Some(url) = url else {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(&packet)
            .and_then(|()| out.flush())
            .map_err(fail);
    };
    let options = ContextOptions {
        reconnect: Reconnect {
            enabled: false,
            ..Reconnect::default()
        },
        ..ContextOptions::default()
    };
    let ctx = Context::new(options).map_err(fail)?;
    // A stream client that cannot connect says why in its `GaveUp` event.
    let gave_up: Arc<Mutex<Option<String>>> = Arc::default();
    let g = gave_up.clone();
    ctx.set_event_callback(Some(move |e: &Event| {
        if let Event::GaveUp { reason, .. } = e {
            *g.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        }
    }));
    let id = ctx.open("send", &url.to_string()).map_err(fail)?;
    let sent = ctx.send_packet(id, &packet);
    sent.and_then(|()| ctx.flush(id, Duration::from_secs(5)))
        .map_err(|e| {
            // A connection that failed at once is reported on the context's next turn.
            let _ = ctx.poll(Some(Duration::ZERO));
            let why = gave_up.lock().unwrap_or_else(|e| e.into_inner()).take();
            fail(format!(
                "cannot deliver to {url}: {}",
                why.unwrap_or_else(|| e.to_string())
            ))
        })
}

/// The message, or a bundle holding it timed `at`.
fn build(
    message: &[String],
    at: Option<TimeTag>,
    opts: &osc::EncodeOptions,
) -> Result<Vec<u8>, CmdError> {
    let (address, rest) = message
        .split_first()
        .ok_or_else(|| usage("send needs an ADDRESS (or --raw HEX)"))?;
    let (types, values) = rest
        .split_first()
        .map_or(("", &[][..]), |(t, v)| (t.as_str(), v));
    let owned = oscargs::parse(types, values).map_err(|e| (2, e))?;
    let args: Vec<_> = owned.iter().map(OwnedArg::as_arg).collect();
    let mut buf = Vec::new();
    let mut w = PacketWriter::with_options(&mut buf, opts);
    let written = match at {
        Some(at) => w
            .begin_bundle(at)
            .and_then(|()| w.message(address, &args))
            .and_then(|()| w.end_bundle()),
        None => w.message(address, &args),
    };
    written.map_err(|e| (2, e.to_string()))?;
    Ok(buf)
}
