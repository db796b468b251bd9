//! The generic solver (`hoist_engine::solve`) on fake ops: a fake executor
//! records what the solver asked of it, in order, and lets a test hold an
//! op until the solver reached a given state (no sleeps, no timing: a wait
//! that never ends is a failure after a generous guard, not a hang).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hoist_engine::solve::{Exec, Failure, Graph, Options, Solved, Stats, VertexId, solve};

/// A fake op: a name, and how its cache key is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Op {
    name: &'static str,
    key: Key,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// From the name and the inputs' outputs, like a real step's.
    Derived,
    /// This key whatever the inputs.
    Fixed(&'static str),
    /// Never cached.
    Never,
    /// `cache_key` fails.
    Broken,
}

fn op(name: &'static str) -> Op {
    Op {
        name,
        key: Key::Derived,
    }
}

fn keyed(name: &'static str, key: Key) -> Op {
    Op { name, key }
}

/// A fake output: its text, and a drop that is recorded.
#[derive(Debug)]
struct Out {
    id: VertexId,
    text: String,
    dropped: Arc<Mutex<Vec<VertexId>>>,
}

impl Drop for Out {
    fn drop(&mut self) {
        self.dropped.lock().unwrap().push(self.id);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Key(VertexId),
    Load { id: VertexId, hit: bool },
    Start(VertexId),
    End(VertexId),
    Failed(VertexId),
    Waiting { id: VertexId, holder: VertexId },
}

/// What tests wait on.
#[derive(Default)]
struct Board {
    running: usize,
    max_running: usize,
    /// Vertices told to wait for a key.
    waiting: usize,
    flags: HashSet<String>,
}

type Hook = Box<dyn Fn(&Fake, VertexId, &Op) -> Result<(), String> + Sync>;

struct Fake {
    events: Mutex<Vec<Event>>,
    cache: Mutex<HashMap<String, String>>,
    dropped: Arc<Mutex<Vec<VertexId>>>,
    /// The outputs dropped when each run started.
    dropped_at_run: Mutex<HashMap<VertexId, Vec<VertexId>>>,
    /// Whether each input of each run was its only reference.
    unique_at_run: Mutex<HashMap<VertexId, Vec<bool>>>,
    board: Mutex<Board>,
    changed: Condvar,
    /// Called inside `run`, between its Start and End events.
    hook: Hook,
}

impl Fake {
    fn new() -> Self {
        Self::with(|_, _, _| Ok(()))
    }

    fn with(hook: impl Fn(&Fake, VertexId, &Op) -> Result<(), String> + Sync + 'static) -> Self {
        Fake {
            events: Mutex::default(),
            cache: Mutex::default(),
            dropped: Arc::default(),
            dropped_at_run: Mutex::default(),
            unique_at_run: Mutex::default(),
            board: Mutex::default(),
            changed: Condvar::new(),
            hook: Box::new(hook),
        }
    }

