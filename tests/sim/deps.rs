//! The simulated dependencies and Envoy's callout behaviour: what answer a
//! dispatched callout gets, and when.

use super::rng::Rng;
use meshprobe::outcome::DispatchError;

/// How a dependency behaves for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers this status after 1..max ms.
    Status(u16, u64),
    /// Never answers: Envoy answers 504 at the callout's timeout.
    Hang,
    /// Connection refused: Envoy answers 503 at once.
    Refused,
    /// Speaks garbage: Envoy answers 503 (protocol error) at once.
    Garbage,
    /// The answer breaks off after it began: no headers.
    BrokeOff,
    /// The host never answers at all (not Envoy's behaviour: the engine
    /// must keep its promises anyway).
    Never,
    /// The dispatch itself fails (no healthy upstream).
    NoUpstream,
}

pub fn random_mode(rng: &mut Rng, never: bool) -> Mode {
    match rng.below(16) {
        0..=6 => Mode::Status(200, 1 + rng.below(300)),
        7 => Mode::Status(500, 1 + rng.below(100)),
        8 => Mode::Status(204, 1 + rng.below(600)),
        9 => Mode::Hang,
        10 => Mode::Refused,
        11 => Mode::Garbage,
        12 => Mode::BrokeOff,
        13 if never => Mode::Never,
        13 => Mode::Hang,
        14 => Mode::NoUpstream,
        _ => Mode::Status(503, 1 + rng.below(50)),
    }
}

/// A callout's fate: answered at `at` with this status (`None`: no
/// headers) and body, never answered, or refused at dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Answer {
        at: u64,
        status: Option<u16>,
        body: Vec<u8>,
    },
    Never,
    Refused(DispatchError),
}

pub fn fate(mode: Mode, rng: &mut Rng, now: u64, timeout_ms: u64) -> Fate {
    let timed_out = || Fate::Answer {
        at: now + timeout_ms,
        status: Some(504),
        body: b"upstream request timeout".to_vec(),
    };
    match mode {
        Mode::Status(s, max) => {
            let lat = 1 + rng.below(max);
            if lat >= timeout_ms {
                timed_out()
            } else {
                Fate::Answer { at: now + lat, status: Some(s), body: b"ok".to_vec() }
            }
        }
        Mode::Hang => timed_out(),
        Mode::Refused => Fate::Answer {
            at: now + 1,
            status: Some(503),
            body: b"upstream connect error or disconnect/reset before headers. reset reason: connection failure".to_vec(),
        },
        Mode::Garbage => Fate::Answer {
            at: now + 2,
            status: Some(503),
            body: b"upstream connect error or disconnect/reset before headers. reset reason: protocol error".to_vec(),
        },
        Mode::BrokeOff => Fate::Answer { at: now + rng.below(timeout_ms.max(1)), status: None, body: Vec::new() },
        Mode::Never => Fate::Never,
        Mode::NoUpstream => Fate::Refused(DispatchError::FailedAtOnce),
    }
}
