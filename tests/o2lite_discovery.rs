//! Real mDNS discovery of O2 hosts inside Linux network namespaces.
//!
//! The `netns_*` tests need root and iproute2. Each creates its namespace(s), runs this
//! same test binary again inside them (`ip netns exec NS <this binary> --exact ROLE
//! --ignored`) to execute one `#[ignore]`d `role_*` test, and deletes the namespaces
//! afterwards, also when the test fails. Without root or without `ip netns` they print
//! `SKIPPED` and pass; with `ROSCO_REQUIRE_NETNS=1` (CI, which runs as root) a skip is a
//! failure instead.
//!
//! A `role_*` test does nothing unless `ROSCO_NETNS_ROLE` names it, so
//! `cargo test -- --ignored` never advertises anything on the real network.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rosco::o2lite::discovery::{local_ipv4, Advertisement, Browser, O2ProcName};

const ROLE_ENV: &str = "ROSCO_NETNS_ROLE";
const ENSEMBLE: &str = "rosco-test";
/// Generous: discovery takes about a second (mDNS probing), CI machines are slow.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------
// Outer side: namespaces and child processes.

/// A network namespace, deleted on drop (which also deletes its veth ends).
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Result<Netns, String> {
        let name = format!("rosco-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        Ok(Netns { name })
    }

    /// Runs `ip -n NAME ARGS…`.
    fn ip(&self, args: &[&str]) -> Result<String, String> {
        ip(&[&["-n", self.name.as_str()], args].concat())
    }

    /// Waits until `dev` is operationally up (carrier on). `mdns-sd` skips interfaces
    /// that are not, and looks again only every 5 s.
    fn wait_until_up(&self, dev: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self
                .ip(&["-o", "link", "show", "dev", dev])?
                .contains("state UP")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{dev} in {} did not come up", self.name));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// A command running this test binary's `role` test inside the namespace.
    fn role(&self, role: &str) -> Command {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(exe)
            .args([
                "--exact",
                role,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, role);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!("`ip {}` failed: {}", args.join(" "), err.trim()))
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1)) // effective uid
        == Some("0")
}