    fn event(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    fn starts(&self) -> Vec<VertexId> {
        let events = self.events();
        events
            .iter()
            .filter_map(|e| match e {
                Event::Start(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn update(&self, f: impl FnOnce(&mut Board)) {
        f(&mut self.board.lock().unwrap());
        self.changed.notify_all();
    }

    fn raise(&self, flag: &str) {
        self.update(|b| {
            b.flags.insert(flag.to_string());
        });
    }

    /// Waits until `done` holds; a guard turns a solver that never gets
    /// there into a failure instead of a hang (not a timing assertion).
    fn wait_until(&self, what: &str, done: impl Fn(&Board) -> bool) {
        let give_up = Instant::now() + Duration::from_secs(60);
        let mut board = self.board.lock().unwrap();
        while !done(&board) {
            let left = give_up.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the solver never got to: {what}");
            board = self.changed.wait_timeout(board, left).unwrap().0;
        }
    }

    fn max_running(&self) -> usize {
        self.board.lock().unwrap().max_running
    }

    fn out(&self, id: VertexId, text: String) -> Out {
        Out {
            id,
            text,
            dropped: self.dropped.clone(),
        }
    }
}

fn text(op: &Op, inputs: &[Arc<Out>]) -> String {
    if op.name == "flat" {
        // For big graphs: nested texts would grow exponentially.
        return "flat".into();
    }
    let inputs: Vec<&str> = inputs.iter().map(|i| i.text.as_str()).collect();
    format!("{}({})", op.name, inputs.join(","))
}

impl Exec<Op> for Fake {
    type Output = Out;
    type Error = String;

    fn cache_key(
        &self,
        id: VertexId,
        op: &Op,
        inputs: &[Arc<Out>],
    ) -> Result<Option<String>, String> {
        self.event(Event::Key(id));
        match op.key {
            Key::Derived => Ok(Some(text(op, inputs))),
            Key::Fixed(key) => Ok(Some(key.to_string())),
            Key::Never => Ok(None),
            Key::Broken => Err(format!("no key for {}", op.name)),
        }
    }

    fn load(
        &self,
        id: VertexId,
        _op: &Op,
        key: &str,
        _inputs: &[Arc<Out>],
    ) -> Result<Option<Out>, String> {
        let found = self.cache.lock().unwrap().get(key).cloned();
        self.event(Event::Load {
            id,
            hit: found.is_some(),
        });
        Ok(found.map(|text| self.out(id, text)))
    }

    fn run(
        &self,
        id: VertexId,
        op: &Op,
        key: Option<&str>,
        inputs: Vec<Arc<Out>>,
    ) -> Result<Out, String> {
        self.event(Event::Start(id));
        let unique = inputs.iter().map(|i| Arc::strong_count(i) == 1).collect();
        self.unique_at_run.lock().unwrap().insert(id, unique);
        let dropped = self.dropped.lock().unwrap().clone();
        self.dropped_at_run.lock().unwrap().insert(id, dropped);
        self.update(|b| {
            b.running += 1;
            b.max_running = b.max_running.max(b.running);
        });
        let result = (self.hook)(self, id, op);
        self.update(|b| b.running -= 1);
        self.event(Event::End(id));
        result?;
        let text = text(op, &inputs);
        if let Some(key) = key {
            self.cache
                .lock()
                .unwrap()
                .insert(key.to_string(), text.clone());
        }
        Ok(self.out(id, text))
    }

    fn waiting(&self, id: VertexId, holder: VertexId) {
        self.event(Event::Waiting { id, holder });
        self.update(|b| b.waiting += 1);
    }

    fn failed(&self, vertex: VertexId) {
        self.event(Event::Failed(vertex));
        self.raise(&format!("failed {vertex}"));
    }
}

fn run(
    graph: &Graph<Op>,
    targets: &[VertexId],
    fake: &Fake,
    parallelism: usize,
) -> Result<Solved<Out>, Failure<String>> {
    solve(graph, targets, fake, &Options::new(parallelism))
}

fn texts(solved: &Solved<Out>) -> Vec<&str> {
    solved.outputs.iter().map(|o| o.text.as_str()).collect()
}

fn sorted(mut ids: Vec<VertexId>) -> Vec<VertexId> {
    ids.sort_unstable();
    ids
}

// ---- the graph ----

#[test]
fn needed_is_the_targets_and_their_ancestors_ascending() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let c = g.add(op("c"), vec![]);
    let d = g.add(op("d"), vec![b]);
    let e = g.add(op("e"), vec![c]);
    assert_eq!(g.needed(&[d]), vec![a, b, d]);
    assert_eq!(g.needed(&[e, b]), vec![a, b, c, e]);
    assert_eq!(g.needed(&[]), Vec::<VertexId>::new());
    assert_eq!(g.len(), 5);
    assert!(!g.is_empty());
    assert_eq!(g.vertex(d).inputs, vec![b]);
    let ids: Vec<VertexId> = g.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4]);
}

#[test]
#[should_panic(expected = "input 1 is not an earlier vertex")]
fn an_input_must_be_added_before_its_vertex() {
    let mut g = Graph::new();
    g.add(op("a"), vec![1]);
}

#[test]
fn add_dedup_returns_the_vertex_with_the_same_op_and_inputs() {
    let mut g = Graph::new();
    let a = g.add_dedup(op("a"), vec![]);
    assert_eq!(g.add_dedup(op("a"), vec![]), a);
    let b = g.add_dedup(op("b"), vec![a]);
    assert_eq!(g.add_dedup(op("b"), vec![a]), b);
    let b_alone = g.add_dedup(op("b"), vec![]);
    assert_ne!(b_alone, b);
    // `add` never merges.
    let a_again = g.add(op("a"), vec![]);
    assert_ne!(a_again, a);
    assert_eq!(g.len(), 4);
}

// ---- what runs, and when ----

#[test]
fn only_needed_vertices_run_each_after_its_inputs() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let c = g.add(op("c"), vec![a]);
    let unneeded = g.add(op("x"), vec![b]);
    let d = g.add(op("d"), vec![b, c, c]);
    let fake = Fake::new();
    let solved = run(&g, &[d], &fake, 4).unwrap();
    assert_eq!(texts(&solved), vec!["d(b(a()),c(a()),c(a()))"]);
    let events = fake.events();
    assert!(
        !events.iter().any(|e| matches!(e,
            Event::Key(id) | Event::Start(id) if *id == unneeded)),
        "{events:?}"
    );
    for (at, event) in events.iter().enumerate() {
        if let Event::Key(id) = event {
            for input in &g.vertex(*id).inputs {
                assert!(
                    events[..at].contains(&Event::End(*input)),
                    "{id} started before its input {input} ended: {events:?}"
                );
            }
        }
    }
    assert_eq!(
        solved.stats,
        Stats {
            ran: 4,
            hits: 0,
            uncached: 0,
            waited: 0
        }
    );
}

#[test]
fn a_vertex_many_take_runs_once() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let users: Vec<VertexId> = ["b", "c", "d", "e"]
        .into_iter()
        .map(|name| g.add(keyed(name, Key::Never), vec![a]))
        .collect();
    let f = g.add(op("f"), users.clone());
    let fake = Fake::new();
    let solved = run(&g, &[f, a], &fake, 3).unwrap();
    assert_eq!(sorted(fake.starts()), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(solved.outputs[1].text, "a()");
    assert_eq!(solved.stats.ran, 6);
    assert_eq!(solved.stats.uncached, 4);
}

#[test]
fn independent_vertices_run_in_parallel_up_to_the_limit() {
    let mut g = Graph::new();
    // Uncached: leaves with one key would wait for each other.
    let leaves: Vec<VertexId> = (0..9)
        .map(|_| g.add(keyed("leaf", Key::Never), vec![]))
        .collect();
    let join = g.add(op("join"), leaves);
    // Each leaf holds until three ops run at once (then all go on): the
    // solve can only finish if it runs three at once.
    let fake = Fake::with(|fake, _, op| {
        if op.name == "leaf" {
            fake.wait_until("3 ops at once", |b| {
                b.running >= 3 || b.flags.contains("full")
            });
            fake.raise("full");
        }
        Ok(())
    });
    run(&g, &[join], &fake, 3).unwrap();
    assert_eq!(fake.max_running(), 3);
}

#[test]
fn parallelism_one_runs_one_op_at_a_time() {
    let mut g = Graph::new();
    let leaves: Vec<VertexId> = (0..6)
        .map(|_| g.add(keyed("leaf", Key::Never), vec![]))
        .collect();
    let join = g.add(op("join"), leaves);
    let fake = Fake::new();
    run(&g, &[join], &fake, 1).unwrap();
    assert_eq!(fake.max_running(), 1);
    // 0 is taken as 1.
    let fake = Fake::new();
    run(&g, &[join], &fake, 0).unwrap();
    assert_eq!(fake.max_running(), 1);
}

#[test]
fn ready_vertices_start_lowest_id_first() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![]);
    let c = g.add(op("c"), vec![b]);
    let d = g.add(op("d"), vec![a]);
    g.add(op("unneeded"), vec![]);
    let f = g.add(op("f"), vec![c, d]);
    let fake = Fake::new();
    run(&g, &[f], &fake, 1).unwrap();
    assert_eq!(fake.starts(), vec![a, b, c, d, f]);
}

