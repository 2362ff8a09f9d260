// Shared by the runtime's integration tests, which `include!` this file.

/// Contexts, and what they report, for the tests.
#[allow(dead_code)] // each test file uses a part
mod contexts {
    use rosco::dispatch::{Flow, MsgInfo};
    use rosco::osc::Message;
    use rosco::runtime::Event;
    use rosco::{ChannelId, Context, ContextOptions, Mode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// A context in `mode`, with the default options.
    pub(crate) fn context(mode: Mode) -> Context {
        Context::new(ContextOptions {
            mode,
            ..ContextOptions::default()
        })
        .unwrap()
    }

    /// A UDP listener "rx" on loopback and a sender "tx" to it.
    pub(crate) fn udp_pair(ctx: &Context) -> (ChannelId, ChannelId) {
        let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
        let to = format!("osc.udp://127.0.0.1:{}", ctx.port(rx).unwrap());
        (rx, ctx.open("tx", &to).unwrap())
    }

    /// Every event a context reported, in order.
    pub(crate) type Events = Arc<Mutex<Vec<Event>>>;

    /// Counts the messages to `address` that reach `ctx`'s methods.
    pub(crate) fn counter(ctx: &Context, address: &str) -> Arc<AtomicUsize> {
        let n = Arc::new(AtomicUsize::new(0));
        let c = n.clone();
        ctx.methods()
            .add_method(Some(address), None, move |_: &Message<'_>, _: &MsgInfo| {
                c.fetch_add(1, Ordering::Relaxed);
                Flow::Handled
            })
            .unwrap();
        n
    }

    /// How many of the recorded events `pred` picks.
    pub(crate) fn count(events: &Events, pred: impl Fn(&Event) -> bool) -> usize {
        events.lock().unwrap().iter().filter(|e| pred(e)).count()
    }

    /// Records the events `ctx` reports from now on.
    pub(crate) fn events(ctx: &Context) -> Events {
        let seen = Events::default();
        let s = seen.clone();
        ctx.set_event_callback(Some(move |e: &Event| s.lock().unwrap().push(e.clone())));
        seen
    }
}
