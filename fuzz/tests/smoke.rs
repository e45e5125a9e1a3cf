//! The fuzz targets on stable Rust, without libFuzzer: each target runs on its seeds and then on
//! random mutations of them for `KRON_FUZZ_SECS` seconds (default 3). This is the CI smoke run;
//! the real fuzzing is `cargo fuzz run TARGET` (docs/reliability.md).
//!
//! `cargo test --release --no-default-features --manifest-path fuzz/Cargo.toml`

use std::path::Path;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[rustfmt::skip]
const DICT: &[&[u8]] = &[
    b"*", b"/", b",", b"-", b"L", b"W", b"#", b"?", b"@daily", b"@hourly", b"MON", b"JAN", b"59",
    b"60", b"0", b"31", b"ms", b"s", b"m", b"h", b"d", b"w", b"T", b"Z", b"+05:30", b"-", b":",
    b"2026-03-29T02:30:00", b"9999", b"\xff", b"{\"count\":", b"\"RUN_DUE\"", b"null", b"}",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            2 => {
                let i = rng.below(input.len() + 1);
                input.insert(i, rng.next() as u8);
            }
            3 => {
                let i = rng.below(input.len() + 1);
                let word = DICT[rng.below(DICT.len())];
                input.splice(i..i, word.iter().copied());
            }
            4 if input.len() > 1 => {
                let i = rng.below(input.len());
                input.truncate(i.max(1));
            }
            _ => {
                let i = rng.below(input.len() + 1);
                let b = b'0' + rng.below(10) as u8;
                input.insert(i, b);
            }
        }
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    out.push(Vec::new());
    out
}

fn smoke(target: &str, check: fn(&[u8])) {
    let secs: f64 = std::env::var("KRON_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let seeds = seeds(target);
    for seed in &seeds {
        check(seed);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut runs = seeds.len();
    while Instant::now() < deadline {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input);
        check(&input);
        runs += 1;
    }
    eprintln!("{target}: {runs} inputs");
}

#[test]
fn cron() {
    smoke("cron", kron_fuzz::cron);
}

#[test]
fn duration() {
    smoke("duration", kron_fuzz::duration);
}

#[test]
fn datetime() {
    smoke("datetime", kron_fuzz::datetime);
}

#[test]
fn stored_events() {
    smoke("stored_events", kron_fuzz::stored_events);
}

#[test]
fn db_file() {
    smoke("db_file", kron_fuzz::db_file);
}
