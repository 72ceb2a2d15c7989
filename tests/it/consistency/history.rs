//! The history of a consistency run and the checker that judges it.
//!
//! Every write gives the rows it touches a value never used before (a title `w<n>`), so a
//! read names the write it saw. Times are nanoseconds since the run began, taken just before
//! an operation starts and just after it returns. For each row the checker knows every
//! committed write: its value (a title, or `None` for a delete), when it started and when it
//! returned, and whether the row certainly existed when it ran (an update of a row that a
//! concurrent delete may have removed first is only a possible write).
//!
//! A read of a row that started at `s` and returned at `e` with value `v` is correct when
//! some write `W` of the row has value `v`, started before `e` (no value from the future),
//! and no certain write `W2` of the row started after `W` returned and returned before `s`
//! (plus the cross-instance bound when `W2` went through another instance): nothing newer
//! had certainly landed when the read began. A rolled-back write is no write: a read that
//! returns its value returns data that never existed. Counts are checked against the rows
//! that certainly existed and the rows that possibly existed during the read.

use std::collections::{BTreeMap, HashMap};

/// A row's value as the checker sees it: its title, or `None` for no row.
pub type Value = Option<String>;

/// One committed write of one row.
#[derive(Debug, Clone)]
pub struct Write {
    pub value: Value,
    pub start: u64,
    pub end: u64,
    /// The `Cache` instance the write went through.
    pub instance: usize,
    /// Whether the row certainly existed for it (inserts and deletes always; an update
    /// only if nothing could have deleted the row first).
    pub certain: bool,
}

/// One read of one row.
#[derive(Debug, Clone)]
pub struct Read {
    pub row: i32,
    pub value: Value,
    pub start: u64,
    pub end: u64,
    pub instance: usize,
    /// What read it: `by id`, `list`.
    pub via: &'static str,
}

/// One count.
#[derive(Debug, Clone)]
pub struct Count {
    pub value: u64,
    pub start: u64,
    pub end: u64,
    pub instance: usize,
}

/// Everything a run did.
#[derive(Debug, Default)]
pub struct History {
    pub writes: BTreeMap<i32, Vec<Write>>,
    pub reads: Vec<Read>,
    pub counts: Vec<Count>,
    /// Values written by transactions that rolled back.
    pub rolled_back: Vec<String>,
    /// Redis outages (fault injection), in the order they happened.
    pub outages: Vec<Outage>,
    /// The longest another instance's write may stay unseen during an outage, beyond the
    /// cross-instance bound: `CACHE_DEGRADED_MAX_AGE_MS` or the channel's silence deadline,
    /// whichever is longer, in nanoseconds.
    pub degraded: u64,
}

/// One Redis outage of a fault run, in the run's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// When the fault began.
    pub from: u64,
    /// When the fault was healed. From then until `to`, instances recover one by one: an
    /// instance whose breaker closed reads Redis, which holds another instance's outage
    /// writes only once that one has replayed them. `from` when a write may wait for its
    /// instance's replay while the other reads Redis at any time of the fault (Redis up for
    /// some operations and not others); `to` when no write waits for a replay.
    pub heal: u64,
    /// When every instance had recovered (breaker closed, outage writes replayed, channel
    /// back).
    pub to: u64,
    /// The instance cut off from Redis while the others reached it (a partition): its
    /// writes reach Redis, hence the others, only with its replay, once it is back.
    pub partitioned: Option<usize>,
}

impl History {
    pub fn operations(&self) -> usize {
        self.writes.values().map(Vec::len).sum::<usize>() + self.reads.len() + self.counts.len()
    }

    /// Marks the updates that a concurrent delete may have pre-empted as possible writes
    /// only. Deletes are final (ids are never reused), so an update is certain when no
    /// delete of its row started before it returned.
    pub fn settle(&mut self) {
        for writes in self.writes.values_mut() {
            let first_delete = writes
                .iter()
                .filter(|w| w.value.is_none())
                .map(|w| w.start)
                .min();
            for write in writes.iter_mut() {
                if write.value.is_some()
                    && !write.certain
                    && first_delete.is_none_or(|deleted| deleted > write.end)
                {
                    write.certain = true;
                }
            }
        }
    }

    /// Every violation, described; `bound` is the cross-instance allowance in nanoseconds
    /// (longer across an outage: see [`Lag`]).
    pub fn violations(&self, bound: u64) -> Vec<String> {
        let lag = Lag {
            bound,
            degraded: self.degraded,
            outages: &self.outages,
        };
        let mut found = Vec::new();
        let index: HashMap<i32, RowIndex<'_>> = self
            .writes
            .iter()
            .map(|(row, writes)| (*row, RowIndex::new(writes)))
            .collect();
        for read in &self.reads {
            if let Some(violation) = self.judge(read, index.get(&read.row), &lag) {
                found.push(violation);
            }
        }
        for count in &self.counts {
            if let Some(violation) = self.judge_count(count, &lag) {
                found.push(violation);
            }
        }
        found
    }

