//! A job: what every engine is asked to do (fio's vocabulary).

use std::fmt;
use std::time::Duration;

use clap::ValueEnum;

use crate::util::human_bytes;

/// The I/O pattern (`--rw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// Sequential reads.
    Read,
    /// Sequential writes.
    Write,
    /// Random reads.
    #[value(name = "randread")]
    RandRead,
    /// Random writes.
    #[value(name = "randwrite")]
    RandWrite,
    /// Random reads and writes, `--rwmixread` percent reads.
    #[value(name = "randrw")]
    RandRw,
}

impl Pattern {
    /// fio's name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Read => "read",
            Pattern::Write => "write",
            Pattern::RandRead => "randread",
            Pattern::RandWrite => "randwrite",
            Pattern::RandRw => "randrw",
        }
    }

    /// Whether offsets are random.
    pub fn is_random(self) -> bool {
        matches!(self, Pattern::RandRead | Pattern::RandWrite | Pattern::RandRw)
    }

    /// Whether the job writes.
    pub fn writes(self) -> bool {
        matches!(self, Pattern::Write | Pattern::RandWrite | Pattern::RandRw)
    }

    fn words(self) -> &'static str {
        match self {
            Pattern::Read => "sequential reads",
            Pattern::Write => "sequential writes",
            Pattern::RandRead => "random reads",
            Pattern::RandWrite => "random writes",
            Pattern::RandRw => "random reads and writes",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How random offsets are spread over the file (`--random_distribution`, fio's option).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Every block alike (fio's `random`).
    Uniform,
    /// Zipf with this exponent (fio's `zipf:THETA`): the block of popularity rank `k` is drawn
    /// with probability proportional to `k^-theta`, the ranks spread over the file by a fixed
    /// permutation.
    Zipf(f64),
}

impl Distribution {
    /// Reads fio's syntax: `random`, or `zipf:THETA` with THETA a number above 0.
    pub fn parse(s: &str) -> Result<Distribution, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("random") {
            return Ok(Distribution::Uniform);
        }
        let (name, value) = s.split_once(':').unwrap_or((s, ""));
        match name.to_ascii_lowercase().as_str() {
            "zipf" => {
                let theta: f64 = value.trim().parse().map_err(|_| {
                    format!("zipf needs its exponent, a number above 0: zipf:1.2, not {s:?}")
                })?;
                if !(theta.is_finite() && theta > 0.0) {
                    return Err(format!("the zipf exponent must be above 0, not {theta}"));
                }
                Ok(Distribution::Zipf(theta))
            }
            "pareto" | "normal" | "gauss" | "zoned" | "zoned_abs" => {
                Err(format!("{name} is not one of aio bench's distributions: random or zipf:THETA"))
            }
            _ => Err(format!("unknown distribution {s:?}: expected random or zipf:THETA")),
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Uniform => f.write_str("random"),
            Distribution::Zipf(theta) => write!(f, "zipf:{theta}"),
        }
    }
}

/// One job, as every engine runs it.
#[derive(Debug, Clone)]
pub struct Job {
    /// Short name (`direct-randread-qd32`), for JSON and the summary.
    pub name: String,
    /// The pattern.
    pub rw: Pattern,
    /// Percent of reads for `randrw`.
    pub rwmixread: u32,
    /// Bytes per request.
    pub bs: usize,
    /// Requests in flight per thread.
    pub iodepth: usize,
    /// Requests queued before the driver engines start them (fio's `iodepth_batch_submit`).
    pub iodepth_batch: usize,
    /// `O_DIRECT`.
    pub direct: bool,
    /// Threads.
    pub numjobs: usize,
    /// Bytes of the file the requests fall in.
    pub size: u64,
    /// How long each engine runs (in total over the rounds).
    pub runtime: Option<Duration>,
    /// How many bytes each thread of each engine transfers (in total over the rounds).
    pub io_size: Option<u64>,
    /// How random offsets are spread.
    pub dist: Distribution,
    /// Fixes what does not change from round to round: which blocks a Zipf job's ranks name.
    pub seed: u64,
    /// Read the whole file once before the job, so buffered reads hit the page cache.
    pub warm: bool,
    /// The file, as shown in messages.
    pub path_shown: String,
}

impl Job {
    /// What it does, in words: `O_DIRECT 4 KiB random reads, QD 32, 1 job`.
    pub fn title(&self) -> String {
        let mut t = String::new();
        if self.direct {
            t.push_str("O_DIRECT ");
        } else if self.warm {
            t.push_str("page-cache-hot ");
        } else {
            t.push_str("buffered ");
        }
        t.push_str(&format!("{} {}", human_bytes(self.bs as u64), self.rw.words()));
        if self.rw == Pattern::RandRw {
            t.push_str(&format!(" ({}% reads)", self.rwmixread));
        }
        if let Distribution::Zipf(theta) = self.dist {
            t.push_str(&format!(" (zipf:{theta})"));
        }
        t.push_str(&format!(", QD {}", self.iodepth));
        t.push_str(&match self.numjobs {
            1 => ", 1 job".to_string(),
            n => format!(", {n} jobs"),
        });
        t
    }

    /// A short label for the summary table's column: `O_DIRECT randread QD 32`.
    pub fn short(&self) -> String {
        let mode = if self.direct {
            "O_DIRECT"
        } else if self.warm {
            "cached"
        } else {
            "buffered"
        };
        let jobs = if self.numjobs > 1 { format!(" x{}", self.numjobs) } else { String::new() };
        let dist = match self.dist {
            Distribution::Uniform => String::new(),
            Distribution::Zipf(theta) => format!(" zipf:{theta}"),
        };
        format!(
            "{mode} {} {}{dist} QD {}{jobs}",
            human_bytes(self.bs as u64).replace(' ', ""),
            self.rw,
            self.iodepth
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_in_fio_syntax() {
        assert_eq!(Distribution::parse("random"), Ok(Distribution::Uniform));
        assert_eq!(Distribution::parse("zipf:1.2"), Ok(Distribution::Zipf(1.2)));
        assert_eq!(Distribution::parse("ZIPF:0.8"), Ok(Distribution::Zipf(0.8)));
        assert_eq!(Distribution::Zipf(1.2).to_string(), "zipf:1.2");
        assert_eq!(Distribution::Uniform.to_string(), "random");
        for bad in ["zipf", "zipf:", "zipf:0", "zipf:-1", "zipf:x", "zipf:inf", "pareto:0.5", "x"] {
            assert!(Distribution::parse(bad).is_err(), "{bad}");
        }
    }
}
