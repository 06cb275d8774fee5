//! Go's `encoding/pem.Decode`, which upstream's CSR and certificate checks use: the
//! first well-formed block (type, whether it has headers, the decoded bytes) and what
//! follows it. Malformed candidates are skipped the way Go skips them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The type after `BEGIN` (`CERTIFICATE REQUEST`).
    pub kind: String,
    /// Whether the block had `Key: value` headers.
    pub has_headers: bool,
    /// The decoded body.
    pub bytes: Vec<u8>,
}

const PEM_START: &[u8] = b"\n-----BEGIN ";
const PEM_END: &[u8] = b"\n-----END ";
const PEM_END_OF_LINE: &[u8] = b"-----";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_right_space_tab(mut s: &[u8]) -> &[u8] {
    while let [head @ .., b' ' | b'\t'] = s {
        s = head;
    }
    s
}

/// Go's `getLine`: one line without its line ending and trailing blanks, and the rest.
fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        None => (trim_right_space_tab(data), &data[data.len()..]),
        Some(i) => {
            let end = if i > 0 && data[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            (trim_right_space_tab(&data[..end]), &data[i + 1..])
        }
    }
}

/// The first PEM block in `data` and the bytes after it, or `None` (Go's `pem.Decode`).
pub fn decode(data: &[u8]) -> Option<(Block, &[u8])> {
    let mut rest = data;
    loop {
        if rest.starts_with(&PEM_START[1..]) {
            rest = &rest[PEM_START.len() - 1..];
        } else if let Some(i) = find(rest, PEM_START) {
            rest = &rest[i + PEM_START.len()..];
        } else {
            return None;
        }
        let (type_line, after) = get_line(rest);
        rest = after;
        let Some(kind) = type_line.strip_suffix(PEM_END_OF_LINE) else {
            continue;
        };
        let mut has_headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, next) = get_line(rest);
            if !line.contains(&b':') {
                break;
            }
            has_headers = true;
            rest = next;
        }
        let (end_index, end_trailer_index) = if !has_headers && rest.starts_with(&PEM_END[1..]) {
            (0, PEM_END.len() - 1)
        } else {
            match find(rest, PEM_END) {
                Some(i) => (i, i + PEM_END.len()),
                None => continue,
            }
        };
        let end_trailer = &rest[end_trailer_index..];
        let trailer_len = kind.len() + PEM_END_OF_LINE.len();
        if end_trailer.len() < trailer_len {
            continue;
        }
        let (trailer, rest_of_end_line) = end_trailer.split_at(trailer_len);
        if !trailer.starts_with(kind) || !trailer.ends_with(PEM_END_OF_LINE) {
            continue;
        }
        if !get_line(rest_of_end_line).0.is_empty() {
            continue;
        }
        let body: Vec<u8> = rest[..end_index]
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        let Ok(bytes) = STANDARD.decode(&body) else {
            continue;
        };
        let skip = (end_index + PEM_END.len() - 1).min(rest.len());
        let (_, after_block) = get_line(&rest[skip..]);
        return Some((
            Block {
                kind: String::from_utf8_lossy(kind).into_owned(),
                has_headers,
                bytes,
            },
            after_block,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_blocks_in_sequence() {
        let data = b"junk\n-----BEGIN A-----\nAQID\n-----END A-----\n-----BEGIN B-----\nk: v\n\nBA==\n-----END B-----\n";
        let (a, rest) = decode(data).expect("first block");
        assert_eq!(
            a,
            Block {
                kind: "A".into(),
                has_headers: false,
                bytes: vec![1, 2, 3]
            }
        );
        let (b, rest) = decode(rest).expect("second block");
        assert_eq!(
            (b.kind.as_str(), b.has_headers, b.bytes),
            ("B", true, vec![4])
        );
        assert!(decode(rest).is_none());
        assert!(decode(b"-----BEGIN A-----\n!!!\n-----END A-----\n").is_none());
        assert!(decode(b"not pem").is_none());
    }
}
