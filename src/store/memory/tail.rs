//! What an entry depends on and its key's text, in one allocation: the part of an entry a
//! hit reads only after an invalidation, or a removal by pattern.
//!
//! Dependencies are groups of words, each `[snapshot, n, id₁ … idₙ]`: the sequence number
//! a computation started at and the ids of the tags it read (see [`versions`](super::versions)).
//! An entry computed on its own has one group; one that read another cached entry adds
//! that entry's groups, each judged at its own snapshot.

/// Dependency groups and a key, packed: the groups' word count (4 bytes), the words
/// (8 bytes each, little-endian), then the key's UTF-8 bytes.
pub(super) struct Tail(Box<[u8]>);

const COUNT: usize = 4;
const WORD: usize = 8;

impl Tail {
    /// Packs `deps` (whole groups) and `key`.
    pub(super) fn new(deps: &[u64], key: &str) -> Tail {
        // A `u32` count: an entry would need 2³² tags to exceed it; more are cut (the
        // groups then end early, and an incomplete one reads as outdated).
        let words = deps.len().min(u32::MAX as usize);
        let mut bytes = Vec::with_capacity(COUNT + words * WORD + key.len());
        bytes.extend_from_slice(&(words as u32).to_le_bytes());
        for word in &deps[..words] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend_from_slice(key.as_bytes());
        Tail(bytes.into_boxed_slice())
    }

    fn words_len(&self) -> usize {
        let mut count = [0; COUNT];
        count.copy_from_slice(&self.0[..COUNT]);
        u32::from_le_bytes(count) as usize
    }

    /// The dependency words, in order.
    pub(super) fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.0[COUNT..COUNT + self.words_len() * WORD]
            .chunks_exact(WORD)
            .map(|chunk| {
                let mut word = [0; WORD];
                word.copy_from_slice(chunk);
                u64::from_le_bytes(word)
            })
    }

    /// The key's text.
    pub(super) fn key(&self) -> &str {
        // Written from a `&str` by `new`: always UTF-8.
        std::str::from_utf8(&self.0[COUNT + self.words_len() * WORD..]).unwrap_or_default()
    }
}

/// The dependency groups in `words`: `(snapshot, ids)` each, `ids` to be consumed before
/// the next group is asked for.
pub(super) fn for_each_group<I: Iterator<Item = u64>>(
    words: I,
    mut visit: impl FnMut(u64, &mut std::iter::Take<&mut I>) -> bool,
) -> bool {
    let mut words = words;
    while let Some(snapshot) = words.next() {
        let Some(n) = words.next() else {
            // Cut short: not a group this store wrote.
            return false;
        };
        let mut ids = words
            .by_ref()
            .take(usize::try_from(n).unwrap_or(usize::MAX));
        if !visit(snapshot, &mut ids) {
            return false;
        }
        // What `visit` left of the group.
        ids.for_each(drop);
    }
    true
}

/// The oldest snapshot among the groups in `words`.
pub(super) fn oldest(words: impl Iterator<Item = u64>) -> Option<u64> {
    let mut oldest = None::<u64>;
    for_each_group(words, |snapshot, _| {
        oldest = Some(oldest.map_or(snapshot, |o| o.min(snapshot)));
        true
    });
    oldest
}

/// The tag ids in the groups in `words`, in order.
pub(super) fn ids(words: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut out = Vec::new();
    for_each_group(words, |_, ids| {
        out.extend(ids);
        true
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_key_read_back() {
        let deps = [7, 2, 100, 200, 5, 1, 300];
        let tail = Tail::new(&deps, "songs:1");
        assert_eq!(tail.words().collect::<Vec<_>>(), deps);
        assert_eq!(tail.key(), "songs:1");
        assert_eq!(oldest(tail.words()), Some(5));
        assert_eq!(ids(tail.words()), [100, 200, 300]);
        let mut seen = Vec::new();
        assert!(for_each_group(tail.words(), |snapshot, ids| {
            // Leaves the group half read: the next one still starts right.
            seen.push((snapshot, ids.next()));
            true
        }));
        assert_eq!(seen, [(7, Some(100)), (5, Some(300))]);
    }

    #[test]
    fn an_entry_with_no_tags_keeps_its_snapshot() {
        let tail = Tail::new(&[9, 0], "");
        assert_eq!(oldest(tail.words()), Some(9));
        assert!(ids(tail.words()).is_empty());
        assert!(
            !for_each_group([1_u64].into_iter(), |_, _| true),
            "cut short"
        );
    }
}
