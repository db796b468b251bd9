//! Whiteouts: how deletions travel in a layer (OCI image-spec, "Whiteouts"),
//! and which overlayfs xattrs mean what in an upper dir.
//!
//! A deleted `dir/name` is an empty file `dir/.wh.name`; a directory whose
//! lower contents are hidden holds an empty file `.wh..wh..opq`. Other
//! `.wh..wh.*` names are AUFS bookkeeping and carry no meaning here.

/// The prefix of a whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
const META_PREFIX: &[u8] = b".wh..wh.";

/// What a final path component means to the unpacker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    /// An ordinary name.
    Plain,
    /// `.wh..wh..opq`: clear the parent's lower contents.
    Opaque,
    /// `.wh.NAME`: delete `NAME` (already checked to be a valid name).
    Delete(&'a [u8]),
    /// Other `.wh..wh.*` bookkeeping (AUFS); ignored.
    Meta,
    /// `.wh.`, `.wh..`, `.wh...`: refused.
    Invalid,
}

pub(crate) fn classify(name: &[u8]) -> Name<'_> {
    if name == OPAQUE_MARKER.as_bytes() {
        return Name::Opaque;
    }
    if name.starts_with(META_PREFIX) {
        return Name::Meta;
    }
    match name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        None => Name::Plain,
        Some(b"" | b"." | b"..") => Name::Invalid,
        Some(target) => Name::Delete(target),
    }
}

/// Whether a component starts with `.wh.` (reserved: never a directory).
pub(crate) fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(WHITEOUT_PREFIX.as_bytes())
}

/// overlayfs xattrs, with the `trusted.` (root) or `user.` (rootless,
/// `userxattr`) namespace.
fn overlay_key(name: &[u8]) -> Option<&[u8]> {
    name.strip_prefix(b"trusted.overlay.")
        .or_else(|| name.strip_prefix(b"user.overlay."))
}

/// Xattrs that never go into a layer nor come out of one: overlayfs's own
/// (`opaque`, `origin`, `impure`, `redirect`...) would change how a lower
/// dir is read, and `security.selinux` is a host label.
pub(crate) fn is_dropped_xattr(name: &[u8]) -> bool {
    overlay_key(name).is_some() || name == b"security.selinux"
}

/// What an overlayfs xattr on an upper-dir entry means for the layer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OverlayXattr {
    /// `opaque=y`: the directory hides its lower contents.
    Opaque,
    /// `whiteout` on a regular file: an xattr whiteout (Linux 6.7+).
    Whiteout,
    /// `redirect` or `metacopy`: the data lives elsewhere; the upper dir
    /// alone cannot describe the change.
    Unsupported(&'static str),
    /// Anything else (`origin`, `impure`, `opaque=x`, `whiteouts`...): bookkeeping.
    Ignored,
    /// Not an overlayfs xattr.
    NotOverlay,
}

pub(crate) fn overlay_xattr(name: &[u8], value: &[u8]) -> OverlayXattr {
    match overlay_key(name) {
        None => OverlayXattr::NotOverlay,
        Some(b"opaque") if value == b"y" => OverlayXattr::Opaque,
        Some(b"whiteout") => OverlayXattr::Whiteout,
        Some(b"redirect") => OverlayXattr::Unsupported("an overlayfs redirect_dir entry"),
        Some(b"metacopy") => OverlayXattr::Unsupported("an overlayfs metacopy-only entry"),
        Some(_) => OverlayXattr::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_whiteout_names_are_classified() {
        assert_eq!(classify(b"file"), Name::Plain);
        assert_eq!(classify(b".wh.file"), Name::Delete(b"file"));
        assert_eq!(classify(b".wh..hidden"), Name::Delete(b".hidden"));
        assert_eq!(classify(b".wh..wh..opq"), Name::Opaque);
        assert_eq!(classify(b".wh..wh.plnk"), Name::Meta);
        for bad in [&b".wh."[..], b".wh..", b".wh..."] {
            assert_eq!(classify(bad), Name::Invalid, "{bad:?}");
        }
        assert!(is_reserved(b".wh.x") && !is_reserved(b"wh.x"));
    }

    #[test]
    fn layer_overlay_xattrs_are_recognised() {
        assert_eq!(
            overlay_xattr(b"trusted.overlay.opaque", b"y"),
            OverlayXattr::Opaque
        );
        assert_eq!(
            overlay_xattr(b"user.overlay.opaque", b"y"),
            OverlayXattr::Opaque
        );
        assert_eq!(
            overlay_xattr(b"trusted.overlay.opaque", b"x"),
            OverlayXattr::Ignored
        );
        assert_eq!(
            overlay_xattr(b"user.overlay.origin", b""),
            OverlayXattr::Ignored
        );
        assert!(matches!(
            overlay_xattr(b"trusted.overlay.metacopy", b""),
            OverlayXattr::Unsupported(_)
        ));
        assert_eq!(overlay_xattr(b"user.mime", b"x"), OverlayXattr::NotOverlay);
        assert!(is_dropped_xattr(b"user.overlay.origin"));
        assert!(is_dropped_xattr(b"security.selinux"));
        assert!(!is_dropped_xattr(b"security.capability"));
        assert!(!is_dropped_xattr(b"user.comment"));
    }
}