    fn judge(&self, read: &Read, index: Option<&RowIndex<'_>>, lag: &Lag<'_>) -> Option<String> {
        if let Some(value) = &read.value
            && self.rolled_back.contains(value)
        {
            return Some(format!(
                "{} read of row {} returned {value:?}, written by a transaction that rolled back",
                read.via, read.row
            ));
        }
        // Every row starts absent (the seed rows' inserts are writes like any other).
        let absent = Write {
            value: None,
            start: 0,
            end: 0,
            instance: read.instance,
            certain: true,
        };
        let empty = Vec::new();
        let candidates = index
            .and_then(|index| index.by_value.get(&read.value))
            .unwrap_or(&empty)
            .iter()
            .copied()
            .chain(read.value.is_none().then_some(&absent))
            .filter(|w| w.start < read.end);
        let mut seen_any = false;
        for write in candidates {
            seen_any = true;
            let superseded = index.is_some_and(|index| index.superseded(write, read, lag));
            if !superseded {
                return None;
            }
        }
        let writes = self.writes.get(&read.row).map_or(&[][..], Vec::as_slice);
        Some(if seen_any {
            format!(
                "stale {} read of row {} (instance {}, {}..{} ns): {:?}, though a newer write had returned before it began; the row's writes: {}",
                read.via,
                read.row,
                read.instance,
                read.start,
                read.end,
                read.value,
                describe(writes)
            )
        } else {
            format!(
                "{} read of row {} returned {:?}, which no write had started to write; the row's writes: {}",
                read.via,
                read.row,
                read.value,
                describe(writes)
            )
        })
    }

    fn judge_count(&self, count: &Count, lag: &Lag<'_>) -> Option<String> {
        let hidden = |w: &Write| lag.hidden(w.end, w.instance, count.instance, count.start);
        let (mut least, mut most) = (0_u64, 0_u64);
        for writes in self.writes.values() {
            // A row's first write is its insert: updates pick rows whose insert returned.
            let Some(insert) = writes.iter().find(|w| w.value.is_some()) else {
                continue;
            };
            let (delete_start, delete_hidden) = writes
                .iter()
                .find(|w| w.value.is_none())
                .map_or((u64::MAX, true), |d| (d.start, hidden(d)));
            // Certainly there: inserted before the count began, not deleted before it ended.
            if !hidden(insert) && delete_start > count.end {
                least += 1;
            }
            // Possibly there: inserted before it ended, not certainly gone before it began.
            if insert.start < count.end && delete_hidden {
                most += 1;
            }
        }
        (count.value < least || count.value > most).then(|| {
            format!(
                "count on instance {} ({}..{} ns) returned {}, outside what the rows allow: {least}..={most}",
                count.instance, count.start, count.end, count.value
            )
        })
    }
}

/// Whether a write through one instance may still be unseen by a read through another.
///
/// Normally for `bound` after it returned. During a Redis outage (a write that returned
/// within `bound` before the fault began included: its message may have been lost with the
/// connection), also for `degraded` more — the README's *During an outage*: process memory
/// serves nothing older than `CACHE_DEGRADED_MAX_AGE_MS`, and a silent channel is trusted no
/// longer — and from the outage's [`heal`](Outage::heal) until `bound` after every instance
/// recovered: an instance back on Redis reads what Redis holds, and another instance's
/// outage write reaches Redis with that instance's replay.
struct Lag<'a> {
    bound: u64,
    degraded: u64,
    outages: &'a [Outage],
}

impl Lag<'_> {
    /// Whether a write through instance `by` that returned at `end` may be unseen by a read
    /// through instance `to` that began at `at`.
    fn hidden(&self, end: u64, by: usize, to: usize, at: u64) -> bool {
        if at <= end {
            return true;
        }
        if by == to {
            return false;
        }
        if at <= end.saturating_add(self.bound) {
            return true;
        }
        self.outages.iter().any(|outage| {
            let during = end.saturating_add(self.bound) >= outage.from && end <= outage.to;
            if outage.partitioned == Some(by) {
                // Unseen by the others until its instance is back and has replayed it.
                return during && at <= outage.to.saturating_add(self.bound);
            }
            during
                && (at <= end.saturating_add(self.degraded).saturating_add(self.bound)
                    || (outage.heal <= at && at <= outage.to.saturating_add(self.bound)))
        })
    }
}

/// One row's writes, indexed for judging reads: by value, and its certain writes by start.
struct RowIndex<'a> {
    by_value: HashMap<&'a Value, Vec<&'a Write>>,
    certain: Vec<&'a Write>,
}