#[test]
fn a_large_graph_with_shared_keys_solves() {
    // 3,000 vertices with one to three earlier inputs each (a fixed
    // pseudo-random graph), keys from a pool of ten (much waiting) or none.
    const KEYS: [&str; 10] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];
    let mut seed: u64 = 42;
    let mut next = move |below: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % below.max(1)
    };
    let mut g = Graph::new();
    for id in 0..3000 {
        // One to three inputs among the 20 vertices before.
        let count = if id == 0 { 0 } else { 1 + next(3) };
        let inputs = (0..count).map(|_| id - 1 - next(id.min(20))).collect();
        let key = match next(3) {
            0 => Key::Never,
            _ => Key::Fixed(KEYS[next(KEYS.len())]),
        };
        g.add(keyed("flat", key), inputs);
    }
    let targets = [2999, 2000, 1500];
    let needed = g.needed(&targets);
    assert!(needed.len() > 1000, "only {} needed", needed.len());
    let fake = Fake::new();
    let solved = run(&g, &targets, &fake, 4).unwrap();
    assert_eq!(solved.stats.ran + solved.stats.hits, needed.len());
    assert_eq!(sorted(fake.starts()).len(), solved.stats.ran);
    assert_eq!(texts(&solved), vec!["flat"; 3]);
    assert!(fake.max_running() <= 4);
}

