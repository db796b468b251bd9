//! The error of a COPY or ADD: every variant names the instruction
//! (`copy`/`add`), and the source and destination it was working on, or the
//! flag that was wrong.

use std::io;
use std::path::PathBuf;

use crate::layer::LayerError;

#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    #[error("{op} --chmod={value}: {source}")]
    InvalidChmod {
        op: &'static str,
        value: String,
        #[source]
        source: super::chmod::ChmodError,
    },
    #[error("{op} --chown={value}: {reason}")]
    InvalidChown {
        op: &'static str,
        value: String,
        reason: String,
    },
    #[error("{op} --chown={value}: no {kind} named {name:?} in the destination image's {file}")]
    UnknownUser {
        op: &'static str,
        value: String,
        kind: &'static str,
        name: String,
        file: &'static str,
    },
    #[error("{op} --chown={value}: reading {path}: {source}")]
    UserDb {
        op: &'static str,
        value: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} --checksum={value}: {reason}")]
    Checksum {
        op: &'static str,
        value: String,
        reason: String,
    },
    #[error("copy {src:?}: source can't be a URL for COPY")]
    UrlInCopy { src: String },
    #[error("copy {src:?}: source can't be a git ref for COPY")]
    GitInCopy { src: String },
    #[error("{op} {src:?}: {what} is not supported yet")]
    Unsupported {
        op: &'static str,
        src: String,
        what: String,
    },
    #[error("{op} {flag} pattern {pattern:?}: syntax error in pattern")]
    InvalidPattern {
        op: &'static str,
        flag: &'static str,
        pattern: String,
    },
    #[error("{op} {src:?} to {dest:?}: {path:?} not found in {base}")]
    NotFound {
        op: &'static str,
        src: String,
        dest: String,
        path: String,
        base: PathBuf,
    },
    #[error(
        "{op} to {dest:?}: when using {upper} with more than one source file, the destination must be a directory and end with a /"
    )]
    SeveralSources {
        op: &'static str,
        upper: &'static str,
        dest: String,
    },
    #[error("{op} {src:?} to {dest:?}: {reason}: {path}")]
    Conflict {
        op: &'static str,
        src: String,
        dest: String,
        path: String,
        reason: &'static str,
    },
    #[error("{op} {src:?} to {dest:?}: {path} is not a directory")]
    NotADirectory {
        op: &'static str,
        src: String,
        dest: String,
        path: String,
    },
    #[error("{op} {src:?} to {dest:?}: too many levels of symbolic links at {path}")]
    TooManyLinks {
        op: &'static str,
        src: String,
        dest: String,
        path: String,
    },
    #[error("{op} {src:?} to {dest:?}: {action} {path}: {source}")]
    Io {
        op: &'static str,
        src: String,
        dest: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} {src:?} to {dest:?}: {source}")]
    Layer {
        op: &'static str,
        src: String,
        dest: String,
        #[source]
        source: Box<LayerError>,
    },
    #[error("{op} {src:?} to {dest:?}: archive entry {entry:?}: {reason}")]
    Archive {
        op: &'static str,
        src: String,
        dest: String,
        entry: String,
        reason: String,
    },
    #[error("{op} {url}: {reason}")]
    Http {
        op: &'static str,
        url: String,
        reason: String,
    },
    #[error("{op} {url}: invalid response status {status}")]
    HttpStatus {
        op: &'static str,
        url: String,
        status: u16,
    },
    #[error("digest mismatch for {url}: {actual} (expected: {expected})")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
}
