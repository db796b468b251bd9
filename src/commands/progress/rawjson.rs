//! The `rawjson` view: BuildKit's `client.SolveStatus`, one JSON object a
//! line on stderr, as `buildx build --progress rawjson` prints it, so
//! tools that read buildx's read hoist's. Nothing else goes on the stream.
//!
//! A step is a vertex (`digest`, `inputs`, `name`, `started`,
//! `completed`, `cached`, `error`; empty fields left out, as Go's
//! `omitempty`); its output lines are `logs` (`data` base64, stream 1:
//! hoist's sandbox hands stdout and stderr over as one stream); `--explain`
//! reasons are completed `statuses` of their vertex. A vertex digest is
//! the sha256 of the step's number, stage and name: stable within a
//! build, as BuildKit's are; a step's input is the step before it in its
//! stage.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine as _;
use hoist_engine::digest::Digest;
use hoist_engine::executor::BuildEvent;
use serde_json::{Map, Value, json};

use super::time::rfc3339_nano;
use super::{cancelled, step_name};

pub struct RawJson {
    explain: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    vertexes: HashMap<usize, Vertex>,
    order: Vec<usize>,
    /// The last vertex of each stage: the next one's input.
    last_of_stage: HashMap<String, String>,
}

#[derive(Clone)]
struct Vertex {
    digest: String,
    inputs: Vec<String>,
    name: String,
    started: SystemTime,
    completed: Option<SystemTime>,
    cached: bool,
    error: Option<String>,
}

impl Vertex {
    /// The vertex as `client.Vertex` marshals (`omitempty` fields left out).
    fn json(&self) -> Value {
        let mut v = Map::new();
        v.insert("digest".into(), json!(self.digest));
        if !self.inputs.is_empty() {
            v.insert("inputs".into(), json!(self.inputs));
        }
        v.insert("name".into(), json!(self.name));
        v.insert("started".into(), json!(rfc3339_nano(self.started)));
        if let Some(c) = self.completed {
            v.insert("completed".into(), json!(rfc3339_nano(c)));
        }
        if self.cached {
            v.insert("cached".into(), json!(true));
        }
        if let Some(e) = &self.error {
            v.insert("error".into(), json!(e));
        }
        Value::Object(v)
    }
}

/// One `SolveStatus` on its own line.
fn emit(status: Value) {
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "{status}");
}

/// A completed status of `vertex` (`client.VertexStatus`).
fn status(vertex: &str, id: &str, started: SystemTime) -> Value {
    let now = rfc3339_nano(SystemTime::now());
    json!({
        "id": id,
        "vertex": vertex,
        "current": 0,
        "timestamp": now,
        "started": rfc3339_nano(started),
        "completed": now,
    })
}

impl RawJson {
    pub fn new(explain: bool) -> RawJson {
        RawJson {
            explain,
            state: Mutex::new(State::default()),
        }
    }

