//! `rosco o2lite host` and `rosco o2lite client`: an O2lite host or client that prints what
//! happens (connections, clock sync, messages), and can send a message; test peers.

use crate::netcmd::{deadline, fail, seconds, split_flags, timeout as timeout_arg, usage};
use crate::oscargs;
use crate::CmdResult;
use rosco::dispatch::Flow;
use rosco::o2lite::client::ClientEvent;
use rosco::osc::{OwnedArg, Text};
use rosco::runtime::Event;
use rosco::{Context, ContextOptions, Mode};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn run(args: &[String]) -> CmdResult {
    match args.first().map(String::as_str) {
        Some("host") => host(&args[1..]),
        Some("client") => client(&args[1..]),
        _ => Err(usage("o2lite needs 'host' or 'client'")),
    }
}

/// A context printing O2 events and every message to its services, with the count of
/// messages printed and whether the client is synchronised.
type Printing = (Context, Arc<AtomicU64>, Arc<AtomicBool>);

fn printing_context() -> Result<Printing, crate::CmdError> {
    let ctx = Context::new(ContextOptions {
        mode: Mode::Poll,
        ..ContextOptions::default()
    })
    .map_err(fail)?;
    let synced = Arc::new(AtomicBool::new(false));
    let s = synced.clone();
    ctx.set_event_callback(Some(move |e: &Event| {
        let line = match e {
            Event::O2Client { event, .. } => {
                if let ClientEvent::Synced { .. } = event {
                    s.store(true, Ordering::Relaxed);
                }
                format!("{event:?}")
            }
            Event::O2Host { event, .. } => format!("{event:?}"),
            Event::Connected { peer, .. } => format!(
                "connected {}",
                peer.map_or(String::new(), |p| p.to_string())
            ),
            Event::Disconnected { reason, .. } => format!("disconnected: {reason}"),
            Event::Reconnecting {
                attempt,
                delay,
                reason,
                ..
            } => format!(
                "reconnecting (attempt {attempt}) in {} ms: {reason}",
                delay.as_millis()
            ),
            Event::Malformed { reason, .. } => format!("malformed: {reason}"),
            other => format!("{other:?}"),
        };
        eprintln!("rosco: {line}");
    }));
    let seen = Arc::new(AtomicU64::new(0));
    let n = seen.clone();
    ctx.methods()
        .add_method(None, None, move |m, info| {
            let o2 = info.o2.map_or(String::new(), |o| {
                format!(
                    " (timestamp {:.6}, {})",
                    o.timestamp,
                    if o.reliable { "tcp" } else { "udp" }
                )
            });
            let mut out = std::io::stdout().lock();
            let _ = Text(m).write_raw(&mut out);
            let _ = writeln!(out, "{o2}");
            let _ = out.flush();
            n.fetch_add(1, Ordering::Relaxed);
            Flow::Handled
        })
        .map_err(fail)?;
    Ok((ctx, seen, synced))
}

/// Polls until `done`, `count` messages, or the timeout.
fn run_until(
    ctx: &Context,
    seen: &AtomicU64,
    count: Option<u64>,
    timeout: Option<Duration>,
    mut done: impl FnMut() -> bool,
) -> CmdResult {
    let until = deadline(timeout);
    loop {
        if done() || count.is_some_and(|c| seen.load(Ordering::Relaxed) >= c) {
            return Ok(());
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            return match count {
                Some(_) => Err(fail("timed out")),
                None => Ok(()),
            };
        }
        ctx.poll(Some(Duration::from_millis(20))).map_err(fail)?;
    }
}

