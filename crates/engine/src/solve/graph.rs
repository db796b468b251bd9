//! The graph the solver runs: vertices (opaque ops) whose inputs are
//! vertices added before them, so it is acyclic by construction and the
//! ids, in ascending order, are a topological order.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use super::VertexId;

/// A DAG of ops; a vertex's inputs are vertices added before it (acyclic
/// by construction).
#[derive(Debug, Clone)]
pub struct Graph<O> {
    vertices: Vec<Vertex<O>>,
    /// For [`Graph::add_dedup`]: the hash of (op, inputs) of each vertex
    /// it added, to the ids with that hash.
    by_hash: HashMap<u64, Vec<VertexId>>,
    hasher: RandomState,
}

/// One vertex: an op and the vertices whose outputs it takes, in the order
/// the op wants them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vertex<O> {
    /// What to do (opaque to the solver).
    pub op: O,
    /// The vertices whose outputs the op takes (each added before it; one
    /// may appear more than once).
    pub inputs: Vec<VertexId>,
}

impl<O> Default for Graph<O> {
    fn default() -> Self {
        Graph {
            vertices: Vec::new(),
            by_hash: HashMap::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<O> Graph<O> {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vertex and returns its id (the number of vertices before it).
    ///
    /// # Panics
    ///
    /// When an input is not an existing vertex (its id is not below the new
    /// one): that is how the graph stays acyclic.
    pub fn add(&mut self, op: O, inputs: Vec<VertexId>) -> VertexId {
        let id = self.vertices.len();
        if let Some(bad) = inputs.iter().find(|&&input| input >= id) {
            panic!("vertex {id}: input {bad} is not an earlier vertex (the graph has {id})");
        }
        self.vertices.push(Vertex { op, inputs });
        id
    }

    /// Adds a vertex unless one added by this method has the same op and
    /// inputs, in which case that vertex's id is returned (BuildKit merges
    /// identical vertices of a build the same way, by digest). Vertices
    /// added with [`Graph::add`] are never merged.
    ///
    /// # Panics
    ///
    /// As [`Graph::add`].
    pub fn add_dedup(&mut self, op: O, inputs: Vec<VertexId>) -> VertexId
    where
        O: Eq + Hash + Clone,
    {
        let hash = self.hasher.hash_one((&op, &inputs));
        if let Some(ids) = self.by_hash.get(&hash) {
            for &id in ids {
                let v = &self.vertices[id];
                if v.op == op && v.inputs == inputs {
                    return id;
                }
            }
        }
        let id = self.add(op, inputs);
        self.by_hash.entry(hash).or_default().push(id);
        id
    }

    /// The vertex `id`.
    ///
    /// # Panics
    ///
    /// When there is no such vertex.
    pub fn vertex(&self, id: VertexId) -> &Vertex<O> {
        &self.vertices[id]
    }

    /// The number of vertices.
    pub fn len(&self) -> usize {
        self.vertices.len()
    }

    /// Whether the graph has no vertex.
    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty()
    }

    /// The vertices with their ids, in ascending order of id.
    pub fn iter(&self) -> impl Iterator<Item = (VertexId, &Vertex<O>)> {
        self.vertices.iter().enumerate()
    }

    /// The vertices `targets` need (themselves and all ancestors),
    /// ascending. Linear in the vertices and edges below the highest target.
    ///
    /// # Panics
    ///
    /// When a target is not a vertex.
    pub fn needed(&self, targets: &[VertexId]) -> Vec<VertexId> {
        let Some(&top) = targets.iter().max() else {
            return Vec::new();
        };
        assert!(
            top < self.vertices.len(),
            "target {top} is not a vertex (the graph has {})",
            self.vertices.len()
        );
        let mut marked = vec![false; top + 1];
        for &t in targets {
            marked[t] = true;
        }
        // Inputs are below their vertex: one pass from the top marks every
        // ancestor before it is visited.
        for id in (0..=top).rev() {
            if marked[id] {
                for &input in &self.vertices[id].inputs {
                    marked[input] = true;
                }
            }
        }
        (0..=top).filter(|&id| marked[id]).collect()
    }
}
