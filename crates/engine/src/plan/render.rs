//! `hoist graph --steps`: a plan's step graph as text, Graphviz dot or
//! Mermaid. Only the steps the target needs are drawn, lowest id first.

use super::{Op, Plan};

/// One line per step: `#ID KIND [STAGE] TEXT <- #INPUT...`.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    for id in plan.graph.needed(&[plan.target]) {
        let v = plan.graph.vertex(id);
        out.push_str(&format!(
            "#{id} {:<6} [{}] {}",
            v.op.op.kind(),
            v.op.stage,
            label(&v.op.op, &v.op.text)
        ));
        if !v.inputs.is_empty() {
            let inputs: Vec<String> = v.inputs.iter().map(|i| format!("#{i}")).collect();
            out.push_str(&format!(" <- {}", inputs.join(" ")));
        }
        out.push('\n');
    }
    out
}

/// Graphviz: a node per step (its kind and text), an edge per input.
pub fn dot(plan: &Plan) -> String {
    let mut out = String::from("digraph steps {\n  rankdir=TB;\n");
    for id in plan.graph.needed(&[plan.target]) {
        let v = plan.graph.vertex(id);
        let text = format!(
            "#{id} {} [{}]\\n{}",
            v.op.op.kind(),
            v.op.stage,
            label(&v.op.op, &v.op.text)
        );
        out.push_str(&format!("  s{id} [label=\"{}\"];\n", dot_escape(&text)));
        for i in &v.inputs {
            out.push_str(&format!("  s{i} -> s{id};\n"));
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart: the same nodes and edges.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for id in plan.graph.needed(&[plan.target]) {
        let v = plan.graph.vertex(id);
        let text = format!(
            "#{id} {} [{}] {}",
            v.op.op.kind(),
            v.op.stage,
            label(&v.op.op, &v.op.text)
        );
        out.push_str(&format!("  s{id}[\"{}\"]\n", mermaid_escape(&text)));
        for i in &v.inputs {
            out.push_str(&format!("  s{i} --> s{id}\n"));
        }
    }
    out
}

/// What a step is called in a drawing: a source by its image, others by
/// their instruction text, cut to one line of at most 80 characters.
fn label(op: &Op, text: &str) -> String {
    let full = match op {
        Op::Source(s) => format!("{} ({})", s.name, s.platform),
        _ => text.to_string(),
    };
    let line = full.lines().next().unwrap_or_default();
    let mut cut: String = line.chars().take(80).collect();
    if cut.len() < full.len() {
        cut.push('…');
    }
    cut
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("\\\\n", "\\n")
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}
