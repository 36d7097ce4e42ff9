//! Errno names as C writes them (`EIO`, `ENOSPC`), both ways.

/// The errnos a fault rule may name, with their values on Linux.
const NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("ETXTBSY", libc::ETXTBSY),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EROFS", libc::EROFS),
    ("EMLINK", libc::EMLINK),
    ("EPIPE", libc::EPIPE),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOLCK", libc::ENOLCK),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("ENODATA", libc::ENODATA),
    ("ETIME", libc::ETIME),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("EBADMSG", libc::EBADMSG),
    ("EILSEQ", libc::EILSEQ),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ENOTSUP", libc::ENOTSUP),
    ("ECONNRESET", libc::ECONNRESET),
    ("ENOBUFS", libc::ENOBUFS),
    ("ENOTCONN", libc::ENOTCONN),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ESTALE", libc::ESTALE),
    ("EUCLEAN", libc::EUCLEAN),
    ("EREMOTEIO", libc::EREMOTEIO),
    ("EDQUOT", libc::EDQUOT),
    ("ECANCELED", libc::ECANCELED),
];

/// Parses an errno: a name (`EIO`, `enospc`) or a positive number (`5`).
pub fn parse_errno(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..4096).contains(&n) {
            Ok(n)
        } else {
            Err(format!("errno={t}: a number must be between 1 and 4095"))
        };
    }
    NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(t)).map(|&(_, v)| v).ok_or_else(|| {
        format!("errno={t}: not an errno name (examples: EIO, ENOSPC, EDQUOT, EROFS)")
    })
}

/// The name of `errno` (`EIO`), or its number when it has no name here. Where two names share
/// a value (`EAGAIN`/`EWOULDBLOCK`, `EOPNOTSUPP`/`ENOTSUP`) the first listed is given.
pub fn errno_name(errno: i32) -> String {
    NAMES
        .iter()
        .find(|&&(_, v)| v == errno)
        .map_or_else(|| errno.to_string(), |&(name, _)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for (name, value) in [
            ("EIO", libc::EIO),
            ("ENOSPC", libc::ENOSPC),
            ("EDQUOT", libc::EDQUOT),
            ("EROFS", libc::EROFS),
            ("EAGAIN", libc::EAGAIN),
            ("EINTR", libc::EINTR),
            ("eio", libc::EIO),
            ("28", 28),
        ] {
            assert_eq!(parse_errno(name), Ok(value), "{name}");
        }
        assert_eq!(errno_name(libc::ENOSPC), "ENOSPC");
        assert_eq!(errno_name(libc::EAGAIN), "EAGAIN");
        assert_eq!(errno_name(4000), "4000");
        let e = parse_errno("EBOGUS").unwrap_err();
        assert!(e.contains("EBOGUS"), "{e}");
        assert!(parse_errno("0").is_err());
        assert!(parse_errno("-5").is_err());
    }
}
