//! The scheduler behind [`solve`]: one mutex-guarded state (a ready queue,
//! counters of unfinished inputs and consumers per vertex, the keys in
//! flight) and a fixed pool of worker threads that each take the lowest
//! ready vertex, run it without the lock, and record what it made.

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{Exec, Failure, Graph, Options, Solved, Stats, VertexId};

/// Runs the vertices `targets` need with `exec` and returns the targets'
/// outputs (see the [module docs](super) for the model).
///
/// # Panics
///
/// When a target is not a vertex of `graph`.
pub fn solve<O: Sync, X: Exec<O>>(
    graph: &Graph<O>,
    targets: &[VertexId],
    exec: &X,
    opts: &Options<'_>,
) -> Result<Solved<X::Output>, Failure<X::Error>> {
    let needed = graph.needed(targets);
    let n = needed.last().map_or(0, |&top| top + 1);
    let mut nodes: Vec<Node> = (0..n).map(|_| Node::default()).collect();
    for &id in &needed {
        for &input in &graph.vertex(id).inputs {
            nodes[id].waiting += 1;
            nodes[input].uses += 1;
            nodes[input].unstarted += 1;
            nodes[input].dependents.push(id);
        }
    }
    for &t in targets {
        nodes[t].target = true;
    }
    let ready = needed
        .iter()
        .copied()
        .filter(|&id| nodes[id].waiting == 0)
        .collect();
    let scheduler = Scheduler {
        graph,
        exec,
        opts,
        state: Mutex::new(State {
            nodes,
            outputs: (0..n).map(|_| None).collect(),
            ready,
            keys: HashMap::new(),
            parked: HashMap::new(),
            left: needed.len(),
            failure: None,
            stats: Stats::default(),
        }),
        wake: Condvar::new(),
    };
    let workers = opts.parallelism.clamp(1, needed.len().max(1));
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(|| scheduler.work());
        }
        scheduler.work();
    });
    let state = scheduler
        .state
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(failure) = state.failure {
        return Err(failure);
    }
    assert_eq!(state.left, 0, "the solver stopped with vertices left");
    let outputs = targets
        .iter()
        .map(|&t| state.outputs[t].clone().expect("a target's output is kept"))
        .collect();
    Ok(Solved {
        outputs,
        stats: state.stats,
    })
}

/// The bookkeeping of one vertex (unneeded vertices keep the default).
#[derive(Default)]
struct Node {
    /// Inputs not finished yet (an input taken twice counts twice).
    waiting: usize,
    /// Consumers not finished yet, once per input edge.
    uses: usize,
    /// Consumers not started yet, once per input edge: at 0 (and not a
    /// target) the solver's reference goes to the last consumer.
    unstarted: usize,
    /// The needed vertices taking this one, once per input edge.
    dependents: Vec<VertexId>,
    target: bool,
    /// Set when the vertex waited for its key and now holds it: it goes
    /// straight to `load` with it.
    held_key: Option<String>,
}

/// Who holds a key (is between `load` and the end of `run`), and who waits.
struct KeyState {
    holder: VertexId,
    waiters: BTreeSet<VertexId>,
}

struct State<T, E> {
    nodes: Vec<Node>,
    /// Finished vertices' outputs still needed (or targets').
    outputs: Vec<Option<Arc<T>>>,
    /// Vertices whose inputs are all finished, not started yet.
    ready: BTreeSet<VertexId>,
    /// Keys held by a vertex, with the vertices waiting for them.
    keys: HashMap<String, KeyState>,
    /// The inputs of vertices parked behind another's key, kept for their
    /// second start.
    parked: HashMap<VertexId, Vec<Arc<T>>>,
    /// Needed vertices not finished yet.
    left: usize,
    failure: Option<Failure<E>>,
    stats: Stats,
}

struct Scheduler<'s, O, X: Exec<O>> {
    graph: &'s Graph<O>,
    exec: &'s X,
    opts: &'s Options<'s>,
    state: Mutex<State<X::Output, X::Error>>,
    /// Signalled when a vertex becomes ready or the solve ends.
    wake: Condvar,
}

