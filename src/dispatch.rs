//! The method table: which callbacks a message reaches, in which order, with which
//! argument types.
//!
//! - Literal method addresses live in a hash map, so a literal incoming address costs one
//!   lookup however many methods there are.
//! - Methods registered with a pattern (liblo 0.32, osc4py3), a regular expression
//!   (feature `regex`) or no address (catch-all) live in a list tried in order.
//! - An incoming pattern address is matched against every literal method, and reaches a
//!   pattern method only when the two pattern strings are identical (specs/osc.md §8).
//! - Matching methods are called in registration order. For a literal address a callback
//!   returning [`Flow::Handled`] ends the delivery (but for subscriptions, which see every
//!   message they match); a pattern address reaches every matching method (liblo's
//!   convention).
//! - A method's type spec filters by argument types, optionally coercing between the
//!   numeric types `i h f d` and between `s` and `S`, as liblo does.
//!
//! The table is locked only to collect the matches; callbacks run unlocked, so they may
//! add and remove methods (themselves included) and dispatch further messages.

use crate::callback_slot::{in_callback, CallbackSlot};
use crate::handle::{ChannelId, Handle, PeerId, Slab};
use crate::osc::{self, Arg, Message, Packet, PacketWriter};
use crate::pattern::{self, AddressPatternError, Pattern};
use crate::time::TimeTag;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What a callback tells the dispatcher (liblo: 0 = handled, non-zero = pass on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The message is handled: for a literal address, later methods are skipped.
    Handled,
    /// Pass the message on to the next matching method.
    PassOn,
}

/// Everything a callback learns about a message besides the message itself.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MsgInfo {
    /// Where the message came from, when it came over IP.
    pub source: Option<SocketAddr>,
    /// The channel it arrived on, if any.
    pub channel: Option<ChannelId>,
    /// The connection it arrived on, for a listening stream channel (to reply to it).
    pub peer: Option<PeerId>,
    /// When the packet was received.
    pub received: TimeTag,
    /// The effective timetag of the enclosing bundle; `None` for a message on its own.
    pub bundle_time: Option<TimeTag>,
    /// For a message that came over O2lite: its O2 timestamp and transport.
    pub o2: Option<O2Stamp>,
}

/// What an O2 message carries besides its address and arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct O2Stamp {
    /// The O2 timestamp: global seconds, 0 for "now".
    pub timestamp: f64,
    /// True when it came by TCP.
    pub reliable: bool,
    /// Its address began with `!`: looked up as it is, never matched as a pattern (spec
    /// §3.3), whatever characters it holds.
    pub literal: bool,
}

impl MsgInfo {
    /// Info for a packet received at `received`.
    pub fn new(received: TimeTag) -> MsgInfo {
        MsgInfo {
            received,
            ..MsgInfo::default()
        }
    }

    /// With the sender's address.
    pub fn with_source(mut self, source: Option<SocketAddr>) -> MsgInfo {
        self.source = source;
        self
    }

    /// With the channel it arrived on.
    pub fn with_channel(mut self, channel: Option<ChannelId>) -> MsgInfo {
        self.channel = channel;
        self
    }

    /// With the stream connection it arrived on.
    pub fn with_peer(mut self, peer: Option<PeerId>) -> MsgInfo {
        self.peer = peer;
        self
    }
}

/// A method callback.
pub type Callback = Box<dyn Fn(&Message<'_>, &MsgInfo) -> Flow + Send + Sync>;

/// Handle of a registered method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodId(pub Handle);

/// Which argument types a method accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSpec {
    /// Any arguments.
    Any,
    /// Exactly these type tags (empty: no arguments).
    Exact(Box<[u8]>),
}

impl TypeSpec {
    /// `None` accepts anything; `Some("")` only messages without arguments; otherwise the
    /// tags must be known and brackets balanced.
    pub fn parse(spec: Option<&str>) -> Result<TypeSpec, MethodError> {
        let Some(spec) = spec else {
            return Ok(TypeSpec::Any);
        };
        let mut depth = 0usize;
        for &tag in spec.as_bytes() {
            // `B` (O2's boolean) is a type spec too: O2 messages carry it.
            if !osc::TypeSet::O2.contains(tag) {
                return Err(MethodError::BadTypeSpec { tag });
            }
            depth = match tag {
                b'[' => depth + 1,
                b']' => depth
                    .checked_sub(1)
                    .ok_or(MethodError::BadTypeSpec { tag })?,
                _ => depth,
            };
        }
        if depth != 0 {
            return Err(MethodError::BadTypeSpec { tag: b'[' });
        }
        Ok(TypeSpec::Exact(spec.as_bytes().into()))
    }

