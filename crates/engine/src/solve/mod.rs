//! A generic step-graph solver: runs a DAG of opaque ops on a pool of
//! threads, with cache keys, and knows nothing of Dockerfiles, stores or
//! sandboxes (std only).
//!
//! # Model
//!
//! - A [`Graph`] holds vertices; each is an op (`O`, opaque here) and the
//!   vertices whose outputs it takes. Inputs are added before the vertex
//!   that takes them, so the graph is acyclic and ascending ids are a
//!   topological order.
//! - [`solve`] runs the vertices the targets need ([`Graph::needed`]) and
//!   returns the targets' outputs. What "running" means is the caller's
//!   [`Exec`]: for each vertex it first computes a cache key from the op and
//!   its inputs' outputs ([`Exec::cache_key`]); with a key it asks for a
//!   cached answer ([`Exec::load`]) and does the work ([`Exec::run`]) only
//!   on a miss; without a key (an op never cached) it always runs.
//! - Scheduling: a vertex is ready once all its inputs are finished; ready
//!   vertices start lowest id first (so progress output is stable) on at
//!   most [`Options::parallelism`] worker threads. Each vertex runs once,
//!   however many vertices take its output.
//! - Same key, one run: when a vertex's key is the key of a vertex still
//!   being loaded or run, it waits (not holding a worker) until that one
//!   finished, then calls `load`, which then hits. Only one vertex per key
//!   is between `load` and the end of `run` at a time. `None` keys never
//!   wait. (BuildKit merges edges whose cache keys match the same way.)
//! - Memory: an output is released (its `Arc` dropped) as soon as the last
//!   vertex taking it finished, unless it is a target.
//! - Failure: the first op to fail (error or panic), in time, stops the
//!   solve: no vertex starts after it, the ones running finish, and that
//!   failure is the result. [`Options::cancelled`] is polled before each
//!   op starts; once true nothing starts and the result is
//!   [`Failure::Cancelled`] (unless an op failed first).
//!
//! BuildKit's `solver/scheduler.go` is lazy (edges pull their inputs
//! through pipes); here the graph is known up front, so a ready queue and
//! counters of unfinished inputs and consumers do the same work with less.

mod graph;
mod scheduler;

use std::fmt;
use std::sync::Arc;

pub use graph::{Graph, Vertex};
pub use scheduler::solve;

/// A vertex's id: its position in its [`Graph`], in the order added.
pub type VertexId = usize;

/// What runs ops. All methods are called from solver worker threads, never
/// while the solver holds a lock.
pub trait Exec<O>: Sync {
    /// What an op makes (shared with the vertices that take it).
    type Output: Send + Sync;
    /// Why an op failed.
    type Error: Send;

    /// The vertex's cache key from its op and its inputs' outputs (in
    /// `inputs` order), or `None` for an op that is never cached (it always
    /// runs).
    fn cache_key(
        &self,
        id: VertexId,
        op: &O,
        inputs: &[Arc<Self::Output>],
    ) -> Result<Option<String>, Self::Error>;

    /// A cached answer for `key` (a hit), or `None` (a miss).
    fn load(
        &self,
        id: VertexId,
        op: &O,
        key: &str,
        inputs: &[Arc<Self::Output>],
    ) -> Result<Option<Self::Output>, Self::Error>;

    /// Do the work (a miss, or an uncached op); the executor records its
    /// result under `key` itself. `inputs` are the op's own: an input whose
    /// last consumer this is comes with the solver's reference already
    /// dropped, so `Arc::try_unwrap` gives it back by value unless another
    /// running consumer still holds it (a long chain of ops then moves its
    /// state along instead of copying it once per op).
    fn run(
        &self,
        id: VertexId,
        op: &O,
        key: Option<&str>,
        inputs: Vec<Arc<Self::Output>>,
    ) -> Result<Self::Output, Self::Error>;

    /// Told that vertex `id` waits for vertex `holder`, which has the same
    /// cache key and is loading or running it; `id` calls [`Exec::load`]
    /// once `holder` finished (for progress output; `holder` may already
    /// be done when this is told). Does nothing by default.
    fn waiting(&self, id: VertexId, holder: VertexId) {
        let _ = (id, holder);
    }

    /// Told once that `vertex` failed first (an error or a panic), after
    /// the solve stopped starting ops and while other ops may still run:
    /// the executor may abort those (BuildKit cancels the other running
    /// steps of a failed build); the solve returns once they finished. Not
    /// told for [`Failure::Cancelled`] (the caller knows). Does nothing by
    /// default.
    fn failed(&self, vertex: VertexId) {
        let _ = vertex;
    }
}

/// How to solve.
pub struct Options<'a> {
    /// At most this many ops at once (>= 1; 0 is taken as 1).
    pub parallelism: usize,
    /// Polled before each op starts; true = stop starting ops.
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl Options<'static> {
    /// At most `parallelism` ops at once, never cancelled.
    pub fn new(parallelism: usize) -> Self {
        fn never() -> bool {
            false
        }
        Options {
            parallelism,
            cancelled: &never,
        }
    }
}

/// The answer of a successful solve.
#[derive(Debug)]
pub struct Solved<T> {
    /// The outputs, one per target, in targets order.
    pub outputs: Vec<Arc<T>>,
    /// What was done to get them.
    pub stats: Stats,
}

/// What a solve did. On success, `ran + hits` is the number of vertices
/// needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Vertices whose op was run ([`Exec::run`]): misses and uncached ops.
    pub ran: usize,
    /// Vertices answered from the cache ([`Exec::load`] returned one).
    pub hits: usize,
    /// Of `ran`, the vertices without a cache key.
    pub uncached: usize,
    /// Vertices that waited for another vertex with the same key before
    /// their `load`.
    pub waited: usize,
}

/// Why a solve failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// An [`Exec`] method returned an error for this vertex (the first to
    /// fail).
    Op {
        /// The vertex whose op failed.
        vertex: VertexId,
        /// Its error.
        error: E,
    },
    /// [`Options::cancelled`] turned true before the solve finished.
    Cancelled,
    /// An [`Exec`] method (or [`Options::cancelled`], polled before this
    /// vertex) panicked for this vertex. Nothing is poisoned: the solver
    /// holds no lock while it calls them.
    Panicked {
        /// The vertex whose op panicked.
        vertex: VertexId,
    },
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Op { vertex, error } => write!(f, "vertex {vertex}: {error}"),
            Failure::Cancelled => f.write_str("cancelled"),
            Failure::Panicked { vertex } => write!(f, "vertex {vertex} panicked"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Failure<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Op { error, .. } => Some(error),
            _ => None,
        }
    }
}