impl<'a> RowIndex<'a> {
    fn new(writes: &'a [Write]) -> Self {
        let mut by_value: HashMap<&Value, Vec<&Write>> = HashMap::new();
        for write in writes {
            by_value.entry(&write.value).or_default().push(write);
        }
        let mut certain: Vec<&Write> = writes.iter().filter(|w| w.certain).collect();
        certain.sort_by_key(|w| w.start);
        RowIndex { by_value, certain }
    }

    /// Whether a certain write that started after `write` returned was visible to `read`'s
    /// instance (see [`Lag`]) when `read` began. Only writes that started between the two
    /// can be: a correct read looks at few.
    fn superseded(&self, write: &Write, read: &Read, lag: &Lag<'_>) -> bool {
        let first = self.certain.partition_point(|w| w.start <= write.end);
        self.certain[first..]
            .iter()
            .take_while(|w| w.start < read.start)
            .any(|w| !lag.hidden(w.end, w.instance, read.instance, read.start))
    }
}

fn describe(writes: &[Write]) -> String {
    let all: Vec<String> = writes
        .iter()
        .map(|w| {
            format!(
                "{:?}@{}..{}{}{}",
                w.value,
                w.start,
                w.end,
                if w.instance == 0 { "" } else { " (instance 1)" },
                if w.certain { "" } else { " (possible)" }
            )
        })
        .collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(value: Option<&str>, start: u64, end: u64) -> Write {
        Write {
            value: value.map(str::to_owned),
            start,
            end,
            instance: 0,
            certain: true,
        }
    }

    fn read(value: Option<&str>, start: u64, end: u64) -> Read {
        Read {
            row: 1,
            value: value.map(str::to_owned),
            start,
            end,
            instance: 0,
            via: "by id",
        }
    }

    fn history(writes: Vec<Write>, reads: Vec<Read>) -> History {
        let mut h = History::default();
        h.writes.insert(1, writes);
        h.reads = reads;
        h
    }

    #[test]
    fn the_checker_catches_stale_future_and_phantom_reads() {
        let writes = vec![write(Some("w1"), 10, 20), write(Some("w2"), 30, 40)];
        // Correct: the latest before the read, or a concurrent one.
        let ok = history(
            writes.clone(),
            vec![
                read(Some("w1"), 25, 28),
                read(Some("w1"), 35, 45),
                read(Some("w2"), 35, 45),
                read(Some("w2"), 50, 60),
                read(None, 5, 15),
            ],
        );
        assert!(ok.violations(0).is_empty(), "{:?}", ok.violations(0));
        // Stale: w2 returned at 40, the read began at 50.
        let stale = history(writes.clone(), vec![read(Some("w1"), 50, 60)]);
        assert_eq!(stale.violations(0).len(), 1);
        // ...unless it went through another instance, within the bound.
        let mut other = history(writes.clone(), vec![read(Some("w1"), 50, 60)]);
        other.reads[0].instance = 1;
        assert!(other.violations(20).is_empty());
        assert_eq!(other.violations(5).len(), 1);
        // From the future: w2 started at 30, the read ended at 28.
        let future = history(writes.clone(), vec![read(Some("w2"), 21, 28)]);
        assert_eq!(future.violations(0).len(), 1);
        // Absent after the insert returned.
        let gone = history(writes.clone(), vec![read(None, 21, 28)]);
        assert_eq!(gone.violations(0).len(), 1);
        // Never written, or rolled back.
        let phantom = history(writes.clone(), vec![read(Some("w9"), 50, 60)]);
        assert_eq!(phantom.violations(0).len(), 1);
        let mut rolled = history(writes, vec![read(Some("w3"), 50, 60)]);
        rolled.rolled_back.push("w3".into());
        assert!(rolled.violations(0)[0].contains("rolled back"));
    }

    #[test]
    fn across_an_outage_another_instance_may_lag_by_the_degraded_bound_and_during_recovery() {
        // w2 returned at 40, during an outage from 35, healed at 70, recovered at 100; the
        // degraded bound is 10, the cross-instance bound 5.
        let writes = vec![write(Some("w1"), 10, 20), write(Some("w2"), 30, 40)];
        let mut h = history(writes, vec![read(Some("w1"), 50, 55)]);
        h.reads[0].instance = 1;
        h.degraded = 10;
        h.outages.push(Outage {
            from: 35,
            heal: 70,
            to: 100,
            partitioned: None,
        });
        // Within the degraded bound (40 + 10 + 5).
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        h.reads[0].start = 55;
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        // Past it, the outage still on: stale (memory serves nothing that old).
        h.reads[0].start = 56;
        assert_eq!(h.violations(5).len(), 1);
        h.reads[0].start = 69;
        assert_eq!(h.violations(5).len(), 1);
        // Healed, instances recovering: w2 reaches Redis with its instance's replay.
        h.reads[0].start = 70;
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        h.reads[0].start = 105;
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        // After the recovery and the bound: stale.
        h.reads[0].start = 106;
        assert_eq!(h.violations(5).len(), 1);
        // The writer's own instance never lags, outage or not.
        h.reads[0].start = 50;
        h.reads[0].instance = 0;
        assert_eq!(h.violations(5).len(), 1);
        // A fault whose writes may wait for a replay while Redis answers the other
        // instance (heal = from): the whole span.
        h.reads[0].instance = 1;
        h.reads[0].start = 60;
        h.outages[0].heal = 35;
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        // A write that returned just before the outage began (within the bound) is covered
        // too: its message may have been lost with the connection.
        h.outages = vec![Outage {
            from: 43,
            heal: 43,
            to: 100,
            partitioned: None,
        }];
        h.reads[0].start = 90;
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        h.outages = vec![Outage {
            from: 60,
            heal: 60,
            to: 100,
            partitioned: None,
        }];
        assert_eq!(h.violations(5).len(), 1);
    }

    #[test]
    fn a_partitioned_instance_s_writes_may_stay_unseen_by_the_others_until_it_is_back() {
        // w2 returned at 40 through instance 0, cut off from Redis from 35 (healed at 90,
        // recovered at 100) while instance 1 kept reaching Redis.
        let writes = vec![write(Some("w1"), 10, 20), write(Some("w2"), 30, 40)];
        let mut h = history(writes, vec![read(Some("w1"), 80, 85)]);
        h.reads[0].instance = 1;
        h.degraded = 10;
        h.outages.push(Outage {
            from: 35,
            heal: 90,
            to: 100,
            partitioned: Some(0),
        });
        // Past the degraded bound, before the heal: w2 is not in Redis yet.
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        h.reads[0].start = 105;
        assert!(h.violations(5).is_empty(), "{:?}", h.violations(5));
        h.reads[0].start = 106;
        assert_eq!(h.violations(5).len(), 1, "replayed by then");
        // The partitioned instance reading another's write: its memory's bound only.
        h.outages[0].partitioned = Some(1);
        h.reads[0].start = 80;
        assert_eq!(
            h.violations(5).len(),
            1,
            "the degraded bound holds for the cut-off reader"
        );
    }

    #[test]
    fn a_later_write_past_the_outage_is_judged_on_its_own() {
        // w2 returned inside the outage with a long degraded bound; w3 returned after the
        // outage and its bound: a read at 130 that still shows w1 or w2 is stale, though w2
        // alone would be within its degraded bound.
        let writes = vec![
            write(Some("w1"), 10, 20),
            write(Some("w2"), 30, 95),
            write(Some("w3"), 110, 120),
        ];
        let mut h = history(writes, vec![read(Some("w2"), 130, 135)]);
        h.reads[0].instance = 1;
        h.degraded = 100;
        h.outages.push(Outage {
            from: 35,
            heal: 35,
            to: 100,
            partitioned: None,
        });
        assert_eq!(h.violations(5).len(), 1, "w3 had landed");
        h.reads[0].value = Some("w1".into());
        assert_eq!(h.violations(5).len(), 1, "w3 had landed");
    }

    #[test]
    fn counts_must_lie_between_the_certain_and_the_possible_rows() {
        let mut h = History::default();
        h.writes.insert(1, vec![write(Some("a"), 0, 1)]);
        h.writes
            .insert(2, vec![write(Some("b"), 0, 1), write(None, 50, 60)]);
        h.writes.insert(3, vec![write(Some("c"), 55, 65)]);
        let count = |value, start, end| Count {
            value,
            start,
            end,
            instance: 0,
        };
        h.counts = vec![count(2, 10, 20), count(2, 70, 80), count(2, 52, 58)];
        assert!(h.violations(0).is_empty(), "{:?}", h.violations(0));
        h.counts = vec![count(1, 10, 20)];
        assert_eq!(h.violations(0).len(), 1, "row 2 was certainly there");
        h.counts = vec![count(3, 70, 80)];
        assert_eq!(h.violations(0).len(), 1, "row 2 was certainly gone");
    }

    #[test]
    fn an_update_a_delete_may_have_preempted_is_only_possible() {
        let mut h = history(
            vec![
                write(Some("w1"), 0, 1),
                Write {
                    certain: false,
                    ..write(Some("w2"), 10, 30)
                },
                write(None, 20, 25),
            ],
            vec![read(None, 40, 50)],
        );
        h.settle();
        assert!(!h.writes[&1][1].certain);
        assert!(h.violations(0).is_empty(), "{:?}", h.violations(0));
    }
}