#[test]
fn no_targets_is_nothing_to_do() {
    let mut g = Graph::new();
    g.add(op("a"), vec![]);
    let fake = Fake::new();
    let solved = run(&g, &[], &fake, 2).unwrap();
    assert!(solved.outputs.is_empty());
    assert!(fake.events().is_empty());
}

// ---- cache ----

#[test]
fn a_cached_key_is_loaded_not_run() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let fake = Fake::new();
    fake.cache
        .lock()
        .unwrap()
        .insert("a()".into(), "cached-a".into());
    let solved = run(&g, &[b], &fake, 2).unwrap();
    assert_eq!(texts(&solved), vec!["b(cached-a)"]);
    assert_eq!(fake.starts(), vec![b]);
    assert_eq!(
        solved.stats,
        Stats {
            ran: 1,
            hits: 1,
            uncached: 0,
            waited: 0
        }
    );
    // Again: everything hits, nothing runs.
    let fake2 = Fake::new();
    *fake2.cache.lock().unwrap() = fake.cache.lock().unwrap().clone();
    let solved = run(&g, &[b], &fake2, 2).unwrap();
    assert!(fake2.starts().is_empty());
    assert_eq!(solved.stats.hits, 2);
}

#[test]
fn same_key_runs_once_and_the_other_loads_after_it() {
    let mut g = Graph::new();
    let x = g.add(keyed("x", Key::Fixed("k")), vec![]);
    let y = g.add(keyed("y", Key::Fixed("k")), vec![]);
    let join = g.add(op("join"), vec![x, y]);
    // The one that runs holds until the other waits for it (a solver
    // without key dedup would run both, or never get there).
    let fake = Fake::with(|fake, _, op| {
        if op.key == Key::Fixed("k") {
            fake.wait_until("the other vertex waits", |b| b.waiting >= 1);
        }
        Ok(())
    });
    let solved = run(&g, &[join], &fake, 2).unwrap();
    let events = fake.events();
    let runner = *fake.starts().first().unwrap();
    assert_eq!(fake.starts(), vec![runner, join], "{events:?}");
    let waiter = if runner == x { y } else { x };
    assert!(events.contains(&Event::Waiting {
        id: waiter,
        holder: runner
    }));
    let end = events
        .iter()
        .position(|e| *e == Event::End(runner))
        .unwrap();
    let hit = events
        .iter()
        .position(|e| {
            *e == Event::Load {
                id: waiter,
                hit: true,
            }
        })
        .unwrap_or_else(|| panic!("{waiter} never hit: {events:?}"));
    assert!(end < hit, "{events:?}");
    assert_eq!(
        solved.stats,
        Stats {
            ran: 2,
            hits: 1,
            uncached: 0,
            waited: 1
        }
    );
}

#[test]
fn waiters_for_a_key_take_it_lowest_id_first() {
    let mut g = Graph::new();
    let same: Vec<VertexId> = (0..4)
        .map(|_| g.add(keyed("s", Key::Fixed("k")), vec![]))
        .collect();
    let join = g.add(op("join"), same);
    let fake = Fake::with(|fake, _, op| {
        if op.name == "s" {
            fake.wait_until("three wait for the fourth", |b| b.waiting >= 3);
        }
        Ok(())
    });
    let solved = run(&g, &[join], &fake, 4).unwrap();
    let hits: Vec<VertexId> = fake
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Load { id, hit: true } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits, sorted(hits.clone()));
    assert_eq!(solved.stats.waited, 3);
    assert_eq!(solved.stats.ran, 2);
}

#[test]
fn ops_without_a_key_never_wait_for_each_other() {
    let mut g = Graph::new();
    let x = g.add(keyed("x", Key::Never), vec![]);
    let y = g.add(keyed("x", Key::Never), vec![]);
    let join = g.add(keyed("join", Key::Never), vec![x, y]);
    // Both hold until both run: the solve only ends if they run together.
    let fake = Fake::with(|fake, _, op| {
        if op.name == "x" {
            fake.wait_until("both x at once", |b| {
                b.running >= 2 || b.flags.contains("both")
            });
            fake.raise("both");
        }
        Ok(())
    });
    let solved = run(&g, &[join], &fake, 2).unwrap();
    assert_eq!(
        solved.stats,
        Stats {
            ran: 3,
            hits: 0,
            uncached: 3,
            waited: 0
        }
    );
    assert!(
        !fake
            .events()
            .iter()
            .any(|e| matches!(e, Event::Load { .. }))
    );
}

