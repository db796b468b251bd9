//! BuildKit's per-instruction argument splitters.