    pub fn event(&self, e: BuildEvent) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            // Collected by `build`'s `Warnings`, sent as `warnings` after the build.
            BuildEvent::Warning(_) => {}
            BuildEvent::Step { id, stage, text } => {
                let name = step_name(&stage, &text);
                let digest =
                    Digest::of(format!("hoist step {id}\n{stage}\n{text}").as_bytes()).to_string();
                let inputs = state
                    .last_of_stage
                    .insert(stage, digest.clone())
                    .into_iter()
                    .collect();
                let v = Vertex {
                    digest,
                    inputs,
                    name,
                    started: SystemTime::now(),
                    completed: None,
                    cached: false,
                    error: None,
                };
                emit(json!({ "vertexes": [v.json()] }));
                state.order.push(id);
                state.vertexes.insert(id, v);
            }
            BuildEvent::Cached { id } => {
                if let Some(v) = state.vertexes.get_mut(&id) {
                    v.cached = true;
                    emit(json!({ "vertexes": [v.json()] }));
                }
            }
            BuildEvent::Imported { id, from } if self.explain => {
                if let Some(v) = state.vertexes.get(&id) {
                    let s = status(
                        &v.digest,
                        &format!("cache hit: imported from {from}"),
                        v.started,
                    );
                    emit(json!({ "statuses": [s] }));
                }
            }
            BuildEvent::Explain { id, reason } if self.explain => {
                if let Some(v) = state.vertexes.get(&id) {
                    let s = status(&v.digest, &format!("cache miss: {reason}"), v.started);
                    emit(json!({ "statuses": [s] }));
                }
            }
            BuildEvent::Imported { .. } | BuildEvent::Explain { .. } => {}
            BuildEvent::Output { id, line } => {
                if let Some(v) = state.vertexes.get(&id) {
                    let data =
                        base64::engine::general_purpose::STANDARD.encode(format!("{line}\n"));
                    emit(json!({ "logs": [{
                        "vertex": v.digest,
                        "stream": 1,
                        "data": data,
                        "timestamp": rfc3339_nano(SystemTime::now()),
                    }] }));
                }
            }
            BuildEvent::Done { id, .. } => {
                if let Some(v) = state.vertexes.get_mut(&id) {
                    v.completed = Some(SystemTime::now());
                    emit(json!({ "vertexes": [v.json()] }));
                }
            }
        }
    }

    /// The steps still open failed with `error`: completed with it.
    pub fn finish(&self, error: Option<&str>) {
        let Some(error) = error else { return };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now();
        let order = state.order.clone();
        for id in order {
            if let Some(v) = state.vertexes.get_mut(&id)
                && v.completed.is_none()
            {
                v.completed = Some(now);
                // An interrupt is BuildKit's cancellation, which readers
                // tell by this suffix.
                v.error = Some(if cancelled(error) {
                    "context canceled".to_string()
                } else {
                    error.to_string()
                });
                emit(json!({ "vertexes": [v.json()] }));
            }
        }
    }

    /// The lines after the build as BuildKit's exporter reports them: an
    /// `exporting to image` vertex whose statuses they are (`writing
    /// image sha256:… done` is the status `writing image sha256:…`).
    pub fn summary(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let started = SystemTime::now();
        let digest =
            Digest::of(format!("hoist export\n{}", lines.join("\n")).as_bytes()).to_string();
        let mut v = Vertex {
            digest: digest.clone(),
            inputs: Vec::new(),
            name: "exporting to image".into(),
            started,
            completed: None,
            cached: false,
            error: None,
        };
        emit(json!({ "vertexes": [v.json()] }));
        let statuses: Vec<Value> = lines
            .iter()
            .map(|l| status(&digest, l.strip_suffix(" done").unwrap_or(l), started))
            .collect();
        emit(json!({ "statuses": statuses }));
        v.completed = Some(SystemTime::now());
        emit(json!({ "vertexes": [v.json()] }));
    }
}

/// Dockerfile warnings as `SolveStatus.warnings` (BuildKit reports its
/// lint warnings there): `short` is `RULE: MESSAGE (line N)`, base64 as
/// Go's `[]byte`, with the line as its `range`.
pub fn warnings(warnings: &[hoist_dockerfile::Warning]) {
    if warnings.is_empty() {
        return;
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let list: Vec<Value> = warnings
        .iter()
        .map(|w| {
            let mut v = Map::new();
            v.insert("level".into(), json!(1));
            if w.line == 0 {
                v.insert(
                    "short".into(),
                    json!(b64(&format!("{}: {}", w.rule, w.message))),
                );
            } else {
                let short = format!("{}: {} (line {})", w.rule, w.message, w.line);
                v.insert("short".into(), json!(b64(&short)));
                let at = json!({ "line": w.line });
                v.insert("range".into(), json!([{ "start": at, "end": at }]));
            }
            Value::Object(v)
        })
        .collect();
    emit(json!({ "warnings": list }));
}
