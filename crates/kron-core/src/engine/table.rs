//! The engine's timers: records in fixed-size chunks, found by name through an index of slot
//! numbers.
//!
//! Memory per timer is a target of its own (a process may hold a million timers). A map of boxed
//! records paid a heap header per record and a 24-byte entry per timer; here a record lives in
//! its slot with no header, the index holds 4 bytes per timer, and the queues and pending sets
//! name timers by slot. Chunks never move once allocated: growing the table never copies
//! records (nor leaves a freed copy behind).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::Timer;

/// Slots per chunk: large enough that a chunk's own overhead is nothing per timer, small enough
/// that a partly used last chunk is nothing either.
const CHUNK: usize = 1_024;

/// A timer's slot: stable while the timer exists; reused after it is removed.
pub type TimerKey = u32;

#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    chunks: Vec<Box<[Option<Timer>]>>,
    /// Slots freed by removals, reused first.
    free: Vec<TimerKey>,
    /// Slot numbers, hashed and compared by the name of the timer in the slot.
    index: HashTable<TimerKey>,
    hasher: foldhash::fast::FixedState,
    len: usize,
}

impl TimerTable {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    pub(crate) fn key(&self, id: &str) -> Option<TimerKey> {
        let hash = self.hash(id);
        self.index
            .find(hash, |&key| {
                slot(&self.chunks, key).is_some_and(|t| &*t.id == id)
            })
            .copied()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Timer> {
        self.at(self.key(id)?)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Timer> {
        let key = self.key(id)?;
        self.at_mut(key)
    }

    pub(crate) fn at(&self, key: TimerKey) -> Option<&Timer> {
        slot(&self.chunks, key)
    }

    pub(crate) fn at_mut(&mut self, key: TimerKey) -> Option<&mut Timer> {
        let (chunk, offset) = split(key);
        self.chunks.get_mut(chunk)?.get_mut(offset)?.as_mut()
    }

    /// Adds a timer whose name is not in the table yet (callers look it up first).
    pub(crate) fn insert(&mut self, timer: Timer) -> TimerKey {
        let key = match self.free.pop() {
            Some(key) => key,
            None => {
                let key = TimerKey::try_from(self.chunks.len() * CHUNK).unwrap_or(TimerKey::MAX);
                self.chunks
                    .push(std::iter::repeat_with(|| None).take(CHUNK).collect());
                // The rest of the new chunk, lowest slot last: popped first.
                self.free.extend((key + 1..key + CHUNK as TimerKey).rev());
                key
            }
        };
        let hash = self.hash(&timer.id);
        if let Some(cell) = self.cell(key) {
            *cell = Some(timer);
        }
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        self.index.insert_unique(hash, key, |&k| {
            slot(chunks, k).map_or(0, |t| hasher.hash_one(&*t.id))
        });
        self.len += 1;
        key
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<(TimerKey, Timer)> {
        let hash = self.hash(id);
        let chunks = &self.chunks;
        let entry = self
            .index
            .find_entry(hash, |&key| slot(chunks, key).is_some_and(|t| &*t.id == id))
            .ok()?;
        let (key, _) = entry.remove();
        let timer = self.cell(key)?.take()?;
        self.free.push(key);
        self.len -= 1;
        Some((key, timer))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (TimerKey, &Timer)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().enumerate().filter_map(move |(o, t)| {
                let key = TimerKey::try_from(c * CHUNK + o).ok()?;
                Some((key, t.as_ref()?))
            })
        })
    }

    fn cell(&mut self, key: TimerKey) -> Option<&mut Option<Timer>> {
        let (chunk, offset) = split(key);
        self.chunks.get_mut(chunk)?.get_mut(offset)
    }
}

fn split(key: TimerKey) -> (usize, usize) {
    let key = key as usize;
    (key / CHUNK, key % CHUNK)
}

fn slot(chunks: &[Box<[Option<Timer>]>], key: TimerKey) -> Option<&Timer> {
    let (chunk, offset) = split(key);
    chunks.get(chunk)?.get(offset)?.as_ref()
}
