//! The redb backend across processes: 16 processes racing on one file, child processes
//! killed with SIGKILL at random points, and one killed right after a commit it answered. The children are this test binary re-invoked on the
//! ignored test `child_process`, told what to do by environment variables.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use laissez_ledger::{Begin, Cti, LeaseToken, Outcome, RedbLedger, UseState};

const MODE: &str = "LAISSEZ_LEDGER_CHILD";
const FILE: &str = "LAISSEZ_LEDGER_FILE";
const PROC: &str = "LAISSEZ_LEDGER_PROC";
const SEED: &str = "LAISSEZ_LEDGER_SEED";
const ROUND: &str = "LAISSEZ_LEDGER_ROUND";
const START_MS: &str = "LAISSEZ_LEDGER_START_MS";

const RACE_PROCESSES: usize = 16;
const RACE_ROUNDS: u64 = 30;
const CRASH_ROUNDS: u64 = 20;
const CRASH_CHILDREN: usize = 3;
const CTIS_PER_CRASH_ROUND: u64 = 16;
const MAX_USES: u64 = 5;

/// The cti numbered `n` in a test run.
fn cti(seed: u64, n: u64) -> Cti {
    let mut cti = [0u8; 16];
    cti[..8].copy_from_slice(&seed.to_be_bytes());
    cti[8..].copy_from_slice(&n.to_be_bytes());
    cti
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).unwrap().parse().unwrap()
}

fn now_ms() -> u64 {
    now_us() / 1000
}

