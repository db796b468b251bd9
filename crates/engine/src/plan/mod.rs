//! The build plan: a typed Dockerfile and the build's options lowered to a
//! graph of steps whose ops are plain values (BuildKit's `dockerfile2llb`
//! plays this part). All Dockerfile knowledge lives here: `ARG`/`ENV`
//! expansion, heredoc argv, `ONBUILD` triggers, `--mount` specs, history
//! text, BuildKit's predefined and meaningful build args. The solver
//! (`crate::solve`) schedules the graph and the executor (`crate::build`)
//! runs its ops without reading a Dockerfile type.
//!
//! - [`op`]: the ops; [`lower`]: Dockerfile → [`Plan`]; `meta` and `exec`:
//!   what metadata instructions and `RUN` mean; [`render`]: `hoist graph`.

mod exec;
pub mod lower;
pub mod meta;
pub mod op;
pub mod render;

pub use lower::{Bases, PlanOptions, lower};
pub use op::{Op, Step};

use crate::solve::{Graph, VertexId};

/// A lowered build: the step graph, and each stage's last step.
pub struct Plan {
    pub graph: Graph<Step>,
    /// The stages the target needs, in the order they were lowered.
    pub stages: Vec<PlannedStage>,
    /// The target stage's last step.
    pub target: VertexId,
    /// The target stage's display name.
    pub target_stage: String,
}

/// A stage of the plan.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    /// Its display name (`AS` name, or its index).
    pub name: String,
    /// Its `AS` name as written, if it has one.
    pub as_name: Option<String>,
    /// Its last step: what `FROM` and `COPY --from` of it read.
    pub last: VertexId,
}