    fn accepts(&self, tags: &[u8], coerce: bool) -> Accept {
        let spec = match self {
            TypeSpec::Any => return Accept::AsIs,
            TypeSpec::Exact(spec) => spec,
        };
        if **spec == *tags {
            Accept::AsIs
        } else if coerce
            && spec.len() == tags.len()
            && spec.iter().zip(tags).all(|(&a, &b)| coercible(a, b))
        {
            Accept::Coerced
        } else {
            Accept::No
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    No,
    AsIs,
    Coerced,
}

fn coercible(to: u8, from: u8) -> bool {
    let numeric = |t| matches!(t, b'i' | b'h' | b'f' | b'd');
    let text = |t| matches!(t, b's' | b'S');
    let boolean = to == b'B' && matches!(from, b'T' | b'F');
    to == from || (numeric(to) && numeric(from)) || (text(to) && text(from)) || boolean
}

/// Converts an argument to the type `to` (which [`coercible`] allows).
fn coerce(arg: Arg<'_>, to: u8) -> Arg<'_> {
    match (to, arg) {
        // A float out of range saturates (and NaN gives 0): through `i64` it wrapped, to
        // the other sign at times. A 64-bit integer keeps its low bits, as liblo's cast.
        (b'i', Arg::Float(v)) => Arg::Int(v as i32),
        (b'i', Arg::Double(v)) => Arg::Int(v as i32),
        (b'i', a) if a.tag() != b'i' => Arg::Int(a.as_i64().unwrap_or(0) as i32),
        (b'h', a) if a.tag() != b'h' => Arg::Long(a.as_i64().unwrap_or(0)),
        // Rounded once, as liblo does (through `f64` a 64-bit integer is rounded twice).
        (b'f', Arg::Long(v)) => Arg::Float(v as f32),
        (b'f', a) if a.tag() != b'f' => Arg::Float(a.as_f64().unwrap_or(0.0) as f32),
        (b'd', a) if a.tag() != b'd' => Arg::Double(a.as_f64().unwrap_or(0.0)),
        (b's', Arg::Symbol(s)) => Arg::Str(s),
        (b'S', Arg::Str(s)) => Arg::Symbol(s),
        (b'B', Arg::True) => Arg::Bool(true),
        (b'B', Arg::False) => Arg::Bool(false),
        (_, a) => a,
    }
}

/// Why a method could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodError {
    /// The address is neither a valid OSC address nor a valid pattern.
    BadAddress(AddressPatternError),
    /// The type spec holds an unknown tag or unbalanced brackets.
    BadTypeSpec {
        /// The offending tag.
        tag: u8,
    },
    /// The regular expression does not compile.
    BadRegex(String),
}

impl fmt::Display for MethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodError::BadAddress(e) => write!(f, "bad method address: {e}"),
            MethodError::BadTypeSpec { tag } => {
                write!(
                    f,
                    "bad type spec: tag {:?} unknown or unbalanced",
                    *tag as char
                )
            }
            MethodError::BadRegex(e) => write!(f, "bad regular expression: {e}"),
        }
    }
}

impl std::error::Error for MethodError {}

/// How a method's address is matched.
enum Route {
    Literal(Box<[u8]>),
    Pattern(Box<[u8]>),
    All,
    #[cfg(feature = "regex")]
    Regex(regex::bytes::Regex),
}

/// A registered method. Shared with in-flight deliveries, so removing it while it runs
/// is safe: the flag stops later calls, and it is freed when the last delivery lets go.
struct Method {
    seq: u64,
    route: Route,
    typespec: TypeSpec,
    callback: Callback,
    alive: AtomicBool,
    /// Sees what its route matches even after a method handled it: a subscription's route.
    /// The routes of one subscription share this key, and a message reaches it once.
    observer: Option<usize>,
}

