//! The sharded object store with S3-FIFO eviction.
//!
//! Objects are immutable (`Arc<Object>` holding `Bytes`), so a hit is a hash
//! lookup and a reference-count increment under a shard lock held for
//! nanoseconds; the bytes are written to the socket from the shared buffers,
//! never copied.
//!
//! ## Why S3-FIFO
//! S3-FIFO (Yang et al., SOSP 2023) keeps a small FIFO for new objects (10%
//! of the bytes), a main FIFO for objects seen again, and a ghost list of
//! keys recently evicted from the small queue. A one-time scan of cold URLs
//! passes through the small queue and leaves without touching the main
//! queue, so the hot set survives; an object requested again while in the
//! small queue, or soon after it left (ghost hit), earns a place in main.
//! Hits only bump a 2-bit counter — no list surgery under the lock, unlike
//! LRU — which keeps the critical section of a hit tiny.
//!
//! ## Memory accounting
//! Each object is charged what it costs: its key (twice: map and entry),
//! head, body and validators rounded to the allocator's granule, plus
//! [`OVERHEAD`] (the entry, its slots in the queues and the map, the `Arc`,
//! measured with a flood of tiny objects). The sum over
//! all shards stays within the configured capacity: each shard owns an equal
//! part and evicts before inserting past it. Responses still being recorded
//! reserve their length first (a body of unknown length, as it arrives:
//! [`Reservation::grow`]), within a quarter of the capacity for all of
//! them ([`Store::reserve`]); a response that finds no room streams through
//! unrecorded, so stalled viewers of large misses cannot hold memory beyond
//! that share.
//!
//! ## Variants (RFC 9111 §4.1)
//! A URL's responses are stored under its key when they do not vary. When
//! they do, each variant is an object under its own key (the URL's key and
//! the request values, [`super::vary`]), and the shard keeps, beside the
//! objects, a record for the URL: the header names its newest response
//! varies on and its variants' slots, oldest first, at most
//! [`MAX_VARIANTS`]. A URL has either an object or a record, never both.
//! Shards are chosen by the URL part of a key, so a URL and all its
//! variants share one lock: a lookup finds the record and the variant
//! under one hold, and storing, replacing or removing a URL's variants is
//! one critical section. A variant leaves its record when it leaves the
//! store (evicted, replaced, removed); a record leaves with its last
//! variant, so records cost at most their variants' number, and each is
//! charged against the capacity ([`Variants::charge`]).

use super::key;
use super::vary::{self, Vary, MAX_VARIANTS};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Slots an invalidation scans per lock hold (see [`Store::remove_where`]).
pub const SCAN_BATCH: usize = 1024;

/// Bookkeeping charged per object on top of its bytes, measured
/// (`tests/cache_memory.rs`): the `Arc<Object>` allocation (~224 bytes), the
/// slab entry, the map slot and the queue slots with their growth slack
/// (tables double, so up to half is empty), the ghost list, and allocator
/// fragmentation as objects come and go.
pub const OVERHEAD: u64 = 640;

/// Bookkeeping charged per URL whose responses vary, on top of its key,
/// its Vary names and its variants' slots: the map bucket (64 bytes, up
/// to doubled by the table's growth slack) and the rounding of the
/// record's three allocations; estimated from the sizes, as records are
/// few beside the objects they index.
pub const VARIANTS_OVERHEAD: u64 = 192;

/// A stored response.
#[derive(Debug)]
pub struct Object {
    /// The response head as it will be sent, without the per-response lines
    /// (Age, X-Cache, Cache-Status, Connection) and without the final CRLF.
    pub head: Bytes,
    pub body: Bytes,
    pub status: u16,
    /// When the response was received (its resident time is counted from
    /// here; recorded misses use when the request came, so the time the
    /// origin took to answer counts too).
    pub stored: Instant,
    /// How old the response already was then (RFC 9111 §4.2.3, the
    /// origin's `Age` or its `Date` in the past; see `freshness::initial_age`).
    pub initial_age: Duration,
    /// Freshness lifetime.
    pub ttl: Duration,
    /// Extra time it may be served stale while it is revalidated.
    pub stale_while_revalidate: Duration,
    /// Extra time it may be served stale when the origins fail.
    pub stale_if_error: Duration,
    /// Validators for conditional requests.
    pub etag: Option<Bytes>,
    pub last_modified: Option<Bytes>,
}

impl Object {
    /// An object without validators or stale windows (error pages, tests).
    pub fn simple(head: Bytes, body: Bytes, status: u16, stored: Instant, ttl: Duration) -> Object {
        Object {
            head,
            body,
            status,
            stored,
            initial_age: Duration::ZERO,
            ttl,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            etag: None,
            last_modified: None,
        }
    }

    /// A response recorded for the cache: its head (as `write_response_core`
    /// wrote it) and body, each held in an allocation of exactly its size
    /// (no spare capacity kept alive behind a `Bytes`).
    pub fn recorded(head: Vec<u8>, body: bytes::BytesMut, status: u16, stored: Instant, ttl: Duration) -> Object {
        let body = if body.capacity() == body.len() {
            body.freeze()
        } else {
            Bytes::copy_from_slice(&body)
        };
        Object::simple(Bytes::from(head.into_boxed_slice()), body, status, stored, ttl)
    }

