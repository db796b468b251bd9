//! `--chmod`: an octal mode (at most `07777`), or since Dockerfile 1.14 a
//! symbolic mode such as `u+x` or `go-w,a+X`, parsed as BSD `setmode(3)`
//! with a zero umask (tonistiigi/dchapes-mode, which BuildKit uses).
//!
//! BuildKit applies an octal mode to every copied entry and to the
//! directories the copy creates; a symbolic mode is applied to each copied
//! entry's own mode, and created directories stay `0755`.

const IS_UID: u16 = 0o4000;
const IS_GID: u16 = 0o2000;
const IS_TXT: u16 = 0o1000;
const RWXU: u16 = 0o700;
const RUSER: u16 = 0o400;
const WUSER: u16 = 0o200;
const XUSER: u16 = 0o100;
const RWXG: u16 = 0o070;
const RGROUP: u16 = 0o040;
const WGROUP: u16 = 0o020;
const XGROUP: u16 = 0o010;
const RWXO: u16 = 0o007;
const ROTHER: u16 = 0o004;
const WOTHER: u16 = 0o002;
const XOTHER: u16 = 0o001;
const STANDARD: u16 = IS_UID | IS_GID | RWXU | RWXG | RWXO;

const CLEAR: u8 = 1;
const SET: u8 = 2;
const GBITS: u8 = 4;
const OBITS: u8 = 8;
const UBITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitCmd {
    cmd: u8,
    cmd2: u8,
    bits: u16,
}

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum ModeSpec {
    /// No `--chmod`: modes are kept.
    #[default]
    Keep,
    /// An octal mode, permission bits and setuid/setgid/sticky.
    Octal(u32),
    /// A symbolic mode.
    Symbolic(Vec<BitCmd>),
}

/// A `--chmod` value the Dockerfile front end refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChmodError {
    /// A number that is not octal or above `07777`.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    NotOctal(String),
    /// A symbolic mode that does not parse.
    #[error("invalid chmod parameter: '{0}': invalid syntax")]
    Syntax(String),
}

/// BuildKit's error for a bad numeric mode.
fn non_octal(value: &str) -> ChmodError {
    ChmodError::NotOctal(value.to_owned())
}

impl ModeSpec {
    /// Parses a `--chmod` value as the Dockerfile front end does.
    pub(crate) fn parse(value: &str) -> Result<ModeSpec, ChmodError> {
        if value.is_empty() {
            return Ok(ModeSpec::Keep);
        }
        if value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return match u32::from_str_radix(value, 8) {
                Ok(v) if v <= 0o7777 => Ok(ModeSpec::Octal(v)),
                _ => Err(non_octal(value)),
            };
        }
        if value.as_bytes()[0].is_ascii_digit() {
            // dchapes-mode parses it as a number and fails: BuildKit then
            // reports the numeric message.
            return Err(non_octal(value));
        }
        parse_symbolic(value.as_bytes())
            .map(ModeSpec::Symbolic)
            .ok_or_else(|| ChmodError::Syntax(value.to_owned()))
    }

    /// The mode of a copied entry whose source mode is `mode` (file type
    /// bits included); returns permission bits (`0o7777`).
    pub(crate) fn apply(&self, mode: u32) -> u32 {
        match self {
            ModeSpec::Keep => mode & 0o7777,
            ModeSpec::Octal(m) => *m,
            ModeSpec::Symbolic(cmds) => apply(cmds, mode),
        }
    }

    /// The mode of a directory the copy creates (fsutil's `MkdirAll`).
    pub(crate) fn created_dir_mode(&self) -> u32 {
        match self {
            ModeSpec::Octal(m) => *m,
            _ => 0o755,
        }
    }
}

fn add(cmds: &mut Vec<BitCmd>, op: u8, who: u16, oparg: u16, mask: u16) {
    let mut op = op;
    if op == b'=' {
        cmds.push(BitCmd {
            cmd: b'-',
            cmd2: 0,
            bits: if who != 0 { who } else { STANDARD },
        });
        op = b'+';
    }
    match op {
        b'+' | b'-' | b'X' => cmds.push(BitCmd {
            cmd: op,
            cmd2: 0,
            bits: if who != 0 { who & oparg } else { mask & oparg },
        }),
        _ => {
            // 'u', 'g', 'o': copy bits from one class to others.
            let (mut cmd2, bits) = if who != 0 {
                let mut c = 0;
                if who & RUSER != 0 {
                    c |= UBITS;
                }
                if who & RGROUP != 0 {
                    c |= GBITS;
                }
                if who & ROTHER != 0 {
                    c |= OBITS;
                }
                (c, u16::MAX)
            } else {
                (UBITS | GBITS | OBITS, mask)
            };
            match oparg {
                x if x == u16::from(b'+') => cmd2 |= SET,
                x if x == u16::from(b'-') => cmd2 |= CLEAR,
                _ => cmd2 |= SET | CLEAR,
            }
            cmds.push(BitCmd {
                cmd: op,
                cmd2,
                bits,
            });
        }
    }
}

