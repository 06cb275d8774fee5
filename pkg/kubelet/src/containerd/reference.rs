//! Image references (`[domain/]path[:tag][@digest]`), parsed and normalized as docker and
//! containerd's CRI do: `busybox` is `docker.io/library/busybox:latest`.
//!
//! Hand-written rather than the usual single regular expression: compiled, that expression
//! (its tag part is 128 repetitions of a Unicode word class) held 7 MiB of a joined agent's
//! 11 MiB heap for the life of the process.

use std::fmt;

/// Docker Hub's domain, where a name without one lives.
const DOCKER_HUB: &str = "docker.io";
/// The older spelling of Docker Hub's domain, normalized to [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`busybox` is `library/busybox`).
const OFFICIAL_NAMESPACE: &str = "library";
/// The tag of a reference that names neither a tag nor a digest.
const DEFAULT_TAG: &str = "latest";
/// Longest repository path (the name without its domain).
const MAX_REPOSITORY_LEN: usize = 255;
/// Longest tag.
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The registry's host (and port): `docker.io`, `registry.local:5000`.
    pub registry: String,
    /// The repository path within it: `library/busybox`.
    pub repository: String,
    /// The tag, `latest` where neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// The digest (`sha256:<hex>`), when given.
    pub digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing was given.
    #[error("repository name must have at least one component")]
    Empty,
    /// The string does not follow the reference grammar (upper case in the path included).
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository path is longer than 255 characters.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// The digest's algorithm is not sha256, sha384 or sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    /// The digest's hex part does not have its algorithm's length.
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
}

impl ImageReference {
    /// Parses and normalizes `s`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if !valid_name(name) {
            return Err(ReferenceError::InvalidFormat);
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::InvalidFormat);
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        let (registry, repository) = split_domain(name);
        if repository.len() > MAX_REPOSITORY_LEN {
            return Err(ReferenceError::NameTooLong);
        }
        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag.map(str::to_string),
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `[a-z0-9]+` runs joined by one separator each (`.`, `_`, `__` or any number of `-`).
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A host name (labels of letters, digits and inner `-`, joined by `.`) with an optional
/// `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (d, None),
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()))
}

/// `[domain/]component(/component)*`.
fn valid_name(name: &str) -> bool {
    let mut parts = name.split('/');
    let Some(first) = parts.next() else {
        return false;
    };
    let rest_ok = parts.all(valid_path_component);
    rest_ok && (valid_path_component(first) || (name.contains('/') && valid_domain(first)))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |x: &u8| x.is_ascii_alphanumeric() || *x == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(&b[0])
        && b.iter().all(|x| word(x) || *x == b'.' || *x == b'-')
}

/// `algorithm:hex`, with sha256, sha384 or sha512 and their hex lengths.
fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(ReferenceError::InvalidFormat)?;
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|c| {
        c.starts_with(|x: char| x.is_ascii_alphabetic())
            && c.bytes().all(|x| x.is_ascii_alphanumeric())
    });
    if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|x| x.is_ascii_hexdigit()) {
        return Err(ReferenceError::InvalidFormat);
    }
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() == want {
        Ok(())
    } else {
        Err(ReferenceError::DigestInvalidLength)
    }
}

/// Splits a name into registry and repository: the first component is a registry when
/// it has a `.` or `:` or is `localhost`; otherwise it is Docker Hub's, where a single
/// component is an official image (`library/`).
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == DOCKER_HUB_LEGACY {
        domain = DOCKER_HUB.to_string();
    }
    if domain == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_NAMESPACE}/{remainder}");
    }
    (domain, remainder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &str) -> Result<String, ReferenceError> {
        ImageReference::parse(s).map(|r| r.to_string())
    }

    const SHA: &str = "sha256:ff6c3b2c6d4b4e5a8c7f9f6e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a0";

    #[test]
    fn normalizes_as_docker_does() {
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("bitnami/redis", "docker.io/bitnami/redis:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
            ),
            ("quay.io/a/b", "quay.io/a/b:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x:y", "localhost:5000/x:y"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("test.com:tag", "docker.io/library/test.com:tag"),
            ("test.com:5000", "docker.io/library/test.com:5000"),
            (
                "my-registry.local:5000/team/app_x.y:v1.2-rc.1",
                "my-registry.local:5000/team/app_x.y:v1.2-rc.1",
            ),
            ("a__b--c/d", "docker.io/a__b--c/d:latest"),
            ("Host.Example.com/repo", "Host.Example.com/repo:latest"),
        ] {
            assert_eq!(whole(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn digests_keep_no_default_tag() {
        assert_eq!(
            whole(&format!("busybox@{SHA}")),
            Ok(format!("docker.io/library/busybox@{SHA}"))
        );
        assert_eq!(
            whole(&format!("quay.io/a/b:v1@{SHA}")),
            Ok(format!("quay.io/a/b:v1@{SHA}"))
        );
        let r = ImageReference::parse(&format!("busybox@{SHA}")).expect("valid");
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(SHA)));
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in [
            "Bad Name",
            "Busybox",
            "busybox:",
            "busybox:-tag",
            "busybox:ta g",
            ":tag",
            "/busybox",
            "busybox/",
            "a//b",
            "a..b",
            "a.-b",
            "-a",
            "a-",
            "a___b",
            "quay.io:/a",
            "quay.io:x/a",
            "-bad.io/a",
            "busybox@sha256",
            "busybox@sha256:abc",
            "busybox@",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(ImageReference::parse(""), Err(ReferenceError::Empty));
        let long_tag = format!("busybox:{}", "a".repeat(129));
        assert!(ImageReference::parse(&long_tag).is_err());
        assert!(ImageReference::parse(&format!("busybox:{}", "a".repeat(128))).is_ok());
        let long_name = format!("quay.io/{}", "a".repeat(256));
        assert_eq!(
            ImageReference::parse(&long_name),
            Err(ReferenceError::NameTooLong)
        );
    }

    #[test]
    fn digest_algorithms_and_lengths() {
        let md5 = format!("busybox@md5:{}", "a".repeat(32));
        assert_eq!(
            ImageReference::parse(&md5),
            Err(ReferenceError::DigestUnsupported)
        );
        let short = format!("busybox@sha256:{}", "a".repeat(40));
        assert_eq!(
            ImageReference::parse(&short),
            Err(ReferenceError::DigestInvalidLength)
        );
        let sha512 = format!("busybox@sha512:{}", "0".repeat(128));
        assert!(ImageReference::parse(&sha512).is_ok());
    }
}