    /// RFC 9111 §4.2.3 "current_age = corrected_initial_age +
    /// resident_time", saturating (a clock before `stored` adds nothing).
    pub fn age(&self, now: Instant) -> Duration {
        self.initial_age
            .saturating_add(now.saturating_duration_since(self.stored))
    }
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.age(now) < self.ttl
    }
    /// Within `ttl` + `stale-while-revalidate`: may be served while it is
    /// revalidated (the sum saturates; it cannot overflow).
    pub fn may_serve_while_revalidating(&self, now: Instant) -> bool {
        self.age(now) < self.ttl.saturating_add(self.stale_while_revalidate)
    }
    /// Within `ttl` + `stale-if-error`: may be served when the origins fail.
    pub fn may_serve_on_error(&self, now: Instant) -> bool {
        self.age(now) < self.ttl.saturating_add(self.stale_if_error)
    }
    /// Seconds of freshness left (negative once stale), for Cache-Status;
    /// saturates at the ends of `i64`.
    pub fn ttl_left_secs(&self, now: Instant) -> i64 {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        secs(self.ttl).saturating_sub(secs(self.age(now)))
    }
    /// What the object costs in memory: the key (held twice, in the map
    /// and the entry), head and body rounded up to the allocator's 16-byte
    /// granule, validators, and [`OVERHEAD`].
    fn charge(&self, key: &[u8]) -> u64 {
        let round = |n: usize| (n as u64).div_ceil(16) * 16;
        let validators = |v: &Option<Bytes>| v.as_ref().map_or(0, |b| round(b.len()));
        2 * round(key.len())
            + round(self.head.len())
            + round(self.body.len())
            + validators(&self.etag)
            + validators(&self.last_modified)
            + OVERHEAD
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

struct Entry {
    /// Distinguishes this entry from earlier ones in the same slab slot, so
    /// stale queue positions (left by replace/remove) are skipped.
    gen: u64,
    key: Box<[u8]>,
    obj: Arc<Object>,
    freq: u8,
    queue: Queue,
    charge: u64,
}

/// What the shard keeps for a URL whose responses vary.
struct Variants {
    /// The header names the newest response varies on.
    vary: Vary,
    /// The variants' slots and generations, oldest first.
    slots: Vec<(usize, u64)>,
    charge: u64,
}

impl Variants {
    /// What a record for `url` costs: the key (map), the names, a full
    /// slot list and [`VARIANTS_OVERHEAD`].
    fn charge(url: &[u8], vary: &Vary) -> u64 {
        let round = |n: usize| (n as u64).div_ceil(16) * 16;
        round(url.len()) + round(vary.len()) + 16 * MAX_VARIANTS as u64 + VARIANTS_OVERHEAD
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<[u8]>, usize, ahash::RandomState>,
    /// The records of URLs whose responses vary, by URL key.
    variants: HashMap<Box<[u8]>, Variants, ahash::RandomState>,
    slots: slab::Slab<Entry>,
    small: VecDeque<(usize, u64)>,
    main: VecDeque<(usize, u64)>,
    next_gen: u64,
    /// Hashes of keys evicted from the small queue, oldest first.
    ghost: VecDeque<u64>,
    ghost_set: HashMap<u64, u32, ahash::RandomState>,
    small_bytes: u64,
    bytes: u64,
    capacity: u64,
    evictions: u64,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub objects: u64,
    pub bytes: u64,
    pub evictions: u64,
}

impl Shard {
    fn ghost_push(&mut self, h: u64) {
        self.ghost.push_back(h);
        *self.ghost_set.entry(h).or_insert(0) += 1;
        // The ghost list remembers about as many keys as main holds.
        let limit = self.main.len().max(16);
        while self.ghost.len() > limit {
            if let Some(old) = self.ghost.pop_front() {
                if let Some(c) = self.ghost_set.get_mut(&old) {
                    *c -= 1;
                    if *c == 0 {
                        self.ghost_set.remove(&old);
                    }
                }
            }
        }
    }

    fn remove_slot(&mut self, idx: usize) -> Entry {
        let e = self.slots.remove(idx);
        self.map.remove(&e.key);
        self.bytes -= e.charge;
        if e.queue == Queue::Small {
            self.small_bytes -= e.charge;
        }
        self.forget_variant(&e.key, (idx, e.gen));
        e
    }

    /// A variant left the store: it leaves its URL's record, and the
    /// record leaves with its last variant.
    fn forget_variant(&mut self, key: &[u8], slot: (usize, u64)) {
        let url = &key[..key::url_len(key)];
        if url.len() == key.len() {
            return;
        }
        let Some(v) = self.variants.get_mut(url) else { return };
        v.slots.retain(|&s| s != slot);
        if v.slots.is_empty() {
            if let Some(v) = self.variants.remove(url) {
                self.bytes -= v.charge;
            }
        }
    }

    /// Removes a URL's record and every variant in it; returns how many
    /// variants.
    fn drop_variants(&mut self, url: &[u8]) -> usize {
        let Some(v) = self.variants.remove(url) else { return 0 };
        self.bytes -= v.charge;
        for &(idx, gen) in &v.slots {
            if self.slots.get(idx).is_some_and(|e| e.gen == gen) {
                self.remove_slot(idx);
            }
        }
        v.slots.len()
    }

    /// Enters a new variant in its URL's record, making the record (and
    /// charging it) when it is the first.
    fn add_variant(&mut self, url: &[u8], vary: Vary, slot: (usize, u64), charge: u64) {
        if let Some(v) = self.variants.get_mut(url) {
            v.slots.push(slot);
            return;
        }
        let mut slots = Vec::with_capacity(MAX_VARIANTS);
        slots.push(slot);
        self.bytes += charge;
        self.variants.insert(url.into(), Variants { vary, slots, charge });
    }

    /// Makes room in `url`'s stored responses for one keyed `key` (the URL
    /// itself, or a variant selected by `vary`): the newest response's Vary
    /// wins, so a response that does not vary replaces every variant, and
    /// a variant replaces an object that did not vary and the variants of
    /// other names; past [`MAX_VARIANTS`] the oldest variant leaves.
    fn make_way(&mut self, url: &[u8], key: &[u8], vary: Option<&Vary>) {
        match vary {
            None => {
                self.drop_variants(url);
            }
            Some(vary) => {
                if let Some(&idx) = self.map.get(url) {
                    self.remove_slot(idx);
                }
                if self.variants.get(url).is_some_and(|v| v.vary != *vary) {
                    self.drop_variants(url);
                }
            }
        }
        if let Some(&idx) = self.map.get(key) {
            self.remove_slot(idx);
        }
        let oldest = self
            .variants
            .get(url)
            .filter(|v| v.slots.len() >= MAX_VARIANTS)
            .and_then(|v| v.slots.first().copied());
        if let Some((idx, _)) = oldest {
            self.remove_slot(idx);
            self.evictions += 1;
        }
    }

    /// Evicts one object (or moves one along); false when empty.
    fn evict_one(&mut self, hasher: &ahash::RandomState) -> bool {
        let from_small = self.small_bytes >= self.capacity / 10 || self.main.is_empty();
        if from_small {
            while let Some((idx, gen)) = self.small.pop_front() {
                let Some(e) = self.slots.get_mut(idx) else { continue };
                if e.gen != gen || e.queue != Queue::Small {
                    continue;
                }
                if e.freq > 0 {
                    // Seen again while new: promote to main.
                    e.queue = Queue::Main;
                    e.freq = 0;
                    self.small_bytes -= e.charge;
                    self.main.push_back((idx, gen));
                    return true;
                }
                let e = self.remove_slot(idx);
                self.ghost_push(hasher.hash_one(&*e.key));
                self.evictions += 1;
                return true;
            }
        }
        while let Some((idx, gen)) = self.main.pop_front() {
            let Some(e) = self.slots.get_mut(idx) else { continue };
            if e.gen != gen || e.queue != Queue::Main {
                continue;
            }
            if e.freq > 0 {
                e.freq -= 1;
                self.main.push_back((idx, gen));
                continue;
            }
            self.remove_slot(idx);
            self.evictions += 1;
            return true;
        }
        // Main was empty: fall back to the small queue.
        if !from_small {
            return self.evict_one_small_only();
        }
        false
    }

    /// Drops stale queue positions once they outnumber the live entries, so
    /// replacing the same keys over and over cannot grow the queues.
    fn compact_queues(&mut self) {
        let live = self.slots.len();
        if self.small.len() + self.main.len() <= 2 * live + 64 {
            return;
        }
        let slots = &self.slots;
        let valid = |q: Queue| move |&(i, g): &(usize, u64)| slots.get(i).is_some_and(|e| e.gen == g && e.queue == q);
        self.small.retain(valid(Queue::Small));
        self.main.retain(valid(Queue::Main));
    }

    fn evict_one_small_only(&mut self) -> bool {
        while let Some((idx, gen)) = self.small.pop_front() {
            if self
                .slots
                .get(idx)
                .is_some_and(|e| e.gen == gen && e.queue == Queue::Small)
            {
                self.remove_slot(idx);
                self.evictions += 1;
                return true;
            }
        }
        false
    }
}

/// The cache store shared by all workers.
pub struct Store {
    /// Fetches in flight, for request collapsing.
    pub flights: super::collapse::Flights,
    shards: Box<[Mutex<Shard>]>,
    hasher: ahash::RandomState,
    capacity: u64,
    max_object: u64,
    /// Bytes reserved by responses being recorded (see [`Store::reserve`]).
    recording: std::sync::atomic::AtomicU64,
}

/// The share of `capacity` that responses being recorded may reserve
/// (1/4), or at least room for one largest object and its head.
pub const RECORDING_SHARE: u64 = 4;
const RECORDING_SLACK: u64 = 128 * 1024;

/// Room reserved for a response being recorded; given back when dropped
/// (the object stored, or the recording abandoned).
pub struct Reservation {
    store: Arc<Store>,
    bytes: u64,
}

impl Reservation {
    /// Reserves `more` bytes on top, within the same share as
    /// [`Store::reserve`]: a body whose length is known only at its end
    /// (chunked, or delimited by close) takes room as it arrives. False: no
    /// room, and the reservation stays as it was.
    pub fn grow(&mut self, more: u64) -> bool {
        if !self.store.take(more) {
            return false;
        }
        self.bytes += more;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.store
            .recording
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Store {
    /// Reserves `bytes` for a response about to be recorded, within a
    /// quarter of the capacity (at least one largest object) for all
    /// recordings at once (SPEC §4: what is
    /// being recorded counts against capacity). `None`: no room, so the
    /// response streams through unrecorded.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        self.take(bytes).then(|| Reservation {
            store: self.clone(),
            bytes,
        })
    }

    /// Adds `bytes` to what recordings hold, unless that passes their share.
    fn take(&self, bytes: u64) -> bool {
        use std::sync::atomic::Ordering;
        // At least one object of the largest size may always be recorded.
        let limit = (self.capacity / RECORDING_SHARE)
            .max(self.max_object.saturating_add(RECORDING_SLACK))
            .min(self.capacity);
        self.recording
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                r.checked_add(bytes).filter(|&t| t <= limit)
            })
            .is_ok()
    }

    /// Bytes reserved by recordings now.
    pub fn recording(&self) -> u64 {
        self.recording.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A store of `capacity` bytes taking objects up to `max_object` bytes.
    /// Shards are sized so the largest object fits one four times over.
    pub fn new(capacity: u64, max_object: u64) -> Store {
        let mut n = 1usize;
        while n < 64 && capacity / (n as u64 * 2) >= max_object.saturating_mul(4).max(1 << 20) {
            n *= 2;
        }
        let per = capacity / n as u64;
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    capacity: per,
                    ..Default::default()
                })
            })
            .collect();
        Store {
            flights: Default::default(),
            shards,
            hasher: ahash::RandomState::with_seeds(0x5eed, 0xcafe, 0xf00d, 0xbeef),
            capacity,
            max_object,
            recording: Default::default(),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of `key`'s URL: a URL and its variants share one.
    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(&key[..key::url_len(key)]);
        &self.shards[(h as usize) & (self.shards.len() - 1)]
    }

    /// The object a request is answered from, counting the access: the
    /// hit path, one lock hold, no allocation. `key` holds the request's
    /// URL key ([`key::build`]); when the URL's stored responses vary,
    /// `values` appends the request's values of the headers they vary on
    /// ([`super::vary::append_values`]) and `key` is left holding that
    /// variant's key, found or not: the key the request's fetch collapses
    /// on and its response is looked for under.
    pub fn lookup(&self, key: &mut Vec<u8>, values: impl FnOnce(&Vary, &mut Vec<u8>)) -> Option<Arc<Object>> {
        let mut guard = self.shard(key).lock().ok()?;
        let s = &mut *guard;
        let idx = match s.map.get(key.as_slice()) {
            Some(&idx) => idx,
            None => {
                let v = s.variants.get(key.as_slice())?;
                values(&v.vary, key);
                *s.map.get(key.as_slice())?
            }
        };
        let e = s.slots.get_mut(idx)?;
        e.freq = (e.freq + 1).min(3);
        Some(e.obj.clone())
    }

    /// The object stored under exactly `key` (a URL's or a variant's),
    /// counting the access.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Object>> {
        let mut s = self.shard(key).lock().ok()?;
        let idx = *s.map.get(key)?;
        let e = s.slots.get_mut(idx)?;
        e.freq = (e.freq + 1).min(3);
        Some(e.obj.clone())
    }

    /// Stores `obj` under `key`, replacing an older one. A URL's key
    /// stores a response that does not vary (its URL's variants go); a
    /// variant's key replaces that variant of a URL whose responses still
    /// vary on the names the key holds (a revalidated or refreshed one),
    /// and is refused when the URL has no variants or other names now.
    /// Returns false when the object is too large to cache or refused.
    pub fn insert(&self, key: &[u8], obj: Arc<Object>) -> bool {
        self.put(key, None, obj, None)
    }

    /// Stores a response selected by the request headers `vary` names
    /// (empty: it does not vary, as [`Store::insert`]) under `key`: its
    /// URL's key followed, when it varies, by the request's values of those
    /// headers ([`super::vary::append_values`]). The newest response's Vary
    /// wins: variants of other names, or an object that did not vary, are
    /// replaced. At most [`MAX_VARIANTS`] per URL: the 17th replaces the
    /// oldest (the newest is likelier to be asked for again than the
    /// oldest; refusing would keep the first 16 forever).
    pub fn insert_with_vary(&self, key: &[u8], vary: &Vary, obj: Arc<Object>) -> bool {
        self.put(key, (!vary.is_empty()).then_some(vary), obj, None)
    }

    /// As [`Store::insert_with_vary`], but only while `key` still holds
    /// `placeholder` (the same `Arc`): a compressed variant replaces the
    /// identity object stored in its place while it was being compressed,
    /// unless the URL was invalidated, refreshed or evicted meanwhile (then
    /// the newer state stands). One lock hold for the check and the insert.
    pub fn replace(&self, key: &[u8], vary: &Vary, placeholder: &Arc<Object>, obj: Arc<Object>) -> bool {
        self.put(key, (!vary.is_empty()).then_some(vary), obj, Some(placeholder))
    }

    fn put(&self, key: &[u8], vary: Option<&Vary>, obj: Arc<Object>, expect: Option<&Arc<Object>>) -> bool {
        let charge = obj.charge(key);
        let Ok(mut guard) = self.shard(key).lock() else {
            return false;
        };
        let s = &mut *guard;
        if let Some(expected) = expect {
            let holds = s.map.get(key).and_then(|&i| s.slots.get(i));
            if !holds.is_some_and(|e| Arc::ptr_eq(&e.obj, expected)) {
                return false;
            }
        }
        let url = &key[..key::url_len(key)];
        // A variant's key without names: a variant of the URL's record,
        // made from the names the record holds (else the URL's Vary changed
        // since the key was made, and the response may not select it).
        let vary = match vary {
            Some(v) if url.len() < key.len() => Some(v.clone()),
            None if url.len() < key.len() => match s.variants.get(url) {
                Some(v) if vary::key_names(key) == Some(v.vary.as_bytes()) => Some(v.vary.clone()),
                _ => return false,
            },
            _ => None,
        };
        let record = vary.as_ref().map_or(0, |v| Variants::charge(url, v));
        // `max_object_size` bounds the body, as admission and recording
        // count it (SPEC §4: "Objects over max_object_size are not
        // stored"); shards hold four of the largest, head and all.
        if obj.body.len() as u64 > self.max_object || charge + record > s.capacity {
            return false;
        }
        s.make_way(url, key, vary.as_ref());
        loop {
            let needed = charge + if s.variants.contains_key(url) { 0 } else { record };
            if s.bytes + needed <= s.capacity || !s.evict_one(&self.hasher) {
                break;
            }
        }
        let h = self.hasher.hash_one(key);
        let queue = if s.ghost_set.contains_key(&h) {
            Queue::Main
        } else {
            Queue::Small
        };
        let k: Box<[u8]> = key.into();
        s.next_gen += 1;
        let gen = s.next_gen;
        let idx = s.slots.insert(Entry {
            gen,
            key: k.clone(),
            obj,
            freq: 0,
            queue,
            charge,
        });
        s.map.insert(k, idx);
        s.bytes += charge;
        if let Some(vary) = vary {
            s.add_variant(url, vary, (idx, gen), record);
        }
        s.compact_queues();
        match queue {
            Queue::Small => {
                s.small_bytes += charge;
                s.small.push_back((idx, gen));
            }
            Queue::Main => s.main.push_back((idx, gen)),
        }
        true
    }

    /// Removes every stored response for one URL: the object stored for it
    /// when its responses do not vary, or every variant (and the record of
    /// what they vary on) when they do. `url` is the URL's key as
    /// [`key::build`] makes it (host, path, and the query when the behavior
    /// keys on it). One lock hold, a few hash lookups: this is what an
    /// invalidation of a known URL calls (RFC 9111 §4.4: "invalidate" means
    /// every stored response for the target URI). Returns how many objects
    /// left.
    pub fn remove_url(&self, url: &[u8]) -> usize {
        let Ok(mut s) = self.shard(url).lock() else {
            return 0;
        };
        let mut n = s.drop_variants(url);
        if let Some(&idx) = s.map.get(url) {
            s.remove_slot(idx);
            n += 1;
        }
        n
    }

    /// Removes every stored response, all variants included, of each URL
    /// for which `f` (given the URL's key, host NUL target) is true; the
    /// scan behind the admin `/invalidate` (any host, exact paths and
    /// prefixes), walked as [`Store::remove_where`] walks. Returns how many
    /// objects left.
    pub fn remove_urls(&self, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        self.remove_where(|k| f(&k[..key::url_len(k)]))
    }

    /// Removes `key`; true if it was there.
    pub fn remove(&self, key: &[u8]) -> bool {
        let Ok(mut s) = self.shard(key).lock() else {
            return false;
        };
        match s.map.get(key).copied() {
            Some(idx) => {
                s.remove_slot(idx);
                true
            }
            None => false,
        }
    }

    /// Removes every key for which `f` is true; returns how many. Each
    /// shard is walked in batches of [`SCAN_BATCH`] slots, its lock released
    /// between them, so hits on the shard wait at most one batch (objects
    /// inserted meanwhile may or may not be seen).
    pub fn remove_where(&self, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        let mut n = 0;
        let mut doomed = Vec::new();
        for sh in self.shards.iter() {
            let mut at = 0usize;
            loop {
                let Ok(mut s) = sh.lock() else { break };
                let end = at.saturating_add(SCAN_BATCH).min(s.slots.capacity());
                doomed.clear();
                doomed.extend((at..end).filter(|&i| s.slots.get(i).is_some_and(|e| f(&e.key))));
                for &i in &doomed {
                    s.remove_slot(i);
                    n += 1;
                }
                if end >= s.slots.capacity() {
                    break;
                }
                at = end;
            }
        }
        n
    }

    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for sh in self.shards.iter() {
            if let Ok(s) = sh.lock() {
                st.objects += s.slots.len() as u64;
                st.bytes += s.bytes;
                st.evictions += s.evictions;
            }
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_reserve_within_their_share_and_give_it_back() {
        let s = Arc::new(Store::new(64 << 20, 1 << 20));
        let a = s.reserve(10 << 20).expect("within a quarter");
        let b = s.reserve(6 << 20).expect("still within");
        assert!(s.reserve(1 << 20).is_none(), "past the share");
        drop(a);
        assert_eq!(s.recording(), 6 << 20);
        assert!(s.reserve(u64::MAX).is_none());
        drop(b);
        assert_eq!(s.recording(), 0);
        // A small cache still records one object of the largest size.
        let small = Arc::new(Store::new(4 << 20, 2 << 20));
        assert!(small.reserve((2 << 20) + 4096).is_some());
    }

    #[test]
    fn a_reservation_grows_within_the_share_and_gives_it_all_back() {
        let s = Arc::new(Store::new(64 << 20, 1 << 20));
        let mut a = s.reserve(1 << 20).expect("room");
        assert!(a.grow(10 << 20));
        let b = s.reserve(4 << 20).expect("still within");
        assert!(!a.grow(2 << 20), "past the share");
        assert!(!a.grow(u64::MAX));
        assert_eq!(s.recording(), 15 << 20, "a failed grow takes nothing");
        drop(b);
        assert!(a.grow(2 << 20));
        drop(a);
        assert_eq!(s.recording(), 0);
    }

    fn obj(n: usize) -> Arc<Object> {
        Arc::new(Object::simple(
            Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 0"),
            Bytes::from(vec![b'x'; n]),
            200,
            Instant::now(),
            Duration::from_secs(60),
        ))
    }

    #[test]
    fn a_stand_in_is_replaced_only_while_it_is_still_there() {
        let s = Store::new(64 << 20, 1 << 20);
        let vary = Vary::parse(Some(b"Accept-Encoding")).unwrap();
        let key = b"h\0/p\0accept-encoding\0=br";
        let stand_in = obj(10);
        assert!(s.insert_with_vary(key, &vary, stand_in.clone()));
        let coded = obj(3);
        assert!(s.replace(key, &vary, &stand_in, coded.clone()));
        assert!(Arc::ptr_eq(&s.get(key).unwrap(), &coded));
        // Invalidated meanwhile: the coded variant does not bring it back.
        s.remove_url(b"h\0/p");
        assert!(!s.replace(key, &vary, &stand_in, obj(3)));
        assert!(s.get(key).is_none());
        // Stored again meanwhile: the newer object stands.
        let newer = obj(12);
        assert!(s.insert_with_vary(key, &vary, newer.clone()));
        assert!(!s.replace(key, &vary, &stand_in, obj(3)));
        assert!(Arc::ptr_eq(&s.get(key).unwrap(), &newer));
    }

    #[test]
    fn stale_windows_and_ttl_left_saturate() {
        let t0 = Instant::now();
        let huge = Duration::MAX;
        let mut o = Object::simple(Bytes::new(), Bytes::new(), 200, t0, huge);
        o.stale_while_revalidate = huge;
        o.stale_if_error = huge;
        let later = t0 + Duration::from_secs(5);
        assert!(o.is_fresh(later) && o.may_serve_while_revalidating(later) && o.may_serve_on_error(later));
        assert_eq!(o.ttl_left_secs(t0), i64::MAX);
        assert_eq!(o.ttl_left_secs(later), i64::MAX - 5);
        let mut o = Object::simple(Bytes::new(), Bytes::new(), 200, t0, Duration::from_secs(1));
        o.stale_while_revalidate = Duration::from_secs(10);
        let at = |s| t0 + Duration::from_secs(s);
        assert!(!o.is_fresh(at(1)) && o.may_serve_while_revalidating(at(1)));
        assert!(o.may_serve_while_revalidating(at(10)) && !o.may_serve_while_revalidating(at(11)));
        assert!(!o.may_serve_on_error(at(1)), "no stale-if-error window");
        assert_eq!(o.ttl_left_secs(at(11)), -10);
        // A clock before `stored` counts as age 0.
        assert_eq!(o.ttl_left_secs(t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0)), 1);
    }

    /// RFC 9111 §4.2.3: the age an object arrived with counts towards its
    /// age, freshness, stale windows and ttl left, and saturates.
    #[test]
    fn initial_age_counts_and_saturates() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut o = Object::simple(Bytes::new(), Bytes::new(), 200, t0, Duration::from_secs(100));
        o.initial_age = Duration::from_secs(90);
        o.stale_while_revalidate = Duration::from_secs(20);
        assert_eq!(o.age(at(5)), Duration::from_secs(95));
        assert!(o.is_fresh(at(9)) && !o.is_fresh(at(10)));
        assert!(o.may_serve_while_revalidating(at(29)) && !o.may_serve_while_revalidating(at(30)));
        assert_eq!(o.ttl_left_secs(at(4)), 6);
        assert_eq!(o.ttl_left_secs(at(15)), -5);
        o.initial_age = Duration::MAX;
        assert_eq!(o.age(at(5)), Duration::MAX);
        assert!(!o.is_fresh(t0) && !o.may_serve_on_error(t0));
        assert_eq!(o.ttl_left_secs(at(1)), 100 - i64::MAX);
    }

    #[test]
    fn get_insert_replace_remove() {
        let s = Store::new(1 << 20, 1 << 16);
        assert!(s.get(b"a").is_none());
        assert!(s.insert(b"a", obj(10)));
        assert_eq!(s.get(b"a").unwrap().body.len(), 10);
        assert!(s.insert(b"a", obj(20)));
        assert_eq!(s.get(b"a").unwrap().body.len(), 20);
        assert_eq!(s.stats().objects, 1);
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
        assert_eq!(
            s.stats(),
            Stats {
                objects: 0,
                bytes: 0,
                evictions: 0
            }
        );
    }

    #[test]
    fn too_large_objects_are_refused() {
        let s = Store::new(1 << 20, 1000);
        assert!(!s.insert(b"big", obj(2000)));
        assert!(s.get(b"big").is_none());
    }

    #[test]
    fn capacity_is_never_exceeded() {
        let cap = 256 * 1024;
        let s = Store::new(cap, 16 * 1024);
        for i in 0..5000u32 {
            let size = (i as usize * 7919) % 8000 + 1;
            s.insert(format!("/obj/{i}").as_bytes(), obj(size));
            let st = s.stats();
            assert!(st.bytes <= cap, "{} > {cap} after {i}", st.bytes);
        }
        assert!(s.stats().evictions > 0);
    }

    #[test]
    fn a_scan_does_not_flush_the_hot_set() {
        let s = Store::new(200 * (1024 + OVERHEAD + 16), 4096);
        let hot: Vec<String> = (0..50).map(|i| format!("/hot/{i}")).collect();
        for k in &hot {
            s.insert(k.as_bytes(), obj(1024));
        }
        for _ in 0..3 {
            for k in &hot {
                assert!(s.get(k.as_bytes()).is_some() || s.insert(k.as_bytes(), obj(1024)));
            }
        }
        // A scan of 2000 cold objects, each seen once.
        for i in 0..2000 {
            s.insert(format!("/cold/{i}").as_bytes(), obj(1024));
        }
        let kept = hot.iter().filter(|k| s.get(k.as_bytes()).is_some()).count();
        assert!(kept >= 45, "only {kept} of 50 hot objects survived the scan");
    }

    #[test]
    fn replacing_one_key_does_not_grow_the_queues() {
        let s = Store::new(1 << 20, 1 << 16);
        for _ in 0..10_000 {
            s.insert(b"same", obj(1));
        }
        let sh = s.shard(b"same").lock().unwrap();
        assert!(sh.small.len() + sh.main.len() <= 2 * sh.slots.len() + 65);
    }

    fn vary(names: &str) -> Vary {
        Vary::parse(Some(names.as_bytes())).unwrap()
    }

    /// A variant key: URL `url`, the names `names`, then one value per
    /// name, as `vary::append_values` makes them.
    fn variant(url: &str, names: &str, values: &[&str]) -> Vec<u8> {
        let mut k = url.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(vary(names).as_bytes());
        for v in values {
            k.push(0);
            k.extend_from_slice(v.as_bytes());
        }
        k
    }

    /// Looks `url` up with `values` as the request's values.
    fn lookup(s: &Store, url: &str, values: &[&str]) -> (Option<usize>, Vec<u8>) {
        let mut k = url.as_bytes().to_vec();
        let found = s.lookup(&mut k, |v, k| {
            *k = variant(url, std::str::from_utf8(v.as_bytes()).unwrap(), values)
        });
        (found.map(|o| o.body.len()), k)
    }

    #[test]
    fn a_url_holds_an_object_or_variants() {
        let s = Store::new(1 << 20, 1 << 16);
        assert_eq!(
            lookup(&s, "h\0/p", &["=a"]),
            (None, b"h\0/p".to_vec()),
            "nothing: the URL key"
        );
        assert!(s.insert(b"h\0/p", obj(1)));
        assert_eq!(lookup(&s, "h\0/p", &["=a"]).0, Some(1), "no Vary: any values");
        let v = vary("origin");
        assert!(s.insert_with_vary(&variant("h\0/p", "origin", &["=a"]), &v, obj(2)));
        assert!(s.insert_with_vary(&variant("h\0/p", "origin", &["=b"]), &v, obj(3)));
        assert_eq!(s.stats().objects, 2, "the object that did not vary left");
        assert_eq!(lookup(&s, "h\0/p", &["=a"]).0, Some(2));
        assert_eq!(lookup(&s, "h\0/p", &["=b"]).0, Some(3));
        assert_eq!(
            lookup(&s, "h\0/p", &["-"]),
            (None, variant("h\0/p", "origin", &["-"])),
            "the variant's key"
        );
        // A revalidated variant is stored again under its key.
        assert!(s.insert(&variant("h\0/p", "origin", &["=a"]), obj(4)));
        assert_eq!(lookup(&s, "h\0/p", &["=a"]).0, Some(4));
        // Without Vary again: one object, the variants gone.
        assert!(s.insert_with_vary(b"h\0/p", &Vary::default(), obj(5)));
        assert_eq!(s.stats().objects, 1);
        assert!(
            !s.insert(&variant("h\0/p", "origin", &["=a"]), obj(6)),
            "no variants to replace"
        );
        assert_eq!(lookup(&s, "h\0/p", &["=a"]).0, Some(5));
    }

    #[test]
    fn other_vary_names_replace_the_variants() {
        let s = Store::new(1 << 20, 1 << 16);
        assert!(s.insert_with_vary(&variant("h\0/u", "origin", &["=a"]), &vary("origin"), obj(1)));
        assert!(s.insert_with_vary(&variant("h\0/u", "origin", &["=b"]), &vary("origin"), obj(2)));
        assert!(s.insert_with_vary(&variant("h\0/u", "x-tenant", &["-"]), &vary("x-tenant"), obj(3)));
        assert_eq!(s.stats().objects, 1);
        assert_eq!(lookup(&s, "h\0/u", &["-"]).0, Some(3));
        // A revalidation of a variant keyed by the old names is refused:
        // its key may not mean the same request any more.
        assert!(!s.insert(&variant("h\0/u", "origin", &["=a"]), obj(4)));
        assert!(s.insert(&variant("h\0/u", "x-tenant", &["-"]), obj(5)));
        assert_eq!(s.stats().objects, 1);
    }

    #[test]
    fn the_seventeenth_variant_replaces_the_oldest() {
        let s = Store::new(1 << 20, 1 << 16);
        let v = vary("x");
        for i in 0..=MAX_VARIANTS {
            assert!(s.insert_with_vary(&variant("h\0/u", "x", &[&format!("={i}")]), &v, obj(i)));
        }
        assert_eq!(s.stats().objects, MAX_VARIANTS as u64);
        assert_eq!(lookup(&s, "h\0/u", &["=0"]).0, None);
        for i in 1..=MAX_VARIANTS {
            assert_eq!(lookup(&s, "h\0/u", &[&format!("={i}")]).0, Some(i));
        }
        // Replacing a variant is not a new one.
        assert!(s.insert_with_vary(&variant("h\0/u", "x", &["=5"]), &v, obj(50)));
        assert_eq!(lookup(&s, "h\0/u", &["=1"]).0, Some(1));
    }

    #[test]
    fn records_are_charged_and_leave_with_their_last_variant() {
        let s = Store::new(1 << 20, 1 << 16);
        let v = vary("origin");
        let (a, b) = (variant("h\0/p", "origin", &["=a"]), variant("h\0/p", "origin", &["=b"]));
        s.insert_with_vary(&a, &v, obj(10));
        let one = s.stats().bytes;
        assert_eq!(one, obj(10).charge(&a) + Variants::charge(b"h\0/p", &v));
        s.insert_with_vary(&b, &v, obj(10));
        assert_eq!(s.stats().bytes, one + obj(10).charge(&b));
        assert!(s.remove(&a) && s.remove(&b));
        assert_eq!(s.stats().bytes, 0, "the record left with the last variant");
        assert_eq!(lookup(&s, "h\0/p", &["=a"]), (None, b"h\0/p".to_vec()));
    }

    #[test]
    fn eviction_of_variants_keeps_the_accounting() {
        let cap = 256 * 1024;
        let s = Store::new(cap, 16 * 1024);
        let v = vary("x");
        for i in 0..5000u32 {
            let url = format!("h\0/u/{}", i % 700);
            let k = variant(&url, "x", &[&format!("={}", i % 23)]);
            s.insert_with_vary(&k, &v, obj((i as usize * 7919) % 3000 + 1));
            assert!(s.stats().bytes <= cap);
        }
        assert!(s.stats().evictions > 0);
        let n = s.stats().objects;
        assert_eq!(s.remove_urls(|_| true) as u64, n);
        assert_eq!(
            (s.stats().objects, s.stats().bytes),
            (0, 0),
            "records left with their variants"
        );
    }

    #[test]
    fn remove_url_and_remove_urls_take_every_variant() {
        let s = Store::new(1 << 20, 1 << 16);
        let v = vary("origin");
        for url in ["h\0/a", "h\0/a/b", "g\0/a"] {
            for o in ["=1", "=2", "-"] {
                s.insert_with_vary(&variant(url, "origin", &[o]), &v, obj(1));
            }
        }
        s.insert(b"h\0/plain", obj(1));
        assert_eq!(s.remove_url(b"h\0/a"), 3);
        assert_eq!(s.remove_url(b"h\0/a"), 0);
        assert_eq!(s.remove_url(b"h\0/plain"), 1);
        assert_eq!(
            s.remove_urls(|url| super::key::target(url) == Some(b"/a")),
            3,
            "any host"
        );
        assert_eq!(s.stats().objects, 3);
        assert_eq!(s.remove_urls(|url| url.starts_with(b"h\0/a/")), 3);
        assert_eq!(s.stats().bytes, 0);
    }

    #[test]
    fn remove_where_for_prefix_invalidation() {
        let s = Store::new(1 << 20, 1 << 16);
        for k in ["h/a/1", "h/a/2", "h/b/1"] {
            s.insert(k.as_bytes(), obj(1));
        }
        assert_eq!(s.remove_where(|k| k.starts_with(b"h/a/")), 2);
        assert!(s.get(b"h/b/1").is_some());
    }
}