/// Hashes method addresses for the literal map, a word at a time. Not keyed: the keys are
/// the application's own addresses, so a peer cannot fill the map with colliding ones; it
/// can only look up, and SipHash cost a quarter of a dispatch.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
        let mut last = [0u8; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        self.add(u64::from_le_bytes(last));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl AddressHasher {
    /// The multiply-rotate step of rustc's FxHasher.
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type BuildAddressHasher = BuildHasherDefault<AddressHasher>;

/// The registered methods (no locking; [`Dispatcher`] adds it).
#[derive(Default, Clone)]
struct MethodTable {
    methods: Slab<Arc<Method>>,
    literal: HashMap<Box<[u8]>, Vec<u32>, BuildAddressHasher>,
    /// Pattern, regex and catch-all methods in registration order.
    wild: Vec<u32>,
    /// Every method in registration order (for incoming pattern addresses).
    order: Vec<u32>,
    next_seq: u64,
}

impl MethodTable {
    fn add(
        &mut self,
        route: Route,
        typespec: TypeSpec,
        callback: Callback,
        observer: Option<usize>,
    ) -> MethodId {
        let method = Arc::new(Method {
            seq: self.next_seq,
            route,
            typespec,
            callback,
            alive: AtomicBool::new(true),
            observer,
        });
        self.next_seq += 1;
        let literal = match &method.route {
            Route::Literal(a) => Some(a.clone()),
            _ => None,
        };
        let handle = self.methods.insert(method);
        let index = handle.to_bits() as u32;
        match literal {
            Some(a) => self.literal.entry(a).or_default().push(index),
            None => self.wild.push(index),
        }
        self.order.push(index);
        MethodId(handle)
    }

    /// Takes a method out; the caller drops it (maybe its last reference, which frees
    /// the callback and what it holds) once the table's lock is released.
    fn remove(&mut self, id: MethodId) -> Option<Arc<Method>> {
        let method = self.methods.remove(id.0)?;
        method.alive.store(false, Ordering::Release);
        let index = id.0.to_bits() as u32;
        let unlist = |list: &mut Vec<u32>| list.retain(|&i| i != index);
        unlist(&mut self.order);
        unlist(&mut self.wild);
        self.literal.retain(|_, list| {
            unlist(list);
            !list.is_empty()
        });
        Some(method)
    }

    fn method(&self, index: u32) -> &Arc<Method> {
        self.methods
            .at(index)
            .expect("method lists hold live indexes only")
    }

    /// Collects the methods `address` reaches, in registration order (as a pattern when it
    /// is one, unless `literal`). Returns whether it was taken as literal.
    fn lookup(
        &self,
        address: &[u8],
        literal: bool,
        tags: &[u8],
        coerce: bool,
        out: &mut Vec<(u32, bool)>,
    ) -> bool {
        let mut push = |i: u32, m: &Method| match m.typespec.accepts(tags, coerce) {
            Accept::No => {}
            accept => out.push((i, accept == Accept::Coerced)),
        };
        // A literal method's address has no pattern syntax: found among them, the address
        // needs no scan for it (the scan cost a tenth of a received message's handling).
        let listed = self.literal.get(address);
        if listed.is_none() && !literal && pattern::is_pattern(address) {
            let incoming = Pattern::new(address).ok();
            for &i in &self.order {
                let m = self.method(i);
                if route_matches_pattern(m, address, incoming.as_ref()) {
                    push(i, m);
                }
            }
            return false;
        }
        // Merge the literal list for this address with the wild list, by registration.
        let literal = listed.map_or(&[][..], |v| &v[..]);
        let (mut l, mut w) = (literal.iter().peekable(), self.wild.iter().peekable());
        loop {
            let next = match (l.peek(), w.peek()) {
                (Some(&&a), Some(&&b)) if self.method(a).seq < self.method(b).seq => l.next(),
                (Some(_), None) => l.next(),
                (_, Some(_)) => w.next(),
                (None, None) => break,
            };
            let i = *next.expect("peeked");
            let m = self.method(i);
            let reached = match &m.route {
                Route::Literal(_) | Route::All => true,
                Route::Pattern(p) => Pattern::new(p).is_ok_and(|p| p.matches(address)),
                #[cfg(feature = "regex")]
                Route::Regex(re) => re.is_match(address),
            };
            if reached {
                push(i, m);
            }
        }
        true
    }
}

/// Whether an incoming pattern address reaches a method.
fn route_matches_pattern(m: &Method, address: &[u8], incoming: Option<&Pattern<'_>>) -> bool {
    match &m.route {
        Route::All => true,
        Route::Pattern(p) => **p == *address,
        #[cfg(feature = "regex")]
        Route::Regex(re) => re.is_match(address),
        Route::Literal(a) => incoming.is_some_and(|p| p.matches(a)),
    }
}

/// Reusable state for [`Dispatcher::dispatch`]; keep one per dispatching thread so
/// dispatch allocates nothing once its buffers have grown, and takes no lock while the
/// method table is unchanged.
#[derive(Default)]
pub struct DispatchScratch {
    /// The table as read at `version`, used again while the dispatcher is still there.
    table: Option<Arc<MethodTable>>,
    version: u64,
    /// Indexes into `table` of the methods the message reaches, and whether by coercion.
    matches: Vec<(u32, bool)>,
    coerced: Vec<u8>,
    /// The observer groups the message being dispatched has reached.
    observed: Vec<usize>,
}

impl DispatchScratch {
    /// Lets go of the table kept since the last dispatch, so that methods removed since
    /// are freed. Call it when a run of dispatches is over (before waiting for more).
    pub fn release(&mut self) {
        self.table = None;
    }
}

impl fmt::Debug for DispatchScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchScratch").finish_non_exhaustive()
    }
}

/// Bundle boundary callback: called with the bundle's effective timetag.
pub type BundleCallback = Box<dyn Fn(TimeTag) + Send + Sync>;

/// The method table with its lock and the delivery rules. Shareable between threads.
///
/// Dispatch reads a shared copy of the table: a [`DispatchScratch`] keeps the one it read
/// while `version` says the table has not changed, so dispatch takes no lock and clones
/// nothing per message. A change copies the table first if a dispatch still holds it.
pub struct Dispatcher {
    table: Mutex<Arc<MethodTable>>,
    /// The table's state: a number no other state of any dispatcher's table has had.
    version: AtomicU64,
    no_coercion: AtomicBool,
    bundle_start: CallbackSlot<BundleCallback>,
    bundle_end: CallbackSlot<BundleCallback>,
}

