//! A bare sandbox entry point for this crate's tests: `hoist-sandbox-probe
//! __hoist-sandbox SPEC` does what `hoist` does with the same arguments.

fn main() {
    std::process::exit(hoist_sandbox::dispatch().unwrap_or(2));
}
