//! When a stage can run, and when its result is no longer needed: the
//! solver's bookkeeping, linear in the stages and their dependencies.
//!
//! A stage runs once every stage it uses is built. A built stage's result
//! is dropped once every stage using it has finished (the target's is
//! kept), and a stage whose only remaining use is one `FROM` hands its
//! result over instead of having it copied, so a 10,000-stage chain holds
//! one image state at a time rather than all of them (each a copy of the
//! history before it: quadratic memory).

use hoist_dockerfile::StageGraph;
use hoist_dockerfile::graph::{DepKind, Source};

pub(super) struct Schedule {
    /// For each stage, its dependencies on stages not built yet.
    waiting: Vec<usize>,
    /// For each stage, the needed stages depending on it, once per dependency.
    dependents: Vec<Vec<usize>>,
    /// For each stage, the dependencies on it of stages not finished yet.
    uses: Vec<usize>,
    target: usize,
}

impl Schedule {
    /// The schedule of the stages the target needs, and those that can run
    /// first (in the graph's needed order).
    pub(super) fn new(graph: &StageGraph) -> (Schedule, Vec<usize>) {
        let n = graph.stages.len();
        let mut schedule = Schedule {
            waiting: vec![0; n],
            dependents: vec![Vec::new(); n],
            uses: vec![0; n],
            target: graph.target,
        };
        let order = graph.needed_order();
        for &i in &order {
            for j in stage_deps(graph, i) {
                schedule.waiting[i] += 1;
                schedule.dependents[j].push(i);
                schedule.uses[j] += 1;
            }
        }
        let ready = order
            .into_iter()
            .filter(|&i| schedule.waiting[i] == 0)
            .collect();
        (schedule, ready)
    }

    /// Whether stage `i` may take its base's result rather than a copy:
    /// its `FROM` is the one use of that stage left.
    pub(super) fn takes_base(&self, graph: &StageGraph, i: usize) -> Option<usize> {
        let dep = graph.stages[i].deps.first()?;
        match dep.source {
            Source::Stage(j) if dep.kind == DepKind::From && j != self.target => {
                (self.uses[j] == 1).then_some(j)
            }
            _ => None,
        }
    }

    /// Stage `i` has finished: the stages that can now run, and the stages
    /// whose results nothing needs any more.
    pub(super) fn finished(&mut self, graph: &StageGraph, i: usize) -> (Vec<usize>, Vec<usize>) {
        let mut ready = Vec::new();
        for &d in &self.dependents[i] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                ready.push(d);
            }
        }
        let mut released = Vec::new();
        for j in stage_deps(graph, i) {
            self.uses[j] -= 1;
            if self.uses[j] == 0 && j != self.target {
                released.push(j);
            }
        }
        (ready, released)
    }
}

/// The stages stage `i` uses, once per dependency.
fn stage_deps(graph: &StageGraph, i: usize) -> impl Iterator<Item = usize> + '_ {
    graph.stages[i].deps.iter().filter_map(|d| match d.source {
        Source::Stage(j) => Some(j),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_dockerfile::{BuildOptions, load};

    fn graph(text: &str) -> StageGraph {
        StageGraph::build(&load(text).unwrap(), &BuildOptions::default()).unwrap()
    }

    #[test]
    fn a_chain_runs_in_order_and_hands_each_result_on() {
        let g = graph("FROM scratch AS a\nFROM a AS b\nFROM b AS c\n");
        let (mut s, ready) = Schedule::new(&g);
        assert_eq!(ready, [0]);
        assert_eq!(s.takes_base(&g, 0), None);
        assert_eq!(s.finished(&g, 0), (vec![1], vec![]));
        assert_eq!(s.takes_base(&g, 1), Some(0));
        assert_eq!(s.finished(&g, 1), (vec![2], vec![0]));
        assert_eq!(s.takes_base(&g, 2), Some(1));
        // The target's result is kept.
        assert_eq!(s.finished(&g, 2), (vec![], vec![1]));
    }

    #[test]
    fn a_result_used_twice_is_copied_then_kept_until_its_last_user() {
        let g = graph(
            "FROM scratch AS a\nFROM a AS b\nCOPY --from=a / /\nFROM a AS c\nFROM scratch\nCOPY --from=b / /b\nCOPY --from=c / /c\n",
        );
        let (mut s, ready) = Schedule::new(&g);
        assert_eq!(ready, [0]);
        let (next, released) = s.finished(&g, 0);
        assert_eq!((next, released), (vec![1, 2], vec![]));
        // `b` uses `a` twice and `c` once: nobody may take it.
        assert_eq!(s.takes_base(&g, 1), None);
        assert_eq!(s.takes_base(&g, 2), None);
        assert_eq!(s.finished(&g, 2), (vec![], vec![]));
        assert_eq!(s.finished(&g, 1), (vec![3], vec![0]));
        assert_eq!(s.finished(&g, 3), (vec![], vec![1, 2]));
    }
}