/// A vertex a worker took from the ready queue.
struct Started<T> {
    id: VertexId,
    /// Its inputs' outputs, in its inputs' order.
    inputs: Vec<Arc<T>>,
    /// The key it holds, when it waited for it.
    held: Option<String>,
}

/// How a vertex got its output.
enum How {
    Hit,
    Ran,
    Uncached,
}

/// What one start of a vertex came to.
enum Outcome<T> {
    Done(T, How),
    /// Another vertex holds the key: this one waits for it (its inputs
    /// kept in `State::parked`).
    Parked,
}

impl<O: Sync, X: Exec<O>> Scheduler<'_, O, X> {
    fn lock(&self) -> MutexGuard<'_, State<X::Output, X::Error>> {
        // Nothing panics while holding it; never poisoned in practice.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One worker: start ready vertices until the solve ends or fails.
    fn work(&self) {
        while let Some(Started { id, inputs, held }) = self.next() {
            match catch_unwind(AssertUnwindSafe(|| (self.opts.cancelled)())) {
                Ok(false) => {}
                Ok(true) => {
                    self.fail(Failure::Cancelled);
                    return;
                }
                Err(_) => {
                    self.fail(Failure::Panicked { vertex: id });
                    return;
                }
            }
            let op = &self.graph.vertex(id).op;
            let outcome = catch_unwind(AssertUnwindSafe(|| self.start(id, op, inputs, held)));
            match outcome {
                Ok(Ok(Outcome::Done(output, how))) => self.finish(id, output, how),
                Ok(Ok(Outcome::Parked)) => {}
                Ok(Err(error)) => {
                    self.fail(Failure::Op { vertex: id, error });
                    return;
                }
                Err(_) => {
                    self.fail(Failure::Panicked { vertex: id });
                    return;
                }
            }
        }
    }

    /// The lowest ready vertex, with its inputs' outputs and the key it
    /// holds (if it waited for one); `None` once the solve is over.
    fn next(&self) -> Option<Started<X::Output>> {
        let mut state = self.lock();
        loop {
            if state.failure.is_some() || state.left == 0 {
                return None;
            }
            if let Some(id) = state.ready.pop_first() {
                let held = state.nodes[id].held_key.take();
                // A vertex back from waiting for its key has its inputs.
                if let Some(inputs) = state.parked.remove(&id) {
                    return Some(Started { id, inputs, held });
                }
                let state = &mut *state;
                let inputs = self
                    .graph
                    .vertex(id)
                    .inputs
                    .iter()
                    .map(|&i| {
                        let node = &mut state.nodes[i];
                        node.unstarted -= 1;
                        // The last consumer to start takes the solver's
                        // reference: nothing will ask for it again.
                        if node.unstarted == 0 && !node.target {
                            state.outputs[i].take()
                        } else {
                            state.outputs[i].clone()
                        }
                        .expect("a finished input's output")
                    })
                    .collect();
                return Some(Started { id, inputs, held });
            }
            state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Key, then load or run: the part of a vertex done without the lock.
    fn start(
        &self,
        id: VertexId,
        op: &O,
        mut inputs: Vec<Arc<X::Output>>,
        held: Option<String>,
    ) -> Result<Outcome<X::Output>, X::Error> {
        let key = match held {
            Some(key) => Some(key),
            None => match self.exec.cache_key(id, op, &inputs)? {
                Some(key) => match self.hold(id, &key, inputs) {
                    Err(holder) => {
                        self.exec.waiting(id, holder);
                        return Ok(Outcome::Parked);
                    }
                    Ok(back) => {
                        inputs = back;
                        Some(key)
                    }
                },
                None => None,
            },
        };
        let Some(key) = key else {
            let output = self.exec.run(id, op, None, inputs)?;
            return Ok(Outcome::Done(output, How::Uncached));
        };
        let result = match self.exec.load(id, op, &key, &inputs) {
            Ok(Some(output)) => Ok(Outcome::Done(output, How::Hit)),
            Ok(None) => self
                .exec
                .run(id, op, Some(&key), inputs)
                .map(|output| Outcome::Done(output, How::Ran)),
            Err(error) => Err(error),
        };
        if result.is_ok() {
            self.release(&key);
        }
        result
    }

    /// Takes `key` for `id` (and gives its inputs back), or, when another
    /// vertex holds it, queues `id` behind it with its inputs (under the
    /// same lock, so the holder's release cannot ready `id` before its
    /// inputs are kept) and says which vertex that is.
    fn hold(
        &self,
        id: VertexId,
        key: &str,
        inputs: Vec<Arc<X::Output>>,
    ) -> Result<Vec<Arc<X::Output>>, VertexId> {
        let mut state = self.lock();
        match state.keys.get_mut(key) {
            Some(held) => {
                held.waiters.insert(id);
                let holder = held.holder;
                state.stats.waited += 1;
                state.parked.insert(id, inputs);
                Err(holder)
            }
            None => {
                let held = KeyState {
                    holder: id,
                    waiters: BTreeSet::new(),
                };
                state.keys.insert(key.to_string(), held);
                Ok(inputs)
            }
        }
    }

    /// Hands `key` to its lowest waiter (made ready), or frees it.
    fn release(&self, key: &str) {
        let mut state = self.lock();
        let Some(held) = state.keys.get_mut(key) else {
            return;
        };
        let next = held.waiters.pop_first();
        if let Some(waiter) = next {
            held.holder = waiter;
        }
        match next {
            Some(waiter) => {
                state.nodes[waiter].held_key = Some(key.to_string());
                state.ready.insert(waiter);
                drop(state);
                self.wake.notify_one();
            }
            None => {
                state.keys.remove(key);
            }
        }
    }

    /// Records `id`'s output, releases the outputs nobody needs any more
    /// and readies the vertices waiting only for this one.
    fn finish(&self, id: VertexId, output: X::Output, how: How) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let stats = &mut state.stats;
        match how {
            How::Hit => stats.hits += 1,
            How::Ran => stats.ran += 1,
            How::Uncached => {
                stats.ran += 1;
                stats.uncached += 1;
            }
        }
        state.outputs[id] = Some(Arc::new(output));
        let mut released = Vec::new();
        for &input in &self.graph.vertex(id).inputs {
            let node = &mut state.nodes[input];
            node.uses -= 1;
            if node.uses == 0 && !node.target {
                released.extend(state.outputs[input].take());
            }
        }
        // Dropped without the lock (an output's drop may do real work), but
        // before the dependents are ready, so that a dependent never sees
        // them alive.
        drop(guard);
        drop(released);
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut readied = 0;
        for i in 0..state.nodes[id].dependents.len() {
            let dependent = state.nodes[id].dependents[i];
            let node = &mut state.nodes[dependent];
            node.waiting -= 1;
            if node.waiting == 0 {
                state.ready.insert(dependent);
                readied += 1;
            }
        }
        state.left -= 1;
        let over = state.left == 0;
        drop(guard);
        if over {
            self.wake.notify_all();
        } else {
            for _ in 0..readied {
                self.wake.notify_one();
            }
        }
    }

    /// Records the solve's failure (the first one only) and stops it.
    fn fail(&self, failure: Failure<X::Error>) {
        let mut state = self.lock();
        if state.failure.is_some() {
            return;
        }
        let vertex = match failure {
            Failure::Op { vertex, .. } | Failure::Panicked { vertex } => Some(vertex),
            Failure::Cancelled => None,
        };
        state.failure = Some(failure);
        drop(state);
        self.wake.notify_all();
        if let Some(vertex) = vertex {
            // A panic here must not hide the failure being reported.
            let _ = catch_unwind(AssertUnwindSafe(|| self.exec.failed(vertex)));
        }
    }
}
