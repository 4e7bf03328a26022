//! A small slab: O(1) insert and remove by index, with the first entry stored
//! inline so that a node with one child or one waiter allocates nothing extra.
//!
//! Nodes keep their children and waiters here. An index stays valid until its
//! entry is removed; the owner of an entry is the only one who removes it,
//! except [`Slab::drain`], which empties the slab when its node is cancelled
//! (and a cancelled node never accepts entries again).

use std::mem;

/// "No index": the end of the free list. Indices are `u32` to keep nodes
/// small; a slab never holds 4 billion entries (that would be 96 GiB).
pub(crate) const NIL: u32 = u32::MAX;

/// Above this many spare slots an empty slab gives its memory back, so a
/// long-lived parent returns to its baseline after a burst of children.
const KEEP_CAPACITY: usize = 8;

enum Slot<T> {
    Vacant { next_free: u32 },
    Occupied(T),
}

pub(crate) struct Slab<T> {
    head: Slot<T>,
    /// Entries from index 1 on; boxed, so that the common one-entry slab
    /// costs one pointer in its node (the extra allocation is made only by
    /// a node with two children or waiters at once).
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<Slot<T>>>>,
    next_free: u32,
    len: u32,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            head: Slot::Vacant { next_free: NIL },
            rest: None,
            next_free: 0,
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// How many entries satisfy `f`.
    #[cfg(test)]
    pub(crate) fn count(&self, f: impl Fn(&T) -> bool) -> usize {
        std::iter::once(&self.head)
            .chain(self.rest.iter().flat_map(|rest| rest.iter()))
            .filter(|slot| matches!(slot, Slot::Occupied(v) if f(v)))
            .count()
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        match index {
            0 => Some(&mut self.head),
            i => self.rest.as_mut()?.get_mut(i as usize - 1),
        }
    }

    /// Stores `value` and returns its index (`NIL` in the impossible case of
    /// a slab past `u32` indices: the entry is then only reached by `drain`).
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        let index = self.next_free;
        if let Some(slot) = self.slot_mut(index)
            && let Slot::Vacant { next_free } = *slot
        {
            *slot = Slot::Occupied(value);
            self.next_free = next_free;
            self.len += 1;
            return index;
        }
        // The free list is empty: grow.
        let rest = self.rest.get_or_insert_default();
        rest.push(Slot::Occupied(value));
        self.len = self.len.saturating_add(1);
        u32::try_from(rest.len()).unwrap_or(NIL)
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        match self.slot_mut(index) {
            Some(Slot::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    /// Removes and returns the entry at `index`, if there is one.
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        let next_free = self.next_free;
        let slot = self.slot_mut(index)?;
        if !matches!(slot, Slot::Occupied(_)) {
            return None;
        }
        let Slot::Occupied(value) = mem::replace(slot, Slot::Vacant { next_free }) else {
            return None;
        };
        self.next_free = index;
        self.len -= 1;
        if self.len == 0 && self.heap_capacity() > KEEP_CAPACITY {
            *self = Slab::new();
        }
        Some(value)
    }

    /// Hands every entry to `f`, emptying the slab.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(T)) {
        if self.len == 0 {
            return;
        }
        self.len = 0;
        self.next_free = 0;
        if let Slot::Occupied(value) = mem::replace(&mut self.head, Slot::Vacant { next_free: NIL })
        {
            f(value);
        }
        if let Some(rest) = self.rest.take() {
            for slot in *rest {
                if let Slot::Occupied(value) = slot {
                    f(value);
                }
            }
        }
    }

    /// Slots this slab holds on the heap, beyond its inline entry.
    pub(crate) fn heap_capacity(&self) -> usize {
        self.rest.as_ref().map_or(0, |rest| rest.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_slots_and_keeps_indices_stable() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        let b = slab.insert("b");
        let c = slab.insert("c");
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slab.remove(b), Some("b"));
        assert_eq!(slab.remove(b), None, "double remove is a no-op");
        assert_eq!(slab.get_mut(a), Some(&mut "a"));
        assert_eq!(slab.insert("d"), b, "freed slot is reused first");
        assert_eq!(slab.len(), 3);
        let mut all = Vec::new();
        slab.drain(|v| all.push(v));
        all.sort_unstable();
        assert_eq!(all, ["a", "c", "d"]);
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.remove(c), None, "indices from before drain() are dead");
    }

    #[test]
    fn one_entry_needs_no_heap() {
        let mut slab = Slab::new();
        for i in 0..1000 {
            let idx = slab.insert(i);
            assert_eq!(idx, 0);
            assert_eq!(slab.remove(idx), Some(i));
        }
        assert_eq!(slab.heap_capacity(), 0);
    }

    #[test]
    fn a_burst_is_given_back_when_the_slab_empties() {
        let mut slab = Slab::new();
        let n = if cfg!(miri) { 200 } else { 10_000 };
        let ids: Vec<_> = (0..n).map(|i| slab.insert(i)).collect();
        assert!(slab.heap_capacity() >= n as usize - 1);
        for id in ids.into_iter().rev() {
            assert!(slab.remove(id).is_some());
        }
        assert_eq!(slab.heap_capacity(), 0);
        assert_eq!(slab.insert(7), 0);
    }

    #[test]
    fn out_of_range_indices_are_harmless() {
        let mut slab: Slab<u8> = Slab::new();
        assert_eq!(slab.remove(NIL), None);
        assert_eq!(slab.remove(5), None);
        assert!(slab.get_mut(3).is_none());
    }
}