fn host(args: &[String]) -> CmdResult {
    let (opts, rest) = split_flags(
        args,
        &["--port", "--udp-port", "--service", "--count", "--timeout"],
        &["--no-mdns"],
    )?;
    let [ensemble] = rest else {
        return Err(usage("o2lite host needs an ENSEMBLE"));
    };
    let (mut port, mut udp, mut services, mut count, mut timeout, mut mdns) =
        (0u16, 0u16, Vec::new(), None, None, 1);
    for (name, value) in opts {
        let v = value.unwrap_or_default();
        match name {
            "--port" => port = v.parse().map_err(|_| usage("--port needs a port number"))?,
            "--udp-port" => {
                udp = v
                    .parse()
                    .map_err(|_| usage("--udp-port needs a port number"))?
            }
            "--service" => services.push(v),
            "--count" => {
                count = Some(
                    v.parse()
                        .map_err(|_| usage("--count needs a whole number"))?,
                )
            }
            "--no-mdns" => mdns = 0,
            _ => timeout = Some(timeout_arg(v)?),
        }
    }
    let (ctx, seen, _) = printing_context()?;
    let url = format!("o2lite-host://{ensemble}:{port}?udp_port={udp}&mdns={mdns}");
    let ch = ctx.open("host", &url).map_err(fail)?;
    for s in services {
        ctx.o2_service_add(ch, s).map_err(fail)?;
    }
    eprintln!(
        "rosco: O2lite host for '{ensemble}' on TCP port {} and UDP port {}",
        ctx.port(ch).map_err(fail)?,
        ctx.o2_udp_port(ch).map_err(fail)?
    );
    run_until(&ctx, &seen, count, timeout, || false)
}

fn client(args: &[String]) -> CmdResult {
    let flags = ["--host", "--service", "--count", "--timeout", "--at"];
    let (opts, rest) = split_flags(args, &flags, &["--udp"])?;
    let (ensemble, message) = rest
        .split_first()
        .ok_or_else(|| usage("o2lite client needs an ENSEMBLE"))?;
    let (mut host, mut services, mut count, mut timeout, mut at, mut reliable) =
        (None, Vec::new(), None, None, None, true);
    for (name, value) in opts {
        let v = value.unwrap_or_default();
        match name {
            "--host" => host = Some(v),
            "--service" => services.push(v),
            "--count" => {
                count = Some(
                    v.parse()
                        .map_err(|_| usage("--count needs a whole number"))?,
                )
            }
            "--timeout" => timeout = Some(timeout_arg(v)?),
            "--at" => at = Some(seconds(v)?),
            _ => reliable = false,
        }
    }
    let url = rosco::runtime::o2lite_url(ensemble, host).map_err(|e| usage(&e.to_string()))?;
    let (ctx, seen, synced) = printing_context()?;
    let ch = ctx.open("o2", &url).map_err(fail)?;
    for s in services {
        ctx.o2_service_add(ch, s).map_err(fail)?;
    }
    let Some((address, rest)) = message.split_first() else {
        return run_until(&ctx, &seen, count, timeout, || false);
    };
    let (types, values) = rest
        .split_first()
        .map_or(("", &[][..]), |(t, v)| (t.as_str(), v));
    let owned = oscargs::parse(types, values).map_err(|e| (2, e))?;
    let args: Vec<_> = owned.iter().map(OwnedArg::as_arg).collect();
    // A timestamp needs a synchronised clock; a plain send only a connection.
    let ready = || match at {
        Some(_) => synced.load(Ordering::Relaxed),
        None => ctx.o2_bridge_id(ch).ok().flatten().is_some(),
    };
    run_until(
        &ctx,
        &seen,
        None,
        Some(timeout.unwrap_or(Duration::from_secs(10))),
        ready,
    )?;
    if !ready() {
        return Err(fail("no O2lite host answered"));
    }
    let timestamp = at
        .map_or(Ok(0.0), |d| ctx.o2_time(ch).map(|t| t + d.as_secs_f64()))
        .map_err(fail)?;
    ctx.o2_send(ch, timestamp, reliable, address, &args)
        .map_err(fail)?;
    ctx.flush(ch, Duration::from_secs(5)).map_err(fail)?;
    // Keep printing what comes back, when asked to.
    match count {
        Some(_) => run_until(&ctx, &seen, count, timeout, || false),
        None => Ok(()),
    }
}