// ---- failure ----

#[test]
fn the_first_error_stops_new_starts() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let f = g.add(op("f"), vec![]);
    let c = g.add(op("c"), vec![]);
    let join = g.add(op("join"), vec![a, f, c]);
    let fake = Fake::with(|_, _, op| match op.name {
        "f" => Err("f failed".into()),
        _ => Ok(()),
    });
    let failure = run(&g, &[join], &fake, 1).unwrap_err();
    assert!(
        matches!(&failure, Failure::Op { vertex, error } if *vertex == f && error == "f failed"),
        "{failure:?}"
    );
    assert_eq!(fake.starts(), vec![a, f]);
    assert!(!fake.events().contains(&Event::Key(c)));
    assert!(fake.events().contains(&Event::Failed(f)));
}

#[test]
fn running_ops_finish_and_the_first_error_is_the_result() {
    for late_error in [false, true] {
        let mut g = Graph::new();
        let slow = g.add(op("slow"), vec![]);
        let f = g.add(op("f"), vec![]);
        let after = g.add(op("after"), vec![slow]);
        let join = g.add(op("join"), vec![after, f]);
        // `slow` runs while `f` fails, and ends (well or not) after the
        // solve was told: its dependent must not start.
        let fake = Fake::with(move |fake, _, op| match op.name {
            "slow" => {
                fake.wait_until("f failed", |b| b.flags.contains("failed 1"));
                if late_error {
                    Err("slow failed later".into())
                } else {
                    Ok(())
                }
            }
            "f" => Err("f failed".into()),
            _ => Ok(()),
        });
        let failure = run(&g, &[join], &fake, 2).unwrap_err();
        assert!(
            matches!(&failure, Failure::Op { vertex, error } if *vertex == f && error == "f failed"),
            "{failure:?}"
        );
        let events = fake.events();
        assert!(events.contains(&Event::End(slow)), "{events:?}");
        assert!(!events.contains(&Event::Key(after)), "{events:?}");
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Failed(_)))
                .count(),
            1
        );
    }
}

#[test]
fn an_error_computing_a_key_is_the_vertex_failure() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(keyed("b", Key::Broken), vec![a]);
    let fake = Fake::new();
    let failure = run(&g, &[b], &fake, 2).unwrap_err();
    assert!(
        matches!(&failure, Failure::Op { vertex, error } if *vertex == b && error == "no key for b"),
        "{failure:?}"
    );
    assert_eq!(failure.to_string(), "vertex 1: no key for b");
}

#[test]
fn a_panicking_op_is_reported_and_poisons_nothing() {
    let mut g = Graph::new();
    let p = g.add(op("p"), vec![]);
    let q = g.add(op("q"), vec![]);
    let join = g.add(op("join"), vec![p, q]);
    let armed = Arc::new(AtomicBool::new(true));
    let trigger = armed.clone();
    let fake = Fake::with(move |_, _, op| {
        if op.name == "p" && trigger.swap(false, Ordering::SeqCst) {
            panic!("p panics (expected by the test)");
        }
        Ok(())
    });
    let failure = run(&g, &[join], &fake, 2).unwrap_err();
    assert!(
        matches!(failure, Failure::Panicked { vertex } if vertex == p),
        "{failure:?}"
    );
    assert!(fake.events().contains(&Event::Failed(p)));
    // The same executor solves again.
    let solved = run(&g, &[join], &fake, 2).unwrap();
    assert_eq!(texts(&solved), vec!["join(p(),q())"]);
}

#[test]
fn cancel_stops_new_starts() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![]);
    let c = g.add(op("c"), vec![a, b]);
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let fake = Fake::with(move |_, id, _| {
        if id == a {
            flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    });
    let cancelled = || cancel.load(Ordering::SeqCst);
    let opts = Options {
        parallelism: 1,
        cancelled: &cancelled,
    };
    let failure = solve(&g, &[c], &fake, &opts).unwrap_err();
    assert!(matches!(failure, Failure::Cancelled), "{failure:?}");
    assert_eq!(fake.starts(), vec![a]);
    assert!(!fake.events().contains(&Event::Key(b)));
    // Cancelled from the start: nothing at all.
    let fake = Fake::new();
    let always = || true;
    let opts = Options {
        parallelism: 2,
        cancelled: &always,
    };
    let failure = solve(&g, &[c], &fake, &opts).unwrap_err();
    assert!(matches!(failure, Failure::Cancelled), "{failure:?}");
    assert!(fake.events().is_empty());
}

