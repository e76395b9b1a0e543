//! `hoist push`'s exit codes: what a script needs to tell apart. The push's error already
//! says who is at fault through its HTTP status and code; this maps those, in one place.

/// The push succeeded (or a dry run found it would).
pub const OK: u8 = 0;
/// Anything else: a fault of hoist itself (INTERNAL).
pub const FAILED: u8 = 1;
/// The archive is bad: it cannot be read, is not an image archive, or its images are not
/// what they claim (the 4xx codes: ARCHIVE_INVALID, DIGEST_MISMATCH, PLATFORM_MISSING, ...).
pub const ARCHIVE: u8 = 2;
/// The registry failed or refused (REGISTRY_*: 502, 503, 504).
pub const REGISTRY: u8 = 3;
/// Bad usage: an unknown flag, an invalid reference, tag or platform, a configuration that
/// does not validate (sysexits EX_USAGE).
pub const USAGE: u8 = 64;
/// The archive file cannot be opened (sysexits EX_NOINPUT).
pub const NO_INPUT: u8 = 66;

/// The exit code for a failed push, from its HTTP status and error code.
pub fn for_error(status: u16, code: &str) -> u8 {
    match status {
        _ if code.starts_with("REGISTRY_") => REGISTRY,
        502..=504 => REGISTRY,
        // Who the client is and how many pushes it has: the server's concerns, not the input's.
        401 | 403 | 429 => FAILED,
        400..=499 => ARCHIVE,
        _ => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_by_status_and_code() {
        let table = [
            (400, "ARCHIVE_INVALID", ARCHIVE),
            (400, "DIGEST_MISMATCH", ARCHIVE),
            (400, "MANIFEST_INVALID", ARCHIVE),
            (400, "PLATFORM_MISSING", ARCHIVE),
            (400, "REFERENCE_MISSING", ARCHIVE),
            (400, "BODY_INCOMPLETE", ARCHIVE),
            (408, "BODY_TIMEOUT", ARCHIVE),
            (413, "DECOMPRESSED_TOO_LARGE", ARCHIVE),
            (415, "UNSUPPORTED_FORMAT", ARCHIVE),
            (502, "REGISTRY_ERROR", REGISTRY),
            (502, "REGISTRY_UNAUTHORIZED", REGISTRY),
            (502, "REGISTRY_DENIED", REGISTRY),
            (503, "REGISTRY_UNAVAILABLE", REGISTRY),
            (504, "REGISTRY_TIMEOUT", REGISTRY),
            (401, "UNAUTHORIZED", FAILED),
            (403, "DENIED", FAILED),
            (429, "TOO_MANY_REQUESTS", FAILED),
            (500, "INTERNAL", FAILED),
        ];
        for (status, code, exit) in table {
            assert_eq!(for_error(status, code), exit, "{status} {code}");
        }
    }
}
