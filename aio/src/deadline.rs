//! Deadlines from timeouts of any size: a timeout the clock cannot add (up to
//! `Duration::MAX`) means no deadline — wait for as long as it takes — never an overflow.

use std::time::{Duration, Instant};

/// The instant `timeout` from now; `None` for no timeout, or one too large to reach.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// The time left until `deadline` (`None`: no limit), zero once it has passed.
pub(crate) fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_mean_no_deadline() {
        assert!(deadline(Some(Duration::MAX)).is_none());
        assert!(deadline(Some(Duration::from_secs(i64::MAX as u64))).is_none());
        assert!(deadline(None).is_none());
        let d = deadline(Some(Duration::from_secs(5))).expect("a reachable deadline");
        assert!(left(Some(d)).unwrap() <= Duration::from_secs(5));
        assert_eq!(left(None), None);
        assert_eq!(left(deadline(Some(Duration::ZERO))), Some(Duration::ZERO));
    }
}