/// Table versions, shared by all dispatchers so that a scratch used with two of them
/// never mistakes one's table for the other's.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher {
            table: Mutex::default(),
            version: AtomicU64::new(next_version()),
            no_coercion: AtomicBool::default(),
            bundle_start: CallbackSlot::default(),
            bundle_end: CallbackSlot::default(),
        }
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("methods", &self.table.lock().methods.len())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// An empty dispatcher with type coercion on (liblo's default).
    pub fn new() -> Dispatcher {
        Dispatcher::default()
    }

    /// Turns coercion between `i h f d` and between `s S` on or off.
    pub fn set_coercion(&self, on: bool) {
        self.no_coercion.store(!on, Ordering::Relaxed);
    }

    /// Registers a method. `address`: a literal address, an OSC pattern, or `None` for a
    /// catch-all. `typespec`: see [`TypeSpec::parse`].
    pub fn add_method(
        &self,
        address: Option<&str>,
        typespec: Option<&str>,
        callback: impl Fn(&Message<'_>, &MsgInfo) -> Flow + Send + Sync + 'static,
    ) -> Result<MethodId, MethodError> {
        self.add_route(address, typespec, Box::new(callback), None)
    }

    /// Registers an observer (what a subscription's routes are): called for every message
    /// its address and type spec match, whatever the methods before it returned, and
    /// never ending the delivery itself. Of the observers sharing a `group`, a message
    /// reaches the first it matches only (one subscription's routes may overlap).
    pub(crate) fn add_observer(
        &self,
        address: Option<&str>,
        typespec: Option<&str>,
        group: usize,
        callback: impl Fn(&Message<'_>, &MsgInfo) + Send + Sync + 'static,
    ) -> Result<MethodId, MethodError> {
        let pass_on = move |m: &Message<'_>, info: &MsgInfo| {
            callback(m, info);
            Flow::PassOn
        };
        self.add_route(address, typespec, Box::new(pass_on), Some(group))
    }

    fn add_route(
        &self,
        address: Option<&str>,
        typespec: Option<&str>,
        callback: Callback,
        observer: Option<usize>,
    ) -> Result<MethodId, MethodError> {
        let typespec = TypeSpec::parse(typespec)?;
        let route = match address {
            None => Route::All,
            Some(a) => {
                pattern::check_address_pattern(a.as_bytes()).map_err(MethodError::BadAddress)?;
                match pattern::is_pattern(a.as_bytes()) {
                    true => Route::Pattern(a.as_bytes().into()),
                    false => Route::Literal(a.as_bytes().into()),
                }
            }
        };
        Ok(self.change(|t| Arc::make_mut(t).add(route, typespec, callback, observer)))
    }

    /// Registers a method whose address filter is a regular expression, matched against
    /// the whole incoming address (osc4py3's `patternkind="re"`).
    #[cfg(feature = "regex")]
    pub fn add_regex_method(
        &self,
        regex: &str,
        typespec: Option<&str>,
        callback: impl Fn(&Message<'_>, &MsgInfo) -> Flow + Send + Sync + 'static,
    ) -> Result<MethodId, MethodError> {
        let typespec = TypeSpec::parse(typespec)?;
        let bad = |e: regex::Error| MethodError::BadRegex(e.to_string());
        // Checked alone first: an unbalanced `)` would otherwise close the anchoring group
        // and match part of an address.
        regex::bytes::Regex::new(regex).map_err(bad)?;
        let re = regex::bytes::Regex::new(&format!("^(?:{regex})$")).map_err(bad)?;
        let callback = Box::new(callback);
        Ok(self.change(|t| Arc::make_mut(t).add(Route::Regex(re), typespec, callback, None)))
    }

    /// Removes a method; false when the handle is stale. Safe from inside any callback.
    pub fn remove_method(&self, id: MethodId) -> bool {
        // Dropped after the lock is released: freeing the callback may run code (a C
        // `user_free`, a captured value's destructor) that adds or removes methods.
        let removed = self.change(|t| Arc::make_mut(t).remove(id));
        removed.is_some()
    }

    /// Removes every method.
    pub fn clear(&self) {
        let old = self.change(|t| {
            for &i in &t.order {
                t.method(i).alive.store(false, Ordering::Release);
            }
            // A new table: no copy of the old one for a dispatch that may hold it. Its
            // handles carry on from the old one's, so no old handle reaches a new method.
            let fresh = MethodTable {
                methods: t.methods.emptied(),
                next_seq: t.next_seq,
                ..MethodTable::default()
            };
            std::mem::replace(t, Arc::new(fresh))
        });
        // As in `remove_method`: the methods go after the lock is released.
        drop(old);
    }

    /// Changes the table (through `Arc::make_mut`, which copies it first if a dispatch
    /// holds it) and gives it a new version.
    fn change<R>(&self, f: impl FnOnce(&mut Arc<MethodTable>) -> R) -> R {
        let mut table = self.table.lock();
        let result = f(&mut table);
        self.version.store(next_version(), Ordering::Release);
        result
    }

    /// The number of registered methods.
    pub fn len(&self) -> usize {
        self.table.lock().methods.len()
    }

    /// True when no method is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the bundle-start and bundle-end callbacks (`None` removes them). Once this
    /// returns the previous ones are not running on any other thread, and will not run
    /// again.
    pub fn set_bundle_callbacks(&self, start: Option<BundleCallback>, end: Option<BundleCallback>) {
        self.bundle_start.set(start.map(Arc::new));
        self.bundle_end.set(end.map(Arc::new));
    }

    /// Returns once calls of the bundle callbacks under way on other threads have ended.
    pub(crate) fn wait_for_bundle_callbacks(&self) {
        self.bundle_start.wait();
        self.bundle_end.wait();
    }

    pub(crate) fn bundle_boundary(&self, start: bool, timetag: TimeTag) {
        let slot = match start {
            true => &self.bundle_start,
            false => &self.bundle_end,
        };
        slot.call(|hook| hook(timetag));
    }

    /// Delivers one message to the methods it reaches; returns how many were called.
    pub fn dispatch(
        &self,
        msg: &Message<'_>,
        info: &MsgInfo,
        scratch: &mut DispatchScratch,
    ) -> usize {
        let address = msg.address();
        let coerce = !self.no_coercion.load(Ordering::Relaxed);
        let version = self.version.load(Ordering::Acquire);
        if scratch.table.is_none() || scratch.version != version {
            // The copy this replaces may hold the last reference to a removed method: it
            // goes after the lock is released (see `remove_method`).
            let previous = {
                let table = self.table.lock();
                scratch.version = self.version.load(Ordering::Relaxed);
                scratch.table.replace(table.clone())
            };
            drop(previous);
        }
        let DispatchScratch {
            table,
            matches,
            coerced: coerce_buf,
            observed,
            ..
        } = scratch;
        observed.clear();
        let table = table.as_deref().expect("read above");
        let as_is = info.o2.is_some_and(|o2| o2.literal);
        let literal = table.lookup(address, as_is, msg.typetags(), coerce, matches);
        // Callbacks may replace other callbacks: marked so that `CallbackSlot::set` does
        // not wait for what may be waiting for this thread.
        in_callback(|| {
            let (mut called, mut handled) = (0, false);
            for (index, coerced) in matches.drain(..) {
                let method = table.method(index);
                // Removed since the table was read (perhaps by a callback just now); or
                // the message is handled, and only observers see it still.
                if !method.alive.load(Ordering::Acquire)
                    || (handled && method.observer.is_none())
                    || method.observer.is_some_and(|g| observed.contains(&g))
                {
                    continue;
                }
                let flow = match coerced {
                    false => (method.callback)(msg, info),
                    true => match coerce_message(msg, &method.typespec, coerce_buf) {
                        Some(m) => (method.callback)(&m, info),
                        None => continue,
                    },
                };
                called += 1;
                handled |= literal && flow == Flow::Handled;
                observed.extend(method.observer);
            }
            called
        })
    }
}

static O2_DECODE: osc::DecodeOptions = osc::DecodeOptions {
    allowed_types: osc::TypeSet::O2,
    ..osc::DecodeOptions::DEFAULT
};

/// Re-encodes `msg` with the method's type spec into `buf` and returns a view of it.
fn coerce_message<'b>(
    msg: &Message<'_>,
    spec: &TypeSpec,
    buf: &'b mut Vec<u8>,
) -> Option<Message<'b>> {
    let TypeSpec::Exact(tags) = spec else {
        return None;
    };
    let args = msg.args().zip(tags.iter()).map(|(a, &t)| coerce(a, t));
    rewrite(msg.address(), args, buf)
}

