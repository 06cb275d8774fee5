//! The JSON served for a stored built-in object, spliced from its stored bytes.
//!
//! A built-in object is stored in the order it is served in (kind, apiVersion,
//! metadata in ObjectMeta's Go field order, status right after spec; see
//! `generic::encode`), less its `metadata.resourceVersion`, which is the revision of the
//! write. The served JSON is therefore the stored bytes with
//! `"resourceVersion":"<revision>"` put in its place: no decode into a
//! `serde_json::Value` and no encode of it again, which with one in-process watch of every
//! pod were a twentieth of a busy server's CPU. The layout is checked on every use, so
//! bytes in any other form (objects written by earlier versions of k1s, whose keys were
//! stored in another order) give `None` and are served the long way, decoded.

use std::ops::Range;

use super::generic::{OBJECT_META_ORDER, VERSION_INDEX as BEFORE_VERSION};

/// What [`layout`] found in a stored object: where the version goes.
struct Layout {
    /// The metadata object, braces included.
    metadata: Range<usize>,
    /// Where `"resourceVersion":…` is inserted.
    at: usize,
    /// Whether a comma goes before the inserted entry (it ends the metadata) or after it
    /// (a key follows); `None`: the metadata is otherwise empty.
    comma: Option<Comma>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comma {
    Before,
    After,
}

/// The served JSON of a stored object of `kind` in `api_version`, at `revision`, if
/// its bytes are in the served order; `None` when they are not (or are not JSON of an
/// object with metadata).
pub(crate) fn object(
    stored: &[u8],
    kind: &str,
    api_version: &str,
    revision: i64,
) -> Option<Vec<u8>> {
    let layout = layout(stored, kind, api_version)?;
    let mut out = Vec::with_capacity(stored.len() + VERSION_ROOM);
    out.extend_from_slice(&stored[..layout.at]);
    version_entry(&mut out, revision, layout.comma);
    out.extend_from_slice(&stored[layout.at..]);
    Some(out)
}

/// The served `PartialObjectMetadata` JSON of a stored object (its metadata with the
/// version), under the same conditions as [`object`].
pub(crate) fn partial_metadata(
    stored: &[u8],
    kind: &str,
    api_version: &str,
    revision: i64,
) -> Option<Vec<u8>> {
    const HEAD: &[u8] =
        br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#;
    let layout = layout(stored, kind, api_version)?;
    let meta = &layout.metadata;
    let mut out = Vec::with_capacity(HEAD.len() + meta.len() + VERSION_ROOM + 1);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(&stored[meta.start..layout.at]);
    version_entry(&mut out, revision, layout.comma);
    out.extend_from_slice(&stored[layout.at..meta.end]);
    out.push(b'}');
    Some(out)
}

/// Room for the version entry: its key, quotes, comma and a 19-digit revision.
const VERSION_ROOM: usize = 48;

fn version_entry(out: &mut Vec<u8>, revision: i64, comma: Option<Comma>) {
    use std::io::Write;
    if comma == Some(Comma::Before) {
        out.push(b',');
    }
    // Writing to a Vec cannot fail.
    let _ = write!(out, "\"resourceVersion\":\"{revision}\"");
    if comma == Some(Comma::After) {
        out.push(b',');
    }
}

/// Checks that `stored` is in the served order and finds where the version goes.
fn layout(stored: &[u8], kind: &str, api_version: &str) -> Option<Layout> {
    let mut top = Scanner { b: stored, i: 0 };
    let (keys, _) = top.object()?;
    top.ws();
    if top.i != stored.len() {
        return None;
    }
    let key = |e: &Entry| &stored[e.key.clone()];
    // kind, apiVersion and metadata lead, with the values the served form sets.
    let [kind_at, version_at, meta_at, rest @ ..] = keys.as_slice() else {
        return None;
    };
    if key(kind_at) != b"kind" || key(version_at) != b"apiVersion" || key(meta_at) != b"metadata" {
        return None;
    }
    if !is_string(&stored[kind_at.value.clone()], kind)
        || !is_string(&stored[version_at.value.clone()], api_version)
    {
        return None;
    }
    // status right after spec, where both are there.
    let spec = rest.iter().position(|e| key(e) == b"spec");
    let status = rest.iter().position(|e| key(e) == b"status");
    if let (Some(spec), Some(status)) = (spec, status)
        && status != spec + 1
    {
        return None;
    }
    // The metadata's known keys first, in ObjectMeta's order, and no version stored.
    let mut meta = Scanner {
        b: stored,
        i: meta_at.value.start,
    };
    let (entries, closing) = meta.object()?;
    let mut known = true;
    let mut last = None;
    let mut insert = None;
    for e in &entries {
        let pos = OBJECT_META_ORDER
            .iter()
            .position(|k| k.as_bytes() == key(e));
        match pos {
            Some(BEFORE_VERSION) => return None,
            Some(p) if !known || last.is_some_and(|l| l >= p) => return None,
            Some(p) => last = Some(p),
            None => known = false,
        }
        if insert.is_none() && pos.is_none_or(|p| p > BEFORE_VERSION) {
            insert = Some(e.key.start - 1);
        }
    }
    let (at, comma) = match insert {
        Some(at) => (at, Some(Comma::After)),
        None if entries.is_empty() => (closing, None),
        None => (closing, Some(Comma::Before)),
    };
    Some(Layout {
        metadata: meta_at.value.clone(),
        at,
        comma,
    })
}

/// Whether `json` is the JSON string `s` (which needs no escapes: kinds and versions).
fn is_string(json: &[u8], s: &str) -> bool {
    json.len() == s.len() + 2
        && json.first() == Some(&b'"')
        && json.last() == Some(&b'"')
        && &json[1..json.len() - 1] == s.as_bytes()
}

/// One entry of an object: its key's characters (within the quotes) and its value.
struct Entry {
    key: Range<usize>,
    value: Range<usize>,
}

/// A forward reader of JSON bytes that finds an object's keys and the extent of its
/// values without decoding them.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// The object here: its entries and where its closing brace is.
    fn object(&mut self) -> Option<(Vec<Entry>, usize)> {
        self.eat(b'{')?;
        let mut entries = Vec::with_capacity(16);
        if self.peek()? == b'}' {
            let closing = self.i;
            self.i += 1;
            return Some((entries, closing));
        }
        loop {
            let key = self.string()?;
            let key = key.start + 1..key.end - 1;
            self.eat(b':')?;
            let value = self.value()?;
            entries.push(Entry { key, value });
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    let closing = self.i;
                    self.i += 1;
                    return Some((entries, closing));
                }
                _ => return None,
            }
        }
    }

    /// The string here, quotes included.
    fn string(&mut self) -> Option<Range<usize>> {
        self.eat(b'"')?;
        let start = self.i - 1;
        loop {
            self.i += memchr::memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Some(start..self.i);
            }
            self.i += 2;
        }
    }

    /// The value here, whatever it is (containers are skipped by their brackets,
    /// minding strings; what is inside is not checked further).
    fn value(&mut self) -> Option<Range<usize>> {
        let start = match self.peek()? {
            b'"' => return self.string(),
            b'{' | b'[' => self.i,
            _ => {
                let start = self.i;
                while self.b.get(self.i).is_some_and(|c| {
                    !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                }) {
                    self.i += 1;
                }
                return (self.i > start).then_some(start..self.i);
            }
        };
        let mut depth = 0usize;
        loop {
            self.i += self
                .b
                .get(self.i..)?
                .iter()
                .position(|c| matches!(c, b'"' | b'{' | b'[' | b'}' | b']'))?;
            match self.b[self.i] {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                    if depth == 0 {
                        return Some(start..self.i);
                    }
                }
                _ => self.i += 1,
            }
        }
    }
}