#[test]
fn an_error_before_the_cancel_is_the_result() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let fake = Fake::with(move |_, _, _| {
        flag.store(true, Ordering::SeqCst);
        Err("a failed".into())
    });
    let cancelled = || cancel.load(Ordering::SeqCst);
    let opts = Options {
        parallelism: 1,
        cancelled: &cancelled,
    };
    let failure = solve(&g, &[b], &fake, &opts).unwrap_err();
    assert!(
        matches!(&failure, Failure::Op { vertex, .. } if *vertex == a),
        "{failure:?}"
    );
}

// ---- memory ----

#[test]
fn an_output_is_dropped_once_its_last_consumer_finished() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let c = g.add(op("c"), vec![a]);
    let d = g.add(op("d"), vec![b, c]);
    let e = g.add(op("e"), vec![d]);
    let fake = Fake::new();
    let solved = run(&g, &[e], &fake, 3).unwrap();
    let at_run = fake.dropped_at_run.lock().unwrap().clone();
    // `a` lives while `b` or `c` may still need it, and not after.
    assert!(!at_run[&b].contains(&a) && !at_run[&c].contains(&a));
    assert_eq!(sorted(at_run[&d].clone()), vec![a]);
    assert_eq!(sorted(at_run[&e].clone()), vec![a, b, c]);
    // The target is kept for the caller.
    assert_eq!(
        sorted(fake.dropped.lock().unwrap().clone()),
        vec![a, b, c, d]
    );
    assert_eq!(Arc::strong_count(&solved.outputs[0]), 1);
    drop(solved);
    assert_eq!(
        sorted(fake.dropped.lock().unwrap().clone()),
        vec![a, b, c, d, e]
    );
}

/// The last consumer of an output to start gets the solver's reference:
/// alone, it may take the output by value (a chain of ops moves its state
/// along instead of copying it at every op).
#[test]
fn the_last_consumer_to_start_holds_the_only_reference() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let c = g.add(op("c"), vec![b]);
    let d = g.add(op("d"), vec![c, a]);
    let fake = Fake::new();
    run(&g, &[d], &fake, 1).unwrap();
    let unique = fake.unique_at_run.lock().unwrap().clone();
    // `b` is not `a`'s last consumer (`d` is): shared.
    assert_eq!(unique[&b], vec![false]);
    assert_eq!(unique[&c], vec![true]);
    // `d` is the last of `a`'s and of `c`'s.
    assert_eq!(unique[&d], vec![true, true]);
    // A target is never handed over.
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let fake = Fake::new();
    run(&g, &[b, a], &fake, 1).unwrap();
    assert_eq!(fake.unique_at_run.lock().unwrap()[&b], vec![false]);
}

#[test]
fn a_target_is_kept_even_when_consumed() {
    let mut g = Graph::new();
    let a = g.add(op("a"), vec![]);
    let b = g.add(op("b"), vec![a]);
    let c = g.add(op("c"), vec![b]);
    let fake = Fake::new();
    let solved = run(&g, &[c, a, a], &fake, 2).unwrap();
    assert_eq!(texts(&solved), vec!["c(b(a()))", "a()", "a()"]);
    assert_eq!(fake.dropped.lock().unwrap().clone(), vec![b]);
    assert!(Arc::ptr_eq(&solved.outputs[1], &solved.outputs[2]));
}

// ---- the module stays generic ----

#[test]
fn the_solver_knows_no_dockerfile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/solve");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"mod.rs".to_string()), "{names:?}");
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for banned in [
            "hoist_dockerfile",
            "hoist_sandbox",
            "crate::build",
            "crate::ops",
            "crate::store",
            "crate::",
            "tokio",
            "rayon",
        ] {
            assert!(
                !source.contains(banned),
                "{} mentions {banned}: the solver must stay generic",
                file.display()
            );
        }
        let is_root = file.ends_with("mod.rs");
        for (n, line) in source.lines().enumerate() {
            let line = line.trim_start();
            if let Some(path) = line.strip_prefix("use ") {
                let allowed =
                    path.starts_with("std::") || (!is_root && path.starts_with("super::"));
                assert!(
                    allowed,
                    "{}:{}: `{line}`: the solver uses std and itself only",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}
