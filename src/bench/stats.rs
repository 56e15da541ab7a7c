//! Counting: latency histograms, sequence tracking (loss, duplicates,
//! reordering), the payload every load message carries, and the partial
//! result one load process hands to the coordinator.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch. Wall clock on purpose: every load
/// process and the payloads share it (one machine), so a message stamped in
/// one process can be timed in another.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Microseconds from 1 µs to 60 s at 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid histogram bounds")
}

/// Records `v` µs, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, v: u64) {
    h.saturating_record(v.clamp(1, 60_000_000));
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// The text of every load message: `<source>:<seq>:<intended send µs>`.
/// Only digits and colons, so no protocol needs to escape it.
pub fn payload(source: u32, seq: u64, intended_us: u64) -> String {
    format!("{source}:{seq}:{intended_us}")
}

/// Parses [`payload`]: (source, seq, intended µs).
pub fn parse_payload(text: &str) -> Option<(u32, u64, u64)> {
    let mut it = text.split(':');
    let s = it.next()?.parse().ok()?;
    let q = it.next()?.parse().ok()?;
    let t = it.next()?.parse().ok()?;
    Some((s, q, t))
}

/// What happened to one message, by its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    First,
    Duplicate,
}

/// The sequence numbers seen from one source: a bitset (sequence numbers are
/// dense from 0), the highest seen, and counters.
#[derive(Debug, Default, Clone)]
pub struct SeqTrack {
    bits: Vec<u64>,
    highest: Option<u64>,
    pub unique: u64,
    pub duplicates: u64,
    /// Messages that arrived after one with a higher sequence number.
    pub reordered: u64,
}

impl SeqTrack {
    pub fn record(&mut self, seq: u64) -> Seen {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return Seen::Duplicate;
        }
        self.bits[word] |= 1 << bit;
        self.unique += 1;
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
        Seen::First
    }
}

/// Counts from one load process (or one scenario part), merged by addition.
/// Histograms travel between processes as base64 of the HDR V2 encoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partial {
    pub clients: u64,
    pub connect_failures: u64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Error replies from the server (e.g. TOO_OFTEN) and failed operations.
    pub errors: u64,
    /// invite: invitations still open at the end (neither accepted nor failed).
    #[serde(default)]
    pub unanswered: u64,
    /// Wall µs of the last counted receipt.
    pub last_receipt_us: u64,
    /// Main latency (round trip, delivery or notification).
    #[serde(with = "hist_b64")]
    pub latency: Histogram<u64>,
    /// Second latency of a scenario (churn: cycle time; presence: login).
    #[serde(with = "hist_b64")]
    pub latency2: Histogram<u64>,
    /// How late the pacer sent, behind the schedule: the load generator's own lag.
    #[serde(with = "hist_b64")]
    pub send_lag: Histogram<u64>,
    pub first_error: Option<String>,
}

impl Default for Partial {
    fn default() -> Self {
        Partial::new()
    }
}

impl Partial {
    pub fn new() -> Partial {
        Partial {
            clients: 0,
            connect_failures: 0,
            sent: 0,
            expected: 0,
            received: 0,
            duplicates: 0,
            reordered: 0,
            errors: 0,
            unanswered: 0,
            last_receipt_us: 0,
            latency: new_hist(),
            latency2: new_hist(),
            send_lag: new_hist(),
            first_error: None,
        }
    }

    pub fn merge(&mut self, o: &Partial) {
        self.clients += o.clients;
        self.connect_failures += o.connect_failures;
        self.sent += o.sent;
        self.expected += o.expected;
        self.received += o.received;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.errors += o.errors;
        self.unanswered += o.unanswered;
        self.last_receipt_us = self.last_receipt_us.max(o.last_receipt_us);
        let _ = self.latency.add(&o.latency);
        let _ = self.latency2.add(&o.latency2);
        let _ = self.send_lag.add(&o.send_lag);
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }

    /// Adds what one tracker saw.
    pub fn add_track(&mut self, t: &SeqTrack) {
        self.received += t.unique;
        self.duplicates += t.duplicates;
        self.reordered += t.reordered;
    }

    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

mod hist_b64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut buf)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(buf))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_track_counts_duplicates_and_reordering() {
        let mut t = SeqTrack::default();
        for s in [0, 1, 3, 2, 3, 200, 4] {
            t.record(s);
        }
        assert_eq!(t.unique, 6);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 2); // 2 after 3, 4 after 200
    }

    #[test]
    fn payload_round_trip() {
        assert_eq!(parse_payload(&payload(7, 42, 123)), Some((7, 42, 123)));
        assert_eq!(parse_payload("x"), None);
    }

    #[test]
    fn partial_survives_json() {
        let mut p = Partial::new();
        record(&mut p.latency, 250);
        p.sent = 3;
        let back: Partial = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.sent, 3);
        assert_eq!(back.latency.len(), 1);
        assert_eq!(
            Latency::of(&back.latency).p50_us,
            Latency::of(&p.latency).p50_us
        );
    }
}
