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
        format!(
            "{mode} {} {} QD {}{jobs}",
            human_bytes(self.bs as u64).replace(' ', ""),
            self.rw,
            self.iodepth
        )
    }
}
