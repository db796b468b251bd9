//! The bounds on the work a Dockerfile may ask of the front end, in one
//! place.
//!
//! BuildKit's shell lexer has no limits of its own: a few hundred bytes of
//! nested `ARG`s expand to gigabytes before anything stops them (in
//! practice gRPC's 16 MiB message size or the machine's memory). hoist
//! refuses such Dockerfiles with an error naming the line, at sizes no real
//! Dockerfile comes near: Linux itself refuses a single environment string
//! longer than 128 KiB (`MAX_ARG_STRLEN`) to `execve`, and a whole image
//! config is typically a few KiB.

/// The longest expanded word, in bytes (1 MiB): every value an `ENV`,
/// `ARG`, `LABEL`, `WORKDIR`, `COPY` ... argument expands to, checked while
/// the word is being expanded, so a bomb stops at this size.
pub const MAX_WORD_BYTES: usize = 1 << 20;

/// The most a stage's expanded instructions may add up to, in bytes
/// (64 MiB): the base image's env plus every word the stage's instructions
/// expand to. The stage's image config (env, labels, working dir, ...) and
/// its history (which repeats each instruction) are made of these words, so
/// this bounds both.
pub const MAX_CONFIG_BYTES: usize = 64 << 20;

/// How many (character × pattern element) steps the patterns of one word
/// (`${V#p}`, `${V%p}`, `${V/p/r}`) may take (2^24, tens of milliseconds):
/// matching costs the length of the value times the length of the pattern,
/// and both may be up to [`MAX_WORD_BYTES`]. Real patterns have a handful
/// of elements: a 1 MiB value against a 15-element pattern fits.
pub const MAX_PATTERN_STEPS: u64 = 1 << 24;

/// The longest working directory a `WORKDIR` may resolve to, in bytes:
/// Linux's `PATH_MAX` (4096), beyond which neither `mkdir` nor `chdir` can
/// take the path (BuildKit fails there with `ENAMETOOLONG`). Relative
/// `WORKDIR`s add up, so this bounds what a chain of them costs.
pub const MAX_WORKDIR_BYTES: usize = 4096;

/// The largest Dockerfile or ignore file (`.dockerignore`,
/// `<Dockerfile>.dockerignore`) hoist reads, from a file or stdin: each is
/// read whole, and the front end takes a few times its size in memory.
/// BuildKit sends the Dockerfile over gRPC, whose 16 MiB messages bound it
/// in practice; 64 MiB leaves room for generated files and stays bounded.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// How deeply `${...}` may nest inside the operands of other `${...}`.
/// BuildKit has no limit; real Dockerfiles use two or three levels.
pub const MAX_NESTING: usize = 100;

/// A size in the units the limits above are written in, for messages.
pub fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}