/// Creates namespaces with `setup`, or explains why the test is skipped (`None`).
fn namespaces<T>(test: &str, setup: impl FnOnce() -> Result<T, String>) -> Option<T> {
    let why = if is_root() {
        match setup() {
            Ok(t) => return Some(t),
            Err(e) => format!("cannot set up network namespaces: {e}"),
        }
    } else {
        "needs root (ip netns)".to_owned()
    };
    if std::env::var("ROSCO_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// Checks that a role ran and passed, and shows its output.
fn assert_role_passed(role: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- {role} stdout:\n{stdout}--- {role} stderr:\n{stderr}---");
    assert!(out.status.success(), "{role} failed: {}", out.status);
    // Guards against a filter that matched nothing (0 tests run also "succeeds").
    assert!(stdout.contains("1 passed"), "{role} did not run");
}

/// One namespace whose only interface is `lo`, with multicast enabled on it and a
/// multicast route.
#[test]
fn netns_loopback_multicast() {
    loopback_only("netns_loopback_multicast", "role_loopback", |ns| {
        ns.ip(&["link", "set", "lo", "up", "multicast", "on"])?;
        ns.ip(&["route", "add", "224.0.0.0/4", "dev", "lo"])
    });
}

/// One namespace whose only interface is `lo`, as it comes (no `MULTICAST` flag, no
/// multicast route), like a container without network.
#[test]
fn netns_loopback_plain() {
    loopback_only("netns_loopback_plain", "role_loopback", |ns| {
        ns.ip(&["link", "set", "lo", "up"])
    });
}

/// The runtime end to end: an `o2lite://ensemble` client with no host given finds the
/// host of its ensemble by DNS-SD (ignoring another ensemble's host), connects,
/// synchronises and exchanges messages.
#[test]
fn netns_runtime_discovery() {
    loopback_only("netns_runtime_discovery", "role_runtime", |ns| {
        ns.ip(&["link", "set", "lo", "up"])
    });
}

/// A discovering client that finds only a host it cannot use says so, in a threaded
/// context too (whose I/O thread wakes only when the client is due to look again).
#[test]
fn netns_runtime_refused_only() {
    loopback_only("netns_runtime_refused_only", "role_refused_only", |ns| {
        ns.ip(&["link", "set", "lo", "up"])
    });
}

/// Runs `role` in a new namespace of its own, set up by `setup`.
fn loopback_only(test: &str, role: &str, setup: impl FnOnce(&Netns) -> Result<String, String>) {
    let Some(ns) = namespaces(test, || {
        let ns = Netns::new(test)?;
        setup(&ns)?;
        Ok(ns)
    }) else {
        return;
    };
    let out = ns.role(role).output().expect("ip netns exec");
    assert_role_passed(role, &out);
}

/// Host and client in two namespaces joined by a veth pair, as on a LAN.
#[test]
fn netns_veth_pair() {
    let Some((host_ns, client_ns)) = namespaces("netns_veth_pair", || {
        let (h, c) = (Netns::new("host")?, Netns::new("client")?);
        // Named per process, like the namespaces (at most 15 characters).
        let pid = std::process::id();
        let (hdev, cdev) = (format!("o2h{pid}"), format!("o2c{pid}"));
        ip(&[
            "link", "add", &hdev, "netns", &h.name, "type", "veth", "peer", "name", &cdev, "netns",
            &c.name,
        ])?;
        for (ns, dev, addr) in [(&h, &hdev, "10.77.0.1/24"), (&c, &cdev, "10.77.0.2/24")] {
            ns.ip(&["link", "set", "lo", "up"])?;
            ns.ip(&["addr", "add", addr, "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        // A default route, as a LAN host has: `local_ipv4` must pick the veth address.
        h.ip(&["route", "add", "default", "dev", &hdev])?;
        h.wait_until_up(&hdev)?;
        c.wait_until_up(&cdev)?;
        Ok((h, c))
    }) else {
        return;
    };

    let mut host = host_ns
        .role("role_veth_host")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec");
    // The host prints its O2 name once it advertises; read its output on a thread so
    // that a stuck host cannot hang the test.
    let (lines_tx, lines) = mpsc::channel();
    let stdout = host.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut host_stdout = String::new();
    let deadline = Instant::now() + 3 * WAIT;
    let advertised = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                host_stdout += &line;
                host_stdout.push('\n');
                if let Some((_, name)) = line.split_once("ADVERTISING ") {
                    break Some(name.trim().to_owned());
                }
            }
            Err(_) => break None,
        }
    };
    let Some(advertised) = advertised else {
        let _ = host.kill();
        let out = finish(host, reader, lines, host_stdout);
        assert_role_passed("role_veth_host", &out);
        panic!("role_veth_host never advertised");
    };
    assert_eq!(advertised, "@00000000:0a4d0001:9d95:9d96");

    let client = client_ns
        .role("role_veth_client")
        .env("ROSCO_EXPECT_NAME", &advertised)
        .output()
        .expect("ip netns exec");
    let host = finish(host, reader, lines, host_stdout);
    assert_role_passed("role_veth_client", &client);
    assert_role_passed("role_veth_host", &host);
}

/// Ends a role that runs until end-of-input and collects its output.
fn finish(
    mut child: Child,
    reader: thread::JoinHandle<()>,
    lines: mpsc::Receiver<String>,
    mut stdout: String,
) -> Output {
    drop(child.stdin.take());
    let _ = reader.join();
    for line in lines.try_iter() {
        stdout += &line;
        stdout.push('\n');
    }
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    let status = child.wait().expect("wait for role");
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr,
    }
}

// ---------------------------------------------------------------------------------
// Inner side: roles run inside a namespace.

/// Whether this process was started to play `role` (see the module docs).
fn playing(role: &str) -> bool {
    let yes = std::env::var(ROLE_ENV).as_deref() == Ok(role);
    if !yes {
        eprintln!("{role} runs only inside a namespace set up by a netns_* test");
    }
    yes
}

fn local_name(tcp_port: u16, udp_port: u16) -> O2ProcName {
    O2ProcName::local(tcp_port, udp_port)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[test]
#[ignore = "role of netns_loopback_*"]
fn role_loopback() {
    if !playing("role_loopback") {
        return;
    }
    assert_eq!(local_ipv4(), Ipv4Addr::LOCALHOST, "only lo here");

    // Hosts: ours, another ensemble, and one whose name merely starts with ours.
    let t0 = Instant::now();
    let host = Advertisement::start(ENSEMBLE, &local_name(40001, 40002)).unwrap();
    let _other = Advertisement::start("other-ens", &local_name(40011, 40012)).unwrap();
    let _prefixed = Advertisement::start("rosco-test2", &local_name(40021, 40022)).unwrap();

    let browser = Browser::start(ENSEMBLE).unwrap();
    let c = browser.next(WAIT).expect("rosco-test not found");
    eprintln!("TIMING first candidate {:?} after start", t0.elapsed());
    assert_eq!(c.instance, ENSEMBLE);
    assert_eq!(c.tcp, loopback(40001));
    assert_eq!(c.udp, loopback(40002));
    assert_eq!(c.version, (2, 0, 1));
    assert_eq!(c.name.to_txt(), "@00000000:7f000001:9c41:9c42");

    // The other two are on the air: browsers for their ensembles see them.
    for (ens, port) in [("other-ens", 40011), ("rosco-test2", 40021)] {
        let b = Browser::start(ens).unwrap();
        let o = b.next(WAIT).unwrap_or_else(|| panic!("{ens} not found"));
        assert_eq!((o.instance.as_str(), o.tcp.port()), (ens, port));
    }
    // … but not to ours, and ours is reported once.
    assert_eq!(browser.next(Duration::from_secs(2)), None);

    // The host goes away and comes back on other ports; re-browsing finds it.
    drop(host);
    let host = Advertisement::start(ENSEMBLE, &local_name(40101, 40102)).unwrap();
    let t1 = Instant::now();
    browser.restart().unwrap();
    let c = browser.next(WAIT).expect("restarted host not found");
    eprintln!("TIMING after restart {:?}", t1.elapsed());
    assert_eq!(c.instance, ENSEMBLE);
    assert_eq!((c.tcp, c.udp), (loopback(40101), loopback(40102)));

    // A second host of the same ensemble appears while browsing: it gets a collision
    // suffix and is reported without a restart.
    let t2 = Instant::now();
    let _second = Advertisement::start(ENSEMBLE, &local_name(40201, 40202)).unwrap();
    let c = browser.next(WAIT).expect("second host not found");
    eprintln!(
        "TIMING second host {:?} (instance {:?})",
        t2.elapsed(),
        c.instance
    );
    assert_eq!(c.instance, "rosco-test (2)");
    assert_eq!((c.tcp, c.udp), (loopback(40201), loopback(40202)));
    assert_eq!(browser.try_next(), None);
    drop(host);
}

#[test]
#[ignore = "role of netns_veth_pair"]
fn role_veth_host() {
    if !playing("role_veth_host") {
        return;
    }
    assert_eq!(local_ipv4(), Ipv4Addr::new(10, 77, 0, 1));
    let name = local_name(40341, 40342);
    let _ad = Advertisement::start(ENSEMBLE, &name).unwrap();
    println!("\nADVERTISING {name}");
    // Advertise until the outer test closes our input.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

#[test]
#[ignore = "role of netns_veth_pair"]
fn role_veth_client() {
    if !playing("role_veth_client") {
        return;
    }
    let expected = std::env::var("ROSCO_EXPECT_NAME").unwrap();
    let t0 = Instant::now();
    let browser = Browser::start(ENSEMBLE).unwrap();
    let c = browser.next(WAIT).expect("host not found over veth");
    eprintln!("TIMING over veth {:?}", t0.elapsed());
    assert_eq!(c.instance, ENSEMBLE);
    assert_eq!(c.name.to_txt(), expected);
    assert_eq!(c.tcp, "10.77.0.1:40341".parse().unwrap());
    assert_eq!(c.udp, "10.77.0.1:40342".parse().unwrap());
}

#[test]
#[ignore = "role of netns_runtime_discovery"]
fn role_runtime() {
    use rosco::dispatch::Flow;
    use rosco::o2lite::client::ClientEvent;
    use rosco::runtime::Event;
    use rosco::{Context, ContextOptions, Mode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    if !playing("role_runtime") {
        return;
    }
    let threaded = || {
        Context::new(ContextOptions {
            mode: Mode::Threaded,
            ..ContextOptions::default()
        })
        .unwrap()
    };
    // A host of another ensemble, advertised first: it must be ignored.
    let other = threaded();
    let other_ch = other.open("host", "o2lite-host://other-ens").unwrap();
    other.o2_service_add(other_ch, "server").unwrap();
    let wrong = Arc::new(AtomicUsize::new(0));
    let w = wrong.clone();
    other
        .methods()
        .add_method(None, None, move |_, _| {
            w.fetch_add(1, Ordering::Relaxed);
            Flow::Handled
        })
        .unwrap();
    // A host of the ensemble that gives no address a client can reach: refused, and the
    // client says so in its log.
    let unreachable = O2ProcName {
        public_ip: Ipv4Addr::UNSPECIFIED,
        internal_ip: Ipv4Addr::UNSPECIFIED,
        tcp_port: 40301,
        udp_port: 40302,
    };
    let _unreachable = Advertisement::start(ENSEMBLE, &unreachable).unwrap();
    let host = threaded();
    let host_ch = host
        .open("host", &format!("o2lite-host://{ENSEMBLE}"))
        .unwrap();
    host.o2_service_add(host_ch, "server").unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    host.methods()
        .add_method(Some("/server/hello"), Some("i"), move |_, _| {
            g.fetch_add(1, Ordering::Relaxed);
            Flow::Handled
        })
        .unwrap();

    let client = Context::new(ContextOptions::default()).unwrap();
    let synced = Arc::new(AtomicUsize::new(0));
    let s = synced.clone();
    let discovered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let d = discovered.clone();
    client.set_event_callback(Some(move |e: &Event| match e {
        Event::O2Client {
            event: ClientEvent::Synced { .. },
            ..
        } => {
            s.fetch_add(1, Ordering::Relaxed);
        }
        Event::O2Client {
            event: ClientEvent::Discovered { tcp, .. },
            ..
        } => d.lock().unwrap().push(tcp.port()),
        _ => {}
    }));
    let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let w = warnings.clone();
    client.set_log_callback(
        rosco::runtime::LogLevel::Warn,
        Some(move |_, line: &str| w.lock().unwrap().push(line.to_string())),
    );
    let started = Instant::now();
    let ch = client.open("o2", &format!("o2lite://{ENSEMBLE}")).unwrap();
    while synced.load(Ordering::Relaxed) == 0 && started.elapsed() < WAIT {
        client.poll(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(
        synced.load(Ordering::Relaxed),
        1,
        "the client found, joined and synchronised with its host"
    );
    assert_eq!(
        *discovered.lock().unwrap(),
        [host.port(host_ch).unwrap()],
        "one host discovered, the right one"
    );
    eprintln!(
        "discovered, connected and synchronised in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    client
        .o2_send(ch, 0.0, true, "/server/hello", &[rosco::osc::Arg::Int(1)])
        .unwrap();
    while got.load(Ordering::Relaxed) == 0 && started.elapsed() < WAIT {
        client.poll(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(
        got.load(Ordering::Relaxed),
        1,
        "the message reached the right host"
    );
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "the other ensemble's host heard nothing"
    );
    let refused = |w: &[String]| {
        w.iter()
            .filter(|l| l.contains("@00000000:00000000:9d6d:9d6e\" gives no reachable address"))
            .count()
    };
    while refused(&warnings.lock().unwrap()) == 0 && started.elapsed() < WAIT {
        client.poll(Some(Duration::from_millis(10))).unwrap();
    }
    let warnings = warnings.lock().unwrap().clone();
    assert_eq!(
        refused(&warnings),
        1,
        "the unreachable host is reported once: {warnings:?}"
    );
}

#[test]
#[ignore = "role of netns_runtime_refused_only"]
fn role_refused_only() {
    use rosco::runtime::LogLevel;
    use rosco::{Context, ContextOptions, Mode};
    use std::sync::{Arc, Mutex};
    if !playing("role_refused_only") {
        return;
    }
    let unreachable = O2ProcName {
        public_ip: Ipv4Addr::UNSPECIFIED,
        internal_ip: Ipv4Addr::UNSPECIFIED,
        tcp_port: 40401,
        udp_port: 40402,
    };
    let _ad = Advertisement::start(ENSEMBLE, &unreachable).unwrap();
    let client = Context::new(ContextOptions {
        mode: Mode::Threaded,
        ..ContextOptions::default()
    })
    .unwrap();
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w = warnings.clone();
    client.set_log_callback(
        LogLevel::Warn,
        Some(move |_, line: &str| w.lock().unwrap().push(line.to_string())),
    );
    client.open("o2", &format!("o2lite://{ENSEMBLE}")).unwrap();
    let refused = |w: &[String]| {
        w.iter()
            .filter(|l| l.contains("no reachable address"))
            .count()
    };
    let started = Instant::now();
    while refused(&warnings.lock().unwrap()) == 0 && started.elapsed() < WAIT {
        thread::sleep(Duration::from_millis(10));
    }
    let warnings = warnings.lock().unwrap().clone();
    assert_eq!(refused(&warnings), 1, "{warnings:?}");
}