/// BSD `setmode` with umask 0; `None` on a syntax error.
fn parse_symbolic(mut s: &[u8]) -> Option<Vec<BitCmd>> {
    let mask: u16 = !0;
    let mut cmds = Vec::new();
    let mut equal_done = false;
    loop {
        let mut who: u16 = 0;
        loop {
            match s.first()? {
                b'a' => who |= STANDARD,
                b'u' => who |= IS_UID | RWXU,
                b'g' => who |= IS_GID | RWXG,
                b'o' => who |= RWXO,
                _ => break,
            }
            s = &s[1..];
        }
        loop {
            // getop
            let op = *s.first()?;
            s = &s[1..];
            match op {
                b'+' | b'-' => {}
                b'=' => equal_done = false,
                _ => return None,
            }
            who &= !IS_TXT;
            let mut perm: u16 = 0;
            let mut perm_x: u16 = 0;
            loop {
                let b = s.first().copied().unwrap_or(0);
                match b {
                    b'r' => perm |= RUSER | RGROUP | ROTHER,
                    b's' => {
                        if who == 0 || who & !RWXO != 0 {
                            perm |= IS_UID | IS_GID;
                        }
                    }
                    b't' => {
                        if who == 0 || who & !RWXO != 0 {
                            who |= IS_TXT;
                            perm |= IS_TXT;
                        }
                    }
                    b'w' => perm |= WUSER | WGROUP | WOTHER,
                    b'X' => {
                        if op != b'-' {
                            perm_x = XUSER | XGROUP | XOTHER;
                        } else {
                            perm |= XUSER | XGROUP | XOTHER;
                        }
                    }
                    b'x' => perm |= XUSER | XGROUP | XOTHER,
                    b'u' | b'g' | b'o' => {
                        if perm != 0 {
                            add(&mut cmds, op, who, perm, mask);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_done = true;
                        }
                        if perm_x != 0 {
                            add(&mut cmds, b'X', who, perm_x, mask);
                            perm_x = 0;
                        }
                        add(&mut cmds, b, who, u16::from(op), mask);
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !equal_done) {
                            if op == b'=' {
                                equal_done = true;
                            }
                            add(&mut cmds, op, who, perm, mask);
                        }
                        if perm_x != 0 {
                            add(&mut cmds, b'X', who, perm_x, mask);
                        }
                        break;
                    }
                }
                s = &s[1..];
            }
            if s.is_empty() {
                compress(&mut cmds);
                return Some(cmds);
            }
            if s[0] == b',' {
                s = &s[1..];
                break;
            }
        }
    }
}

/// Merges runs of `+`, `-` and `X` commands as `setmode` does.
fn compress(cmds: &mut Vec<BitCmd>) {
    let mut out = Vec::with_capacity(cmds.len());
    let mut i = 0;
    while i < cmds.len() {
        let c = cmds[i];
        if !matches!(c.cmd, b'+' | b'-' | b'X') {
            out.push(c);
            i += 1;
            continue;
        }
        let (mut set, mut clr, mut x) = (0u16, 0u16, 0u16);
        while i < cmds.len() {
            let c = cmds[i];
            match c.cmd {
                b'-' => {
                    clr |= c.bits;
                    set &= !c.bits;
                    x &= !c.bits;
                }
                b'+' => {
                    set |= c.bits;
                    clr &= !c.bits;
                    x &= !c.bits;
                }
                b'X' => x |= c.bits & !set,
                _ => break,
            }
            i += 1;
        }
        for (cmd, bits) in [(b'-', clr), (b'+', set), (b'X', x)] {
            if bits != 0 {
                out.push(BitCmd { cmd, cmd2: 0, bits });
            }
        }
    }
    *cmds = out;
}