/// The wall clock in unix microseconds: one clock for every process on the host.
fn now_us() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// xorshift64*, seeded from the OS: enough to pick ids and kill times.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let bytes = *LeaseToken::random().unwrap().as_bytes();
        Self(u64::from_le_bytes(bytes[..8].try_into().unwrap()) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Not a test: the body of the child processes. Ignored so that it runs only when a parent
/// asks for it by name.
#[test]
#[ignore = "child process of the multi-process tests, which run it themselves"]
fn child_process() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let ledger = RedbLedger::open(std::env::var(FILE).unwrap()).unwrap();
    let proc = env_u64(PROC);
    let seed = env_u64(SEED);
    let mut out = std::io::stdout().lock();
    // The harness has printed `test child_process ... ` without a newline: end that line.
    writeln!(out).unwrap();
    match mode.as_str() {
        "chain_race" => {
            let start = env_u64(START_MS);
            while now_ms() < start {
                std::thread::sleep(Duration::from_millis(1));
            }
            for round in 0..RACE_ROUNDS {
                // A parent with 3 uses, three children with 3 each, this process's call under
                // one of them.
                let parent = cti(seed, 1_000 + round);
                let child = cti(seed, 2_000 + 3 * round + proc % 3);
                let up = [laissez_ledger::Ancestor {
                    cti: &parent,
                    max_uses: 3,
                    expires_at: in_an_hour(),
                    charges: &[],
                }];
                let id = format!("proc{proc}");
                let mut r = req(&child, &id, 3, WRITE);
                r.ancestors = &up;
                let answer = match ledger.begin_blocking(&r).unwrap() {
                    Outcome::Granted { .. } => "granted",
                    Outcome::Exhausted => "exhausted",
                    other => panic!("unexpected {other:?}"),
                };
                writeln!(out, "CHAIN {round} {answer}").unwrap();
            }
        }
        "budget_race" => {
            let start = env_u64(START_MS);
            while now_ms() < start {
                std::thread::sleep(Duration::from_millis(1));
            }
            for round in 0..RACE_ROUNDS {
                // One budget of RACE_LIMIT, two calls of this process's amounts against it.
                let cti = cti(seed, 5_000 + round);
                for k in 0..2 {
                    let id = format!("proc{proc}-msg{k}");
                    let charge = [budgets::refund(
                        0,
                        budgets::RACE_LIMIT,
                        budgets::race_amount(proc as usize, k),
                    )];
                    let spent = match ledger
                        .begin_blocking(&budgets::spend(&cti, &id, &charge))
                        .unwrap()
                    {
                        Outcome::Granted { .. } => charge[0].amount,
                        Outcome::BudgetExhausted { .. } => 0,
                        other => panic!("unexpected {other:?}"),
                    };
                    writeln!(out, "BUDGET {round} {spent}").unwrap();
                }
            }
        }
        "race" => {
            // Start together, so that the processes contend.
            let start = env_u64(START_MS);
            while now_ms() < start {
                std::thread::sleep(Duration::from_millis(1));
            }
            for round in 0..RACE_ROUNDS {
                let cti = cti(seed, round);
                for k in 0..2 {
                    let id = format!("proc{proc}-msg{k}");
                    let began = now_us();
                    let outcome = ledger.begin_blocking(&req(&cti, &id, MAX_USES, WRITE));
                    let ended = now_us();
                    let answer = match outcome.unwrap() {
                        Outcome::Granted { use_number, .. } => use_number.to_string(),
                        Outcome::Exhausted => "exhausted".to_owned(),
                        other => panic!("unexpected {other:?}"),
                    };
                    // When the begin was in flight, so that the parent can see the contention.
                    writeln!(out, "RACE {round} {id} {answer} {began} {ended}").unwrap();
                }
            }
            out.flush().unwrap();
        }
        "crash" => {
            let round = env_u64(ROUND);
            let mut rng = Rng::new();
            loop {
                let n = round * CTIS_PER_CRASH_ROUND + rng.below(CTIS_PER_CRASH_ROUND);
                let cti = cti(seed, n);
                let id = format!("msg{}", rng.below(8));
                let req = Begin {
                    cti: &cti,
                    message_id: &id,
                    max_uses: MAX_USES,
                    expires_at: in_an_hour(),
                    lease: Duration::from_millis(100),
                    tool: TOOL,
                    // Some messages at most once. One message id keeps one class (as the
                    // worker's catalogue gives it): else the ledger refuses it as another call.
                    class: if id.ends_with(['0', '1']) {
                        DESTRUCTIVE
                    } else {
                        WRITE
                    },
                    ancestors: &[],
                    charges: &[],
                };
                if let Outcome::Granted {
                    use_number, lease, ..
                } = ledger.begin_blocking(&req).unwrap()
                {
                    // Reported only once begin has returned: the grant must be durable by now.
                    writeln!(out, "GRANT {n} {id} {use_number}").unwrap();
                    out.flush().unwrap();
                    match rng.below(3) {
                        0 => {
                            ledger.complete_blocking(&cti, &id, &lease).unwrap();
                            writeln!(out, "DONE {n} {id}").unwrap();
                            out.flush().unwrap();
                        }
                        1 => ledger.release_blocking(&cti, &id, &lease).unwrap(),
                        // Left in flight, as a worker that dies before acking leaves it.
                        _ => {}
                    }
                }
            }
        }
        "grant_and_wait" => {
            // One grant at a time, each answered only once begin (its commit) has returned;
            // then wait for the parent's word (which, at its chosen grant, is SIGKILL).
            let cti = cti(seed, 0);
            let mut stdin = std::io::stdin().lock();
            for i in 0.. {
                let id = format!("m{i}");
                let outcome = ledger.begin_blocking(&req(&cti, &id, 1000, WRITE)).unwrap();
                assert!(matches!(outcome, Outcome::Granted { .. }), "{outcome:?}");
                writeln!(out, "GRANTED {i}").unwrap();
                out.flush().unwrap();
                let mut word = String::new();
                if stdin.read_line(&mut word).unwrap() == 0 {
                    break;
                }
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(path: &Path, mode: &str, proc: usize, seed: u64, extra: &[(&str, u64)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &laissez_test_support::test_name(module_path!(), "child_process"),
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(MODE, mode)
    .env(FILE, path)
    .env(PROC, proc.to_string())
    .env(SEED, seed.to_string())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v.to_string());
    }
    cmd.spawn().unwrap()
}

/// Reads a child's stdout to the end, keeping only whole lines (a kill can cut the last one).
fn read_lines(child: &mut Child) -> std::thread::JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.ends_with(b"\n") => {
                    lines.push(String::from_utf8_lossy(&buf).trim_end().to_owned());
                }
                Ok(_) => break,
            }
        }
        lines
    })
}

