//! A small paged slab: O(1) insert and remove by index, the first entry
//! stored inline, the rest in pages that are given back as they empty.
//!
//! Nodes keep their children, waiters and after_funcs here. An index stays
//! valid until its entry is removed; the owner of an entry is the only one who
//! removes it, except [`Slab::drain`], which empties the slab when its node is
//! cancelled (and a cancelled node never accepts entries again).
//!
//! # Memory
//!
//! Indices must stay stable, so entries never move. Instead of one vector
//! (which a single surviving entry at a high index would keep at its peak
//! size), entries past the first live in fixed pages of [`PAGE`] slots: a page
//! whose last entry leaves is freed, so after a burst of 100,000 children a
//! node keeps only the pages that still hold something, plus its page table
//! up to the last of them (one pointer per page: 25 KiB at most after a burst
//! of 100,000). Page 0 is kept while the slab is in use, so that a
//! node alternating between one and two entries does not allocate each time;
//! a slab that empties after a burst gives everything back.

/// "No index": what a registration holds while it has none. Indices are
/// `u32` to keep nodes small; a slab never holds 4 billion entries.
pub(crate) const NIL: u32 = u32::MAX;

/// Slots per page: 32 × 24 bytes for the tree's entries, under 1 KiB.
const PAGE: usize = 32;

/// `free` of a page with every slot vacant.
const ALL_FREE: u32 = u32::MAX;

struct Page<T> {
    slots: [Option<T>; PAGE],
    /// Bit `j` set: slot `j` is vacant.
    free: u32,
}

impl<T> Page<T> {
    fn new() -> Box<Self> {
        Box::new(Page {
            slots: [const { None }; PAGE],
            free: ALL_FREE,
        })
    }
}

/// The entries after the head: pages, a freed one `None` until reused.
struct Pages<T> {
    table: Vec<Option<Box<Page<T>>>>,
    /// Entries in the pages.
    len: u32,
    /// No page before this one has a vacant slot.
    hint: u32,
    /// More than page 0 was needed at some point.
    burst: bool,
}