/// `Set.Apply` on a Unix mode (`mode & S_IFMT` says whether it is a dir).
fn apply(cmds: &[BitCmd], mode: u32) -> u32 {
    let is_dir = mode & 0o170_000 == 0o040_000;
    let old = (mode & 0o7777) as u16;
    let mut new = old;
    let common = |new: &mut u16, c: &BitCmd, value: u16| {
        if c.cmd2 & CLEAR != 0 {
            let clr = if c.cmd2 & SET != 0 { RWXO } else { value };
            if c.cmd2 & UBITS != 0 {
                *new &= !((clr << 6) & c.bits);
            }
            if c.cmd2 & GBITS != 0 {
                *new &= !((clr << 3) & c.bits);
            }
            if c.cmd2 & OBITS != 0 {
                *new &= !(clr & c.bits);
            }
        }
        if c.cmd2 & SET != 0 {
            if c.cmd2 & UBITS != 0 {
                *new |= (value << 6) & c.bits;
            }
            if c.cmd2 & GBITS != 0 {
                *new |= (value << 3) & c.bits;
            }
            if c.cmd2 & OBITS != 0 {
                *new |= value & c.bits;
            }
        }
    };
    for c in cmds {
        match c.cmd {
            b'u' => {
                let v = (new & RWXU) >> 6;
                common(&mut new, c, v);
            }
            b'g' => {
                let v = (new & RWXG) >> 3;
                common(&mut new, c, v);
            }
            b'o' => {
                let v = new & RWXO;
                common(&mut new, c, v);
            }
            b'+' => new |= c.bits,
            b'-' => new &= !c.bits,
            b'X' if old & (XUSER | XGROUP | XOTHER) != 0 || is_dir => new |= c.bits,
            _ => {}
        }
    }
    u32::from(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(spec: &str, mode: u32) -> u32 {
        match ModeSpec::parse(spec) {
            Ok(m) => m.apply(mode),
            Err(e) => panic!("{spec}: {e}"),
        }
    }

    const FILE: u32 = 0o100_000;
    const DIR: u32 = 0o040_000;

    #[test]
    fn ops_file_chmod_octal_and_errors_mirror_test_copy_invalid_chmod() {
        assert_eq!(ModeSpec::parse("0644"), Ok(ModeSpec::Octal(0o644)));
        assert_eq!(ModeSpec::parse("7777"), Ok(ModeSpec::Octal(0o7777)));
        assert_eq!(ModeSpec::parse(""), Ok(ModeSpec::Keep));
        for bad in ["64a", "10000", "8"] {
            assert_eq!(
                ModeSpec::parse(bad).map_err(|e| e.to_string()),
                Err(format!(
                    "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
                ))
            );
        }
        assert!(ModeSpec::parse("u+q").is_err());
        assert!(ModeSpec::parse("z").is_err());
        assert!(
            ModeSpec::parse("u+").is_ok(),
            "chmod accepts an empty perm list"
        );
    }

    #[test]
    fn ops_file_chmod_symbolic_mirrors_test_chmod_non_octal() {
        // testChmodNonOctal: a file 0666 and a directory 0124, against what
        // coreutils chmod gives.
        assert_eq!(sym("go-w", FILE | 0o666), 0o644);
        assert_eq!(sym("u=rw,g=r,o=r", FILE | 0o666), 0o644);
        assert_eq!(sym("a+X", FILE | 0o666), 0o666);
        assert_eq!(sym("go-w", DIR | 0o124), 0o104);
        assert_eq!(sym("u+rw,g+r,o-x,o+w", DIR | 0o124), 0o766);
        assert_eq!(sym("a+X", DIR | 0o124), 0o135);
        // More of setmode's forms.
        assert_eq!(sym("u+x", FILE | 0o644), 0o744);
        assert_eq!(sym("+x", FILE | 0o644), 0o755);
        assert_eq!(sym("a=r", FILE | 0o777), 0o444);
        assert_eq!(sym("u=rwx,g=u,o=", FILE | 0o600), 0o770);
        assert_eq!(sym("g=u-w", FILE | 0o640), 0o640);
        assert_eq!(sym("u+s", FILE | 0o755), 0o4755);
        assert_eq!(sym("+t", DIR | 0o777), 0o1777);
        assert_eq!(sym("a+X", FILE | 0o744), 0o755);
        assert_eq!(
            ModeSpec::parse("u+x").map(|m| m.created_dir_mode()),
            Ok(0o755)
        );
        assert_eq!(
            ModeSpec::parse("700").map(|m| m.created_dir_mode()),
            Ok(0o700)
        );
    }
}