fn seed() -> u64 {
    u64::from_le_bytes(
        LeaseToken::random().unwrap().as_bytes()[..8]
            .try_into()
            .unwrap(),
    )
}

/// How many processes the race must have seen in flight at once on one cti.
const MIN_CONTENDING: usize = 4;

/// The most distinct processes whose `[began, ended]` intervals all contain one instant.
fn most_at_once(begins: &[(u64, u64, String)]) -> usize {
    begins
        .iter()
        .map(|(at, _, _)| {
            begins
                .iter()
                .filter(|(began, ended, _)| began <= at && at <= ended)
                .map(|(_, _, proc)| proc)
                .collect::<BTreeSet<_>>()
                .len()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn redb_chain_race_16_processes_on_one_file() {
    // Delegated uses across processes: a parent's 3 uses cap its three children together.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    drop(RedbLedger::open(&path).unwrap());
    let seed = seed();
    let start = now_ms() + 1500;
    let mut children: Vec<Child> = (0..RACE_PROCESSES)
        .map(|p| spawn_child(&path, "chain_race", p, seed, &[(START_MS, start)]))
        .collect();
    let readers: Vec<_> = children.iter_mut().map(read_lines).collect();
    for child in &mut children {
        assert!(child.wait().unwrap().success(), "a chain race child failed");
    }
    let mut granted: BTreeMap<u64, usize> = BTreeMap::new();
    let mut answers = 0;
    for reader in readers {
        for line in reader.join().unwrap() {
            let Some(rest) = line.strip_prefix("CHAIN ") else {
                continue;
            };
            answers += 1;
            let (round, answer) = rest.split_once(' ').unwrap();
            if answer == "granted" {
                *granted.entry(round.parse().unwrap()).or_default() += 1;
            }
        }
    }
    assert_eq!(answers, RACE_PROCESSES * RACE_ROUNDS as usize);
    for round in 0..RACE_ROUNDS {
        assert_eq!(granted.get(&round), Some(&3), "round {round}: {granted:?}");
    }
}

#[test]
fn redb_budget_race_16_processes_on_one_file() {
    // 16 processes spend one budget per round: the sum never passes the limit, and the file
    // holds exactly the granted amounts.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    drop(RedbLedger::open(&path).unwrap());
    let seed = seed();
    let start = now_ms() + 1500;
    let mut children: Vec<Child> = (0..RACE_PROCESSES)
        .map(|p| spawn_child(&path, "budget_race", p, seed, &[(START_MS, start)]))
        .collect();
    let readers: Vec<_> = children.iter_mut().map(read_lines).collect();
    for child in &mut children {
        assert!(
            child.wait().unwrap().success(),
            "a budget race child failed"
        );
    }
    let mut spent: BTreeMap<u64, u64> = BTreeMap::new();
    let mut answers = 0;
    for reader in readers {
        for line in reader.join().unwrap() {
            let Some(rest) = line.strip_prefix("BUDGET ") else {
                continue;
            };
            answers += 1;
            let (round, amount) = rest.split_once(' ').unwrap();
            *spent.entry(round.parse().unwrap()).or_default() += amount.parse::<u64>().unwrap();
        }
    }
    assert_eq!(answers, 2 * RACE_PROCESSES * RACE_ROUNDS as usize);
    let ledger = RedbLedger::open(&path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for round in 0..RACE_ROUNDS {
        let total = spent.get(&round).copied().unwrap_or(0);
        let cti = cti(seed, 5_000 + round);
        runtime.block_on(budgets::assert_spent(&ledger, &cti, total, round as usize));
    }
}

#[test]
fn redb_race_16_processes_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    // Create the file first, so that the children race on begins rather than on creation.
    drop(RedbLedger::open(&path).unwrap());
    let seed = seed();
    let start = now_ms() + 1500;
    let mut children: Vec<Child> = (0..RACE_PROCESSES)
        .map(|p| spawn_child(&path, "race", p, seed, &[(START_MS, start)]))
        .collect();
    let readers: Vec<_> = children.iter_mut().map(read_lines).collect();
    for child in &mut children {
        assert!(child.wait().unwrap().success(), "a race child failed");
    }
    // round -> message id -> use number, as the processes were told.
    let mut told: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    // round -> (began, ended, process) of every begin on that round's cti.
    let mut in_flight: BTreeMap<u64, Vec<(u64, u64, String)>> = BTreeMap::new();
    let mut answers = 0;
    for reader in readers {
        for line in reader.join().unwrap() {
            let Some(rest) = line.strip_prefix("RACE ") else {
                continue;
            };
            answers += 1;
            let parts: Vec<&str> = rest.split(' ').collect();
            let round: u64 = parts[0].parse().unwrap();
            let proc = parts[1].split('-').next().unwrap().to_owned();
            in_flight.entry(round).or_default().push((
                parts[3].parse().unwrap(),
                parts[4].parse().unwrap(),
                proc,
            ));
            if let Ok(n) = parts[2].parse::<u64>() {
                told.entry(round)
                    .or_default()
                    .insert(parts[1].to_owned(), n);
            }
        }
    }
    assert_eq!(answers, RACE_PROCESSES as u64 * RACE_ROUNDS * 2);
    // The processes must really have raced: several of them with a begin in flight on the same
    // cti at the same instant. Otherwise they may have taken turns, and exact counts would
    // prove nothing about exclusion across processes.
    let most = in_flight.values().map(|b| most_at_once(b)).max().unwrap();
    eprintln!("race test: at most {most} processes in flight at once on one cti");
    assert!(
        most >= MIN_CONTENDING,
        "at most {most} processes were ever in flight at once on one cti: no race"
    );
    let ledger = RedbLedger::open(&path).unwrap();
    for round in 0..RACE_ROUNDS {
        let grants = told.remove(&round).unwrap_or_default();
        let numbers: BTreeSet<u64> = grants.values().copied().collect();
        assert_eq!(grants.len() as u64, MAX_USES, "round {round}: {grants:?}");
        assert_eq!(numbers, (1..=MAX_USES).collect(), "round {round}");
        let usage = ledger.usage_blocking(&cti(seed, round)).unwrap();
        assert_eq!(usage.granted, MAX_USES);
        let stored: BTreeMap<String, u64> = usage
            .messages
            .into_iter()
            .map(|m| (m.message_id, m.use_number))
            .collect();
        assert_eq!(stored, grants, "round {round}");
    }
}

#[test]
fn redb_survives_children_killed_at_random_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    drop(RedbLedger::open(&path).unwrap());
    let seed = seed();
    let mut rng = Rng::new();
    // (cti number, message id) -> the use number a child was told.
    let mut granted_to: BTreeMap<(u64, String), u64> = BTreeMap::new();
    let mut completed: BTreeSet<(u64, String)> = BTreeSet::new();
    // Children still running when killed, and those of them that had been granted something:
    // killed mid-work, which is what the test is about.
    let mut killed_running = 0u64;
    let mut killed_working = 0u64;
    for round in 0..CRASH_ROUNDS {
        let mut children: Vec<Child> = (0..CRASH_CHILDREN)
            .map(|p| spawn_child(&path, "crash", p, seed, &[(ROUND, round)]))
            .collect();
        let readers: Vec<_> = children.iter_mut().map(read_lines).collect();
        let began = Instant::now();
        for (p, child) in children.iter_mut().enumerate() {
            let at = Duration::from_millis(50 + rng.below(400));
            std::thread::sleep(at.saturating_sub(began.elapsed()));
            // A child loops until killed: one that has already exited failed on its own.
            match child.try_wait().unwrap() {
                None => killed_running += 1,
                Some(status) => eprintln!("round {round}: child {p} exited by itself: {status}"),
            }
            // SIGKILL: no destructors, no flush, mid-commit or not.
            child.kill().unwrap();
            child.wait().unwrap();
        }
        for reader in readers {
            let lines = reader.join().unwrap();
            killed_working += u64::from(lines.iter().any(|l| l.starts_with("GRANT ")));
            for line in lines {
                let parts: Vec<&str> = line.split(' ').collect();
                match parts[0] {
                    "GRANT" => {
                        let key = (parts[1].parse().unwrap(), parts[2].to_owned());
                        let n: u64 = parts[3].parse().unwrap();
                        // A take-over keeps the use number it was first granted under.
                        if let Some(before) = granted_to.insert(key.clone(), n) {
                            assert_eq!(before, n, "{key:?} changed its use number");
                        }
                    }
                    "DONE" => {
                        completed.insert((parts[1].parse().unwrap(), parts[2].to_owned()));
                    }
                    _ => {}
                }
            }
        }
    }
    eprintln!(
        "crash test: {} grants, {} completed, {killed_running} children killed while running, \
         {killed_working} of them after being granted",
        granted_to.len(),
        completed.len()
    );
    // Every child was killed, none stopped by itself (an error in it, which the test would
    // otherwise pass over).
    assert_eq!(
        killed_running,
        CRASH_ROUNDS * CRASH_CHILDREN as u64,
        "a child exited before it was killed (see its stderr above)"
    );
    // Children killed before doing anything would make this test vacuous: on average at least
    // one child a round must die mid-work.
    assert!(
        killed_working >= CRASH_ROUNDS,
        "only {killed_working} children were killed after a grant"
    );
    assert!(granted_to.len() >= 20, "only {} grants", granted_to.len());

    let ledger = RedbLedger::open(&path).unwrap();
    for n in 0..CRASH_ROUNDS * CTIS_PER_CRASH_ROUND {
        let usage = ledger.usage_blocking(&cti(seed, n)).unwrap();
        assert!(usage.granted <= MAX_USES, "cti {n}: {usage:?}");
        assert_eq!(usage.messages.len() as u64, usage.granted, "cti {n}");
        let numbers: Vec<u64> = usage.messages.iter().map(|m| m.use_number).collect();
        assert_eq!(numbers, (1..=usage.granted).collect::<Vec<_>>(), "cti {n}");
        for m in &usage.messages {
            let key = (n, m.message_id.clone());
            if completed.contains(&key) {
                assert_eq!(m.state, UseState::Completed, "{key:?}");
            }
        }
    }
    // Every grant a child reported before it died is still there, under the same number.
    for ((n, id), use_number) in &granted_to {
        let usage = ledger.usage_blocking(&cti(seed, *n)).unwrap();
        let stored = usage.messages.iter().find(|m| &m.message_id == id);
        assert_eq!(
            stored.map(|m| m.use_number),
            Some(*use_number),
            "cti {n} {id}"
        );
    }
}

#[test]
fn redb_a_grant_answered_before_a_kill_is_in_the_file() {
    // A child grants one use at a time and says so only once begin has returned; the parent
    // kills it (SIGKILL) at once after the k-th answer, while it waits with nothing in
    // flight. The file then holds exactly k grants. This fails for a commit that exists only
    // in the process (redb's `Durability::None`), or answered before it was written. It
    // cannot tell a written commit from a synced one: the kernel's page cache outlives the
    // process; only losing the machine would show a missing fsync.
    let mut rng = Rng::new();
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uses.redb");
        drop(RedbLedger::open(&path).unwrap());
        let seed = seed();
        let k = 1 + rng.below(5);
        let mut child = spawn_child(&path, "grant_and_wait", 0, seed, &[]);
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for i in 0..k {
            let want = format!("GRANTED {i}");
            loop {
                let line = lines.next().expect("the child ended early").unwrap();
                if line == want {
                    break;
                }
            }
            if i + 1 < k {
                writeln!(stdin, "next").unwrap();
            }
        }
        // SIGKILL: no destructors, no flush; the child has answered k and is waiting.
        child.kill().unwrap();
        child.wait().unwrap();
        let usage = RedbLedger::open(&path)
            .unwrap()
            .usage_blocking(&cti(seed, 0))
            .unwrap();
        let ids: Vec<String> = usage
            .messages
            .iter()
            .map(|m| m.message_id.clone())
            .collect();
        assert_eq!(usage.granted, k, "{usage:?}");
        assert_eq!(ids, (0..k).map(|i| format!("m{i}")).collect::<Vec<_>>());
    }
}
