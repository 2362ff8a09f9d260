// Shared by the runtime's integration tests, which `include!` this file.

/// Contexts, and what they report, for the tests.
#[allow(dead_code)] // each test file uses a part
mod contexts {
    use rosco::runtime::Event;
    use rosco::{Context, ContextOptions, Mode};
    use std::sync::{Arc, Mutex};

    /// A context in `mode`, with the default options.
    pub(crate) fn context(mode: Mode) -> Context {
        Context::new(ContextOptions {
            mode,
            ..ContextOptions::default()
        })
        .unwrap()
    }

    /// Every event a context reported, in order.
    pub(crate) type Events = Arc<Mutex<Vec<Event>>>;

    /// Records the events `ctx` reports from now on.
    pub(crate) fn events(ctx: &Context) -> Events {
        let seen = Events::default();
        let s = seen.clone();
        ctx.set_event_callback(Some(move |e: &Event| s.lock().unwrap().push(e.clone())));
        seen
    }
}