pub(crate) struct Slab<T> {
    /// Index 0: the common one-child, one-waiter case allocates nothing.
    head: Option<T>,
    /// Indices 1.. live in page `(i - 1) / PAGE`, slot `(i - 1) % PAGE`.
    /// Boxed, so that the slab costs one pointer in its node (32 bytes in
    /// all) until a second entry arrives; trailing freed pages are truncated.
    pages: Option<Box<Pages<T>>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            head: None,
            pages: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.pages.as_ref().map_or(0, |p| p.len as usize)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none() && self.pages.as_ref().is_none_or(|p| p.len == 0)
    }

    /// Stores `value` and returns its index (`NIL` in the impossible case of
    /// a slab past `u32` indices: the entry is then only reached by `drain`).
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        if self.head.is_none() {
            self.head = Some(value);
            return 0;
        }
        self.insert_in_pages(value)
    }

    fn insert_in_pages(&mut self, value: T) -> u32 {
        let pages = self.pages.get_or_insert_with(|| {
            Box::new(Pages {
                table: Vec::new(),
                len: 0,
                hint: 0,
                burst: false,
            })
        });
        // Pages before `hint` are full; the first page at or after it with
        // a vacant slot (or a freed page, or a new one) takes the entry.
        let mut p = pages.hint as usize;
        while let Some(Some(page)) = pages.table.get(p)
            && page.free == 0
        {
            p += 1;
        }
        if p == pages.table.len() {
            pages.burst |= p > 0;
            pages.table.push(None);
        }
        let page = pages.table[p].get_or_insert_with(Page::new);
        let slot = page.free.trailing_zeros() as usize;
        page.free &= !(1 << slot);
        page.slots[slot] = Some(value);
        pages.hint = p as u32;
        pages.len = pages.len.saturating_add(1);
        u32::try_from(1 + p * PAGE + slot).unwrap_or(NIL)
    }

    fn locate(index: u32) -> (usize, usize) {
        let i = index as usize - 1;
        (i / PAGE, i % PAGE)
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        match index {
            0 => self.head.as_mut(),
            NIL => None,
            _ => {
                let (p, slot) = Self::locate(index);
                let page = self.pages.as_mut()?.table.get_mut(p)?.as_mut()?;
                page.slots[slot].as_mut()
            }
        }
    }

    /// Removes and returns the entry at `index`, if there is one. A page
    /// that this leaves empty is freed (page 0 is kept).
    #[inline]
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        match index {
            0 => self.head.take(),
            NIL => None,
            _ => self.remove_from_pages(index),
        }
    }

    fn remove_from_pages(&mut self, index: u32) -> Option<T> {
        let (p, slot) = Self::locate(index);
        let pages = self.pages.as_mut()?;
        let page = pages.table.get_mut(p)?.as_mut()?;
        let value = page.slots[slot].take()?;
        page.free |= 1 << slot;
        if page.free == ALL_FREE && p > 0 {
            let table = &mut pages.table;
            table[p] = None;
            while table.last().is_some_and(Option::is_none) {
                table.pop();
            }
            if table.capacity() > 4 * table.len().max(1) {
                table.shrink_to(2 * table.len());
            }
        }
        pages.hint = pages.hint.min(p as u32);
        pages.len -= 1;
        // Empty after a burst (more pages than page 0 were ever needed): give
        // them back. A slab that only ever used page 0 keeps it.
        if pages.len == 0 && pages.burst {
            self.pages = None;
        }
        Some(value)
    }

    /// Calls `f` on every entry, in no particular order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        if let Some(value) = &self.head {
            f(value);
        }
        let Some(pages) = &self.pages else { return };
        for page in pages.table.iter().flatten() {
            page.slots.iter().flatten().for_each(&mut f);
        }
    }

    /// Hands every entry to `f`, emptying the slab and freeing its pages.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(T)) {
        if let Some(value) = self.head.take() {
            f(value);
        }
        let Some(pages) = self.pages.take() else {
            return;
        };
        for page in pages.table.into_iter().flatten() {
            page.slots.into_iter().flatten().for_each(&mut f);
        }
    }

    /// How many entries satisfy `f`.
    #[cfg(test)]
    pub(crate) fn count(&self, f: impl Fn(&T) -> bool) -> usize {
        let mut n = 0;
        self.for_each(|v| n += usize::from(f(v)));
        n
    }

    /// Bytes this slab holds on the heap: its page table and pages.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.pages.as_ref().map_or(0, |pages| {
            size_of::<Pages<T>>()
                + pages.table.capacity() * size_of::<Option<Box<Page<T>>>>()
                + pages.table.iter().flatten().count() * size_of::<Page<T>>()
        })
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
        assert_eq!(slab.get_mut(c), Some(&mut "c"));
        assert_eq!(slab.insert("d"), b, "freed slot is reused first");
        assert_eq!(slab.len(), 3);
        let mut seen = Vec::new();
        slab.for_each(|v| seen.push(*v));
        seen.sort_unstable();
        assert_eq!(seen, ["a", "c", "d"]);
        let mut all = Vec::new();
        slab.drain(|v| all.push(v));
        all.sort_unstable();
        assert_eq!(all, ["a", "c", "d"]);
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.remove(c), None, "indices from before drain() are dead");
        assert_eq!(slab.heap_bytes(), 0);
    }

    #[test]
    fn one_entry_needs_no_heap() {
        let mut slab = Slab::new();
        for i in 0..1000 {
            let idx = slab.insert(i);
            assert_eq!(idx, 0);
            assert_eq!(slab.remove(idx), Some(i));
        }
        assert_eq!(slab.heap_bytes(), 0);
    }

    #[test]
    fn two_entries_alternating_keep_one_page() {
        let mut slab = Slab::new();
        let first = slab.insert(0);
        let one_page = {
            let i = slab.insert(1);
            slab.remove(i);
            slab.heap_bytes()
        };
        let rounds = if cfg!(miri) { 20 } else { 1000 };
        for n in 0..rounds {
            let i = slab.insert(n);
            assert_eq!(i, 1);
            assert_eq!(slab.remove(i), Some(n));
            assert_eq!(slab.heap_bytes(), one_page);
        }
        assert_eq!(slab.remove(first), Some(0));
    }

    /// A burst with one survivor anywhere in it: the memory of the burst goes
    /// back, whatever index the survivor has.
    #[test]
    fn a_burst_is_given_back_whatever_survives() {
        // Under miri, enough for several pages; it runs ~1000x slower.
        let n = if cfg!(miri) { 80 } else { 100_000 };
        for survivor in [0, 1, n / 2, n - 1] {
            let mut slab = Slab::new();
            let ids: Vec<_> = (0..n).map(|i| slab.insert(i)).collect();
            assert!(slab.heap_bytes() >= (n as usize - 1) * size_of::<Option<u32>>());
            for (i, id) in ids.iter().enumerate() {
                if i as u32 != survivor {
                    assert_eq!(slab.remove(*id), Some(i as u32));
                }
            }
            assert_eq!(slab.len(), 1);
            // Page 0, the survivor's page, and the page table up to it (a
            // vector: up to twice its length).
            let table = 2 * (n as usize / PAGE + 1) * size_of::<usize>();
            assert!(
                slab.heap_bytes() <= 2 * size_of::<Page<u32>>() + table + 64,
                "survivor {survivor}: {} bytes kept",
                slab.heap_bytes()
            );
            assert_eq!(
                slab.get_mut(ids[survivor as usize]).copied(),
                Some(survivor)
            );
            assert_eq!(slab.remove(ids[survivor as usize]), Some(survivor));
            // A page only reachable through a stale hint is still found.
            let again: Vec<_> = (0..100).map(|i| slab.insert(i)).collect();
            assert_eq!(again[0], 0);
            assert_eq!(again[1..5], [1, 2, 3, 4]);
        }
    }

    #[test]
    fn out_of_range_indices_are_harmless() {
        let mut slab: Slab<u8> = Slab::new();
        assert_eq!(slab.remove(NIL), None);
        assert_eq!(slab.remove(5), None);
        assert_eq!(slab.remove(0), None);
        assert!(slab.get_mut(3).is_none());
        assert!(slab.get_mut(NIL).is_none());
        slab.insert(1);
        slab.insert(2);
        assert_eq!(slab.remove(40_000), None);
        assert!(slab.get_mut(40_000).is_none());
    }
}