/// Writes a message into `buf` and returns a view of it. O2-aware: the message may carry
/// `B` (it may have come over O2lite).
pub(crate) fn rewrite<'b, 'a>(
    address: &[u8],
    args: impl Iterator<Item = Arg<'a>> + Clone,
    buf: &'b mut Vec<u8>,
) -> Option<Message<'b>> {
    PacketWriter::with_options(buf, &osc::O2_ENCODE)
        .message_iter(address, args)
        .ok()?;
    rewritten(buf)
}

/// The message [`rewrite`] wrote into `buf`.
pub(crate) fn rewritten(buf: &[u8]) -> Option<Message<'_>> {
    match osc::decode_with(buf, &O2_DECODE).ok()? {
        Packet::Message(m) => Some(m),
        Packet::Bundle(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osc::encode_message;
    use std::sync::Mutex as StdMutex;

    /// Adds and removes a method on `dispatcher` when dropped, as a C `user_free` or a
    /// captured value's destructor may.
    struct TouchesTheTableOnDrop(std::sync::Weak<Dispatcher>);

    impl Drop for TouchesTheTableOnDrop {
        fn drop(&mut self) {
            if let Some(d) = self.0.upgrade() {
                let id = d
                    .add_method(Some("/other"), None, |_, _| Flow::Handled)
                    .unwrap();
                assert!(d.remove_method(id));
            }
        }
    }

    #[test]
    fn freeing_a_removed_callback_may_change_the_table() {
        let d = Arc::new(Dispatcher::new());
        let guard = TouchesTheTableOnDrop(Arc::downgrade(&d));
        let id = d
            .add_method(Some("/a"), None, move |_, _| {
                let _ = &guard;
                Flow::Handled
            })
            .unwrap();
        let guard = TouchesTheTableOnDrop(Arc::downgrade(&d));
        d.add_method(None, None, move |_, _| {
            let _ = &guard;
            Flow::Handled
        })
        .unwrap();
        // On another thread, so that a deadlock fails the test instead of hanging it.
        let (done, finished) = std::sync::mpsc::channel();
        let d2 = d.clone();
        std::thread::spawn(move || {
            assert!(d2.remove_method(id));
            d2.clear();
            done.send(d2.len()).unwrap();
        });
        let left = finished
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("removing a method deadlocked on its own table");
        assert_eq!(left, 0);
    }

    type Log = Arc<StdMutex<Vec<String>>>;

    fn logger(
        log: &Log,
        name: &'static str,
        flow: Flow,
    ) -> impl Fn(&Message<'_>, &MsgInfo) -> Flow {
        let log = log.clone();
        move |m, _| {
            let args: Vec<String> = m.args().map(|a| format!("{a:?}")).collect();
            log.lock()
                .unwrap()
                .push(format!("{name}:{}", args.join(",")));
            flow
        }
    }

    fn send(d: &Dispatcher, address: &str, args: &[Arg<'_>]) -> usize {
        let mut buf = Vec::new();
        encode_message(address, args, &mut buf).unwrap();
        let Packet::Message(m) = osc::decode(&buf).unwrap() else {
            unreachable!()
        };
        d.dispatch(&m, &MsgInfo::default(), &mut DispatchScratch::default())
    }

    fn take(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    #[test]
    fn literal_order_and_stop_semantics() {
        let d = Dispatcher::new();
        let log = Log::default();
        d.add_method(None, None, logger(&log, "all", Flow::PassOn))
            .unwrap();
        d.add_method(Some("/a"), None, logger(&log, "a1", Flow::PassOn))
            .unwrap();
        d.add_method(Some("/*"), None, logger(&log, "star", Flow::PassOn))
            .unwrap();
        d.add_method(Some("/a"), None, logger(&log, "a2", Flow::Handled))
            .unwrap();
        d.add_method(None, None, logger(&log, "late", Flow::PassOn))
            .unwrap();
        assert_eq!(send(&d, "/a", &[]), 4);
        assert_eq!(take(&log), ["all:", "a1:", "star:", "a2:"]);
        // A pattern address reaches every match, whatever callbacks return; it reaches
        // the pattern method only when the pattern strings are identical.
        assert_eq!(send(&d, "/?", &[]), 4);
        assert_eq!(take(&log), ["all:", "a1:", "a2:", "late:"]);
        assert_eq!(send(&d, "/*", &[]), 5);
        assert_eq!(take(&log), ["all:", "a1:", "star:", "a2:", "late:"]);
    }

    #[test]
    fn typespecs_and_coercion() {
        let d = Dispatcher::new();
        let log = Log::default();
        d.add_method(Some("/x"), Some("if"), logger(&log, "if", Flow::PassOn))
            .unwrap();
        d.add_method(Some("/x"), Some(""), logger(&log, "none", Flow::PassOn))
            .unwrap();
        d.add_method(Some("/x"), Some("S"), logger(&log, "S", Flow::PassOn))
            .unwrap();
        send(&d, "/x", &[Arg::Double(2.5), Arg::Long(3)]);
        send(&d, "/x", &[]);
        send(&d, "/x", &[Arg::str("hi")]);
        send(&d, "/x", &[Arg::Int(1), Arg::str("no")]);
        assert_eq!(
            take(&log),
            ["if:Int(2),Float(3.0)", "none:", "S:Symbol([104, 105])"]
        );
        d.set_coercion(false);
        send(&d, "/x", &[Arg::Double(2.5), Arg::Long(3)]);
        send(&d, "/x", &[Arg::Int(2), Arg::Float(3.0)]);
        assert_eq!(take(&log), ["if:Int(2),Float(3.0)"]);
        // A 64-bit integer becomes the nearest float, as liblo's `(float)` gives it (by
        // way of `f64` it was rounded twice: 1.1529215e18).
        d.set_coercion(true);
        let long = (1i64 << 60) + (1 << 36) + 1;
        send(&d, "/x", &[Arg::Int(0), Arg::Long(long)]);
        assert_eq!(take(&log), [format!("if:Int(0),Float({:?})", long as f32)]);
        // A float out of an int's range saturates, keeping its sign; NaN gives 0. A long
        // keeps its low 32 bits (liblo's cast).
        let ints = [
            Arg::Float(3e9),
            Arg::Double(-3e9),
            Arg::Double(f64::NAN),
            Arg::Long((1 << 32) + 5),
        ];
        for i in ints {
            send(&d, "/x", &[i, Arg::Float(0.0)]);
        }
        let max = format!("if:Int({}),Float(0.0)", i32::MAX);
        let min = format!("if:Int({}),Float(0.0)", i32::MIN);
        let zero = "if:Int(0),Float(0.0)".to_string();
        let low = "if:Int(5),Float(0.0)".to_string();
        assert_eq!(take(&log), [max, min, zero, low]);
        assert!(matches!(
            d.add_method(Some("/x"), Some("iq"), |_, _| Flow::Handled),
            Err(MethodError::BadTypeSpec { tag: b'q' })
        ));
        assert!(d
            .add_method(Some("/x"), Some("[i"), |_, _| Flow::Handled)
            .is_err());
        assert!(d
            .add_method(Some("no/slash"), None, |_, _| Flow::Handled)
            .is_err());
        assert!(d
            .add_method(Some("/bad[pattern"), None, |_, _| Flow::Handled)
            .is_err());
    }

    #[test]
    fn o2_booleans_match_typespec_b_and_osc_booleans_coerce_to_them() {
        let d = Dispatcher::new();
        let log = Log::default();
        d.add_method(Some("/b"), Some("B"), logger(&log, "B", Flow::PassOn))
            .unwrap();
        d.add_method(Some("/b"), Some("T"), logger(&log, "T", Flow::PassOn))
            .unwrap();
        let mut buf = Vec::new();
        PacketWriter::with_options(&mut buf, &osc::O2_ENCODE)
            .message("/b", &[Arg::Bool(false)])
            .unwrap();
        let Packet::Message(m) = osc::decode_with(&buf, &O2_DECODE).unwrap() else {
            unreachable!()
        };
        d.dispatch(&m, &MsgInfo::default(), &mut DispatchScratch::default());
        send(&d, "/b", &[Arg::True]);
        assert_eq!(take(&log), ["B:Bool(false)", "B:Bool(true)", "T:True"]);
        // Plain OSC has no `B`: neither end accepts it unless told to.
        assert!(osc::decode(&buf).is_err());
        assert!(encode_message("/b", &[Arg::Bool(true)], &mut Vec::new()).is_err());
    }

    #[test]
    fn methods_remove_themselves_and_others_while_dispatching() {
        let d = Arc::new(Dispatcher::new());
        let log = Log::default();
        let victim = Arc::new(StdMutex::new(None::<MethodId>));
        let (d2, v2, log2) = (d.clone(), victim.clone(), log.clone());
        let first = d
            .add_method(Some("/r"), None, move |_, _| {
                log2.lock().unwrap().push("first".into());
                if let Some(id) = v2.lock().unwrap().take() {
                    assert!(d2.remove_method(id));
                }
                d2.add_method(Some("/r"), None, |_, _| Flow::PassOn)
                    .unwrap();
                Flow::PassOn
            })
            .unwrap();
        let second = d
            .add_method(Some("/r"), None, logger(&log, "second", Flow::PassOn))
            .unwrap();
        *victim.lock().unwrap() = Some(second);
        assert_eq!(send(&d, "/r", &[]), 1);
        assert_eq!(take(&log), ["first"]);
        assert!(d.remove_method(first));
        assert!(!d.remove_method(first));
        assert!(!d.remove_method(second));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn many_literals_share_one_lookup() {
        let d = Dispatcher::new();
        let hits = Arc::new(StdMutex::new(0));
        for i in 0..10_000 {
            let hits = hits.clone();
            d.add_method(Some(&format!("/m/{i}")), Some("i"), move |_, _| {
                *hits.lock().unwrap() += 1;
                Flow::Handled
            })
            .unwrap();
        }
        assert_eq!(send(&d, "/m/9999", &[Arg::Int(1)]), 1);
        assert_eq!(send(&d, "/m/1[0-2]", &[Arg::Int(1)]), 3);
        assert_eq!(*hits.lock().unwrap(), 4);
    }

    /// One scratch across dispatches and dispatchers, as the engine keeps it: every
    /// change shows at the next dispatch, tables never mix, and a release lets removed
    /// methods go.
    #[test]
    fn a_kept_scratch_sees_every_change() {
        let (a, b) = (Dispatcher::new(), Dispatcher::new());
        let log = Log::default();
        let mut scratch = DispatchScratch::default();
        let mut buf = Vec::new();
        encode_message("/x", &[], &mut buf).unwrap();
        let Packet::Message(m) = osc::decode(&buf).unwrap() else {
            unreachable!()
        };
        let mut run = |d: &Dispatcher| d.dispatch(&m, &MsgInfo::default(), &mut scratch);
        let first = a
            .add_method(Some("/x"), None, logger(&log, "a1", Flow::PassOn))
            .unwrap();
        assert_eq!(run(&a), 1);
        assert_eq!(run(&b), 0);
        b.add_method(Some("/x"), None, logger(&log, "b1", Flow::PassOn))
            .unwrap();
        assert_eq!(run(&b), 1);
        a.add_method(None, None, logger(&log, "a2", Flow::PassOn))
            .unwrap();
        assert_eq!(run(&a), 2);
        assert!(a.remove_method(first));
        assert_eq!(run(&a), 1);
        assert_eq!(take(&log), ["a1:", "b1:", "a1:", "a2:", "a2:"]);

        // The scratch holds `a`'s table; a removal copies it and frees the method once
        // the scratch lets go.
        let token = Arc::new(());
        let held = token.clone();
        let id = a.add_method(Some("/y"), None, move |_, _| {
            let _ = &held;
            Flow::Handled
        });
        assert_eq!(run(&a), 1);
        assert!(a.remove_method(id.unwrap()));
        assert_eq!(Arc::strong_count(&token), 2);
        scratch.release();
        assert_eq!(Arc::strong_count(&token), 1);

        // `clear` while the scratch holds the table: the next dispatch reaches nothing
        // and lets the old table, and its methods, go.
        let token = Arc::new(());
        let held = token.clone();
        a.add_method(Some("/x"), None, move |_, _| {
            let _ = &held;
            Flow::PassOn
        })
        .unwrap();
        let mut run = |d: &Dispatcher| d.dispatch(&m, &MsgInfo::default(), &mut scratch);
        assert_eq!(run(&a), 2);
        a.clear();
        assert_eq!(Arc::strong_count(&token), 2);
        assert_eq!(run(&a), 0);
        assert_eq!(Arc::strong_count(&token), 1);
    }

    /// A callback that removes itself and adds a method: the removal stops it at once,
    /// the addition shows from the next message.
    #[test]
    fn callbacks_change_the_table_they_run_from() {
        let d = Arc::new(Dispatcher::new());
        let log = Log::default();
        let id = Arc::new(StdMutex::new(None));
        let (d2, id2, log2) = (d.clone(), id.clone(), log.clone());
        let me = d
            .add_method(Some("/x"), None, move |_, _| {
                if let Some(me) = id2.lock().unwrap().take() {
                    d2.remove_method(me);
                    d2.add_method(Some("/x"), None, logger(&log2, "new", Flow::PassOn))
                        .unwrap();
                }
                log2.lock().unwrap().push("once".into());
                Flow::PassOn
            })
            .unwrap();
        *id.lock().unwrap() = Some(me);
        let mut scratch = DispatchScratch::default();
        let mut buf = Vec::new();
        encode_message("/x", &[], &mut buf).unwrap();
        let Packet::Message(m) = osc::decode(&buf).unwrap() else {
            unreachable!()
        };
        for _ in 0..2 {
            d.dispatch(&m, &MsgInfo::default(), &mut scratch);
        }
        assert_eq!(take(&log), ["once", "new:"]);
    }

    #[cfg(feature = "regex")]
    #[test]
    fn regex_methods() {
        let d = Dispatcher::new();
        let log = Log::default();
        d.add_regex_method("/v[0-9]+/(on|off)", None, logger(&log, "re", Flow::PassOn))
            .unwrap();
        send(&d, "/v12/on", &[]);
        send(&d, "/v12/onx", &[]);
        assert_eq!(take(&log), ["re:"]);
        assert!(d.add_regex_method("(", None, |_, _| Flow::Handled).is_err());
        // An unbalanced `)` is refused, not left to close the anchoring group.
        let unbalanced = d.add_regex_method("/a)|(?:b", None, |_, _| Flow::Handled);
        assert!(matches!(unbalanced, Err(MethodError::BadRegex(_))));
        send(&d, "/abc/def", &[]);
        assert_eq!(take(&log), Vec::<String>::new());
        d.add_regex_method("(?i)/UP", None, logger(&log, "i", Flow::PassOn))
            .unwrap();
        send(&d, "/up", &[]);
        assert_eq!(take(&log), ["i:"]);
    }

    /// After `clear`, a handle from before reaches none of the methods added since.
    #[test]
    fn cleared_handles_stay_stale() {
        let d = Dispatcher::new();
        let old = d
            .add_method(Some("/a"), None, |_, _| Flow::Handled)
            .unwrap();
        d.clear();
        let new = d
            .add_method(Some("/b"), None, |_, _| Flow::Handled)
            .unwrap();
        assert_ne!(old, new);
        assert!(!d.remove_method(old));
        assert_eq!(d.len(), 1);
        assert!(d.remove_method(new));
    }
}
