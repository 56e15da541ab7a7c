//! Fixed-rate sending: the schedule, not the replies, decides when each
//! message goes. One OS thread walks the merged schedule of every sender
//! ("lane") and sleeps with the kernel's timer (tens of µs late, where tokio's
//! timer wheel is up to 1 ms late). Each message carries its *intended* send
//! time, so latency counts from the schedule and a stalled server or load
//! generator cannot hide queueing (no coordinated omission). How late the
//! pacer itself was is recorded as `send_lag`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::stats::{new_hist, record, wall_us};

/// Sends message `seq` whose intended time is `intended_us`.
pub type SendFn = Box<dyn FnMut(u64, u64) + Send>;

/// One sender's schedule: `count` messages, the first at `first_us`
/// (wall µs), then every `interval_us`.
pub struct Lane {
    pub count: u64,
    pub first_us: u64,
    pub interval_us: f64,
    pub send: SendFn,
}

impl Lane {
    fn at(&self, seq: u64) -> u64 {
        self.first_us + (seq as f64 * self.interval_us) as u64
    }
}

/// `total` messages over `lanes` senders at `rate` per second in total,
/// starting at `start_us`; lanes are staggered evenly over one interval.
/// Returns (count, first_us, interval_us) of lane `j`.
pub fn split(total: u64, rate: f64, lanes: usize, j: usize, start_us: u64) -> (u64, u64, f64) {
    let lanes_u = lanes.max(1) as u64;
    let count = total / lanes_u + u64::from((j as u64) < total % lanes_u);
    let interval_us = 1e6 * lanes.max(1) as f64 / rate.max(1e-3);
    let first = start_us + (interval_us * j as f64 / lanes.max(1) as f64) as u64;
    (count, first, interval_us)
}

/// Runs the schedule to its end on the calling (blocking) thread; returns
/// the pacer's lag histogram. Returns early when `stop` says so.
pub fn run(mut lanes: Vec<Lane>, stop: impl Fn() -> bool) -> Histogram<u64> {
    let mut lag = new_hist();
    let mut heap: BinaryHeap<Reverse<(u64, usize, u64)>> = lanes
        .iter()
        .enumerate()
        .filter(|(_, l)| l.count > 0)
        .map(|(i, l)| Reverse((l.at(0), i, 0)))
        .collect();
    let mut checked = 0u32;
    while let Some(Reverse((at, lane, seq))) = heap.pop() {
        let now = wall_us();
        if at > now {
            std::thread::sleep(Duration::from_micros(at - now));
        }
        checked += 1;
        if checked.is_multiple_of(256) && stop() {
            break;
        }
        let l = &mut lanes[lane];
        (l.send)(seq, at);
        record(&mut lag, wall_us().saturating_sub(at));
        if seq + 1 < l.count {
            heap.push(Reverse((l.at(seq + 1), lane, seq + 1)));
        }
    }
    lag
}
