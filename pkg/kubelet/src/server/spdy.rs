//! SPDY/3.1 as kubectl speaks it over an upgraded HTTP/1.1 connection (moby's spdystream):
//! frames, zlib-compressed header blocks with SPDY/3's preset dictionary, and a server
//! session that accepts the streams the client opens.
//!
//! No crate implements SPDY, so this is the small subset Kubernetes uses: SYN_STREAM from
//! the client, SYN_REPLY from the server, DATA both ways with FIN for half-close,
//! RST_STREAM, PING echo and GOAWAY. spdystream does no flow control, so WINDOW_UPDATE and
//! SETTINGS are read and ignored.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// SPDY version number in control frames.
const VERSION: u16 = 3;
/// Control frame types.
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
/// FIN on a data or control frame: the sender's half of the stream is done.
const FLAG_FIN: u8 = 0x01;
/// The most data one frame may carry (24-bit length).
const MAX_DATA: usize = (1 << 24) - 1;
/// Data is sent in chunks of at most this, so one stream cannot starve the others.
const CHUNK: usize = 32 * 1024;
/// A header block larger than this, decompressed, is a protocol error.
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Header names of SPDY/3's compression dictionary, each written length-prefixed.
const DICTIONARY_NAMES: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail, written as is.
const DICTIONARY_TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// SPDY/3's zlib dictionary for header blocks (section 2.6.10.1 of the draft).
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1500);
        for name in DICTIONARY_NAMES {
            d.extend_from_slice(&(name.len() as u32).to_be_bytes());
            d.extend_from_slice(name.as_bytes());
        }
        d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
        d
    })
}

/// What went wrong on a SPDY connection.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// The peer broke the protocol.
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Header pairs of a stream, names lowercase as SPDY/3 requires.
pub type Headers = Vec<(String, String)>;

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A new stream from the peer.
    SynStream {
        /// Its id (odd from a client).
        stream_id: u32,
        /// Its headers.
        headers: Headers,
        /// FIN: the peer sends nothing on it.
        fin: bool,
    },
    /// The answer to a SYN_STREAM.
    SynReply {
        /// The stream answered.
        stream_id: u32,
        /// Headers of the reply.
        headers: Headers,
        /// FIN: the replier sends nothing on it.
        fin: bool,
    },
    /// The stream is aborted.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// Why (SPDY status code).
        status: u32,
    },
    /// Connection settings (ignored).
    Settings,
    /// A ping to echo.
    Ping {
        /// Its id.
        id: u32,
    },
    /// The connection is ending.
    GoAway {
        /// The last stream the sender accepted.
        last_stream_id: u32,
        /// Why.
        status: u32,
    },
    /// More headers on a stream (ignored).
    Headers {
        /// The stream.
        stream_id: u32,
    },
    /// A flow-control window grew (spdystream does no flow control; ignored).
    WindowUpdate {
        /// The stream.
        stream_id: u32,
    },
    /// Bytes of a stream.
    Data {
        /// The stream.
        stream_id: u32,
        /// FIN: the sender's half is done.
        fin: bool,
        /// The bytes.
        data: Bytes,
    },
    /// A control frame type this codec does not know (skipped).
    Unknown(u16),
}

/// Encodes and decodes frames for one connection: each direction's header blocks form one
/// zlib stream, so the codec is stateful.
pub struct Codec {
    inflate: Decompress,
    deflate: Compress,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    /// A codec for a new connection.
    pub fn new() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Our header blocks are compressed against the same dictionary the peer expects;
        // it always succeeds with the zlib-rs backend at the start of a stream.
        let _ = deflate.set_dictionary(dictionary());
        Self {
            inflate: Decompress::new(true),
            deflate,
        }
    }

    /// Takes one whole frame off the front of `buf`, or `None` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let control = buf[0] & 0x80 != 0;
        let flags = buf[4];
        let head = buf.split_to(8);
        let mut payload = buf.split_to(len).freeze();
        if !control {
            let stream_id = u32::from_be_bytes([head[0] & 0x7f, head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Protocol(format!(
                "unsupported version {version}"
            )));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, p: &Bytes| {
            if p.len() < n {
                Err(SpdyError::Protocol(format!(
                    "control frame {kind} too short: {} bytes",
                    p.len()
                )))
            } else {
                Ok(())
            }
        };
        let fin = flags & FLAG_FIN != 0;
        Ok(Some(match kind {
            SYN_STREAM => {
                need(10, &payload)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                payload.advance(6);
                let headers = self.inflate_headers(&payload)?;
                Frame::SynStream {
                    stream_id,
                    headers,
                    fin,
                }
            }
            SYN_REPLY => {
                need(4, &payload)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.inflate_headers(&payload)?;
                Frame::SynReply {
                    stream_id,
                    headers,
                    fin,
                }
            }
            RST_STREAM => {
                need(8, &payload)?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            SETTINGS => Frame::Settings,
            PING => {
                need(4, &payload)?;
                Frame::Ping {
                    id: payload.get_u32(),
                }
            }
            GOAWAY => {
                need(8, &payload)?;
                Frame::GoAway {
                    last_stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            HEADERS => {
                need(4, &payload)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                // Keep the zlib stream in step even though the headers are not used.
                self.inflate_headers(&payload)?;
                Frame::Headers { stream_id }
            }
            WINDOW_UPDATE => {
                need(8, &payload)?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown(other),
        }))
    }

    /// Appends the wire form of `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_DATA {
                    return Err(SpdyError::Protocol("data frame too large".into()));
                }
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(if *fin { FLAG_FIN } else { 0 });
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                Ok(())
            }
            Frame::SynStream {
                stream_id,
                headers,
                fin,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&[0; 6]);
                p.extend_from_slice(&self.deflate_headers(headers)?);
                control(out, SYN_STREAM, u8::from(*fin), &p);
                Ok(())
            }
            Frame::SynReply {
                stream_id,
                headers,
                fin,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&self.deflate_headers(headers)?);
                control(out, SYN_REPLY, u8::from(*fin), &p);
                Ok(())
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&status.to_be_bytes());
                control(out, RST_STREAM, 0, &p);
                Ok(())
            }
            Frame::Ping { id } => {
                control(out, PING, 0, &id.to_be_bytes());
                Ok(())
            }
            Frame::GoAway {
                last_stream_id,
                status,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&status.to_be_bytes());
                control(out, GOAWAY, 0, &p);
                Ok(())
            }
            Frame::Settings => {
                control(out, SETTINGS, 0, &0u32.to_be_bytes());
                Ok(())
            }
            Frame::Headers { .. } | Frame::WindowUpdate { .. } | Frame::Unknown(_) => Err(
                SpdyError::Protocol("this codec does not send that frame".into()),
            ),
        }
    }

    fn inflate_headers(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        if block.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<u8> = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let consumed = (self.inflate.total_in() - before_in) as usize;
            input = &input[consumed..];
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    let produced = self.inflate.total_out() - before_out;
                    if input.is_empty() && out.len() < out.capacity() {
                        break;
                    }
                    if consumed == 0 && produced == 0 && out.len() < out.capacity() {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| SpdyError::Protocol(format!("header dictionary: {e}")))?;
                }
                Err(e) => {
                    return Err(SpdyError::Protocol(format!("header block: {e}")));
                }
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::Protocol("header block too large".into()));
            }
        }
        parse_header_block(&out)
    }

    fn deflate_headers(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let block = header_block(headers);
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = &block[..];
        loop {
            out.reserve(block.len() + 64);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Protocol(format!("compress headers: {e}")))?;
            let consumed = (self.deflate.total_in() - before) as usize;
            input = &input[consumed..];
            // Done once all input is in and the flush left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn control(out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[u8]) {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
}

/// The uncompressed name/value block: a count, then length-prefixed names and values
/// (several values of one name joined by NUL).
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        match merged.iter_mut().find(|(n, _)| *n == k) {
            Some((_, existing)) => {
                existing.push('\0');
                existing.push_str(v);
            }
            None => merged.push((k, v.clone())),
        }
    }
    let mut b = Vec::new();
    b.extend_from_slice(&(merged.len() as u32).to_be_bytes());
    for (k, v) in &merged {
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

/// Reads a name/value block; a name with NUL-separated values gives one pair per value.
pub fn parse_header_block(mut b: &[u8]) -> Result<Headers, SpdyError> {
    let short = || SpdyError::Protocol("truncated header block".into());
    let take = |b: &mut &[u8]| -> Result<Vec<u8>, SpdyError> {
        if b.len() < 4 {
            return Err(short());
        }
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        *b = &b[4..];
        if b.len() < n {
            return Err(short());
        }
        let v = b[..n].to_vec();
        *b = &b[n..];
        Ok(v)
    };
    if b.len() < 4 {
        return Err(short());
    }
    let count = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    b = &b[4..];
    let mut out = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(&take(&mut b)?).to_ascii_lowercase();
        let value = take(&mut b)?;
        for v in value.split(|c| *c == 0) {
            out.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(out)
}

/// The first value of header `name` (lowercase) in `headers`.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// === the server session ===

/// What the session's writer sends.
enum Out {
    Frame(Frame),
}

/// A stream the client opened, already answered with SYN_REPLY.
pub struct Stream {
    /// The stream's id.
    pub id: u32,
    /// Its headers.
    pub headers: Headers,
    /// Bytes the client sends on it; closed at the client's FIN or RST.
    pub incoming: mpsc::UnboundedReceiver<Bytes>,
    /// Sends on it.
    pub sender: StreamSender,
}

/// Sends on one stream.
#[derive(Clone)]
pub struct StreamSender {
    id: u32,
    out: mpsc::UnboundedSender<Out>,
}

impl StreamSender {
    /// Sends bytes; false once the connection is gone.
    pub fn send(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(CHUNK) {
            let frame = Frame::Data {
                stream_id: self.id,
                fin: false,
                data: Bytes::copy_from_slice(chunk),
            };
            if self.out.send(Out::Frame(frame)).is_err() {
                return false;
            }
        }
        true
    }

    /// Half-closes the stream (FIN): the client reads EOF.
    pub fn finish(&self) {
        let _ = self.out.send(Out::Frame(Frame::Data {
            stream_id: self.id,
            fin: true,
            data: Bytes::new(),
        }));
    }

    /// Copies `reader` onto the stream until EOF, then half-closes it.
    pub async fn copy_from<R: AsyncRead + Unpin>(&self, mut reader: R) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !self.send(&buf[..n]) {
                        return;
                    }
                }
            }
        }
        self.finish();
    }
}

/// A server-side SPDY connection: streams the client opens arrive on the receiver.
pub struct Session {
    /// Streams as the client opens them.
    pub streams: mpsc::UnboundedReceiver<Stream>,
    out: mpsc::UnboundedSender<Out>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    /// Runs SPDY over `io` (the upgraded connection).
    pub fn start<IO>(io: IO) -> Session
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(io);
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
        let (streams_tx, streams_rx) = mpsc::unbounded_channel();
        // The reader inflates and the writer deflates; each half of the codec is used by
        // one task at a time.
        let codec = std::sync::Arc::new(tokio::sync::Mutex::new(Codec::new()));

        let wcodec = codec.clone();
        let writer = tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(Out::Frame(frame)) = out_rx.recv().await {
                buf.clear();
                let mut goaway = matches!(frame, Frame::GoAway { .. });
                {
                    let mut c = wcodec.lock().await;
                    if c.encode(&frame, &mut buf).is_err() {
                        break;
                    }
                }
                // Batch what is already queued into one write; nothing goes after a GOAWAY.
                while buf.len() < 64 * 1024 && !goaway {
                    match out_rx.try_recv() {
                        Ok(Out::Frame(f)) => {
                            goaway = matches!(f, Frame::GoAway { .. });
                            let mut c = wcodec.lock().await;
                            if c.encode(&f, &mut buf).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                if goaway {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });

        let out = out_tx.clone();
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut inbound: HashMap<u32, mpsc::UnboundedSender<Bytes>> = HashMap::new();
            loop {
                let frame = {
                    let mut c = codec.lock().await;
                    c.decode(&mut buf)
                };
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Ok(None) => match rd.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => continue,
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "spdy connection failed");
                        break;
                    }
                };
                match frame {
                    Frame::SynStream {
                        stream_id,
                        headers,
                        fin,
                    } => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        if !fin {
                            inbound.insert(stream_id, tx);
                        }
                        let _ = out.send(Out::Frame(Frame::SynReply {
                            stream_id,
                            headers: Vec::new(),
                            fin: false,
                        }));
                        let stream = Stream {
                            id: stream_id,
                            headers,
                            incoming: rx,
                            sender: StreamSender {
                                id: stream_id,
                                out: out.clone(),
                            },
                        };
                        if streams_tx.send(stream).is_err() {
                            break;
                        }
                    }
                    Frame::Data {
                        stream_id,
                        fin,
                        data,
                    } => {
                        if let Some(tx) = inbound.get(&stream_id)
                            && !data.is_empty()
                        {
                            let _ = tx.send(data);
                        }
                        if fin {
                            inbound.remove(&stream_id);
                        }
                    }
                    Frame::RstStream { stream_id, .. } => {
                        inbound.remove(&stream_id);
                    }
                    Frame::Ping { id } => {
                        let _ = out.send(Out::Frame(Frame::Ping { id }));
                    }
                    Frame::GoAway { .. } => break,
                    _ => {}
                }
            }
            // Dropping the senders ends every stream's incoming side.
        });

        Session {
            streams: streams_rx,
            out: out_tx,
            tasks: vec![reader, writer],
        }
    }

    /// Ends the connection: GOAWAY after everything queued, then close.
    pub async fn close(mut self) {
        let _ = self.out.send(Out::Frame(Frame::GoAway {
            last_stream_id: 0,
            status: 0,
        }));
        drop(self.out);
        if let Some(writer) = self.tasks.pop() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b"enq=0."));
        assert_eq!(
            d.len(),
            DICTIONARY_NAMES.iter().map(|n| 4 + n.len()).sum::<usize>() + DICTIONARY_TAIL.len()
        );
    }

    #[test]
    fn header_blocks_round_trip_through_two_codecs() {
        let mut client = Codec::new();
        let mut server = Codec::new();
        let mut wire = Vec::new();
        for (i, t) in ["error", "stdin", "stdout"].iter().enumerate() {
            let frame = Frame::SynStream {
                stream_id: 1 + 2 * i as u32,
                headers: vec![
                    ("streamType".into(), t.to_string()),
                    ("port".into(), "80".into()),
                ],
                fin: false,
            };
            client.encode(&frame, &mut wire).expect("encode");
        }
        let mut buf = BytesMut::from(&wire[..]);
        for (i, t) in ["error", "stdin", "stdout"].iter().enumerate() {
            let f = server.decode(&mut buf).expect("decode").expect("frame");
            assert_eq!(
                f,
                Frame::SynStream {
                    stream_id: 1 + 2 * i as u32,
                    headers: vec![
                        ("streamtype".into(), t.to_string()),
                        ("port".into(), "80".into())
                    ],
                    fin: false,
                }
            );
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn data_frames_wait_for_all_their_bytes() {
        let mut c = Codec::new();
        let mut wire = Vec::new();
        c.encode(
            &Frame::Data {
                stream_id: 5,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            &mut wire,
        )
        .expect("encode");
        assert_eq!(&wire[..8], &[0, 0, 0, 5, 1, 0, 0, 5]);
        let mut buf = BytesMut::from(&wire[..10]);
        assert_eq!(c.decode(&mut buf).expect("decode"), None);
        buf.extend_from_slice(&wire[10..]);
        assert_eq!(
            c.decode(&mut buf).expect("decode"),
            Some(Frame::Data {
                stream_id: 5,
                fin: true,
                data: Bytes::from_static(b"hello")
            })
        );
    }

    #[test]
    fn control_frames_round_trip() {
        let mut a = Codec::new();
        let mut b = Codec::new();
        let frames = [
            Frame::Ping { id: 7 },
            Frame::RstStream {
                stream_id: 3,
                status: 5,
            },
            Frame::GoAway {
                last_stream_id: 9,
                status: 0,
            },
            Frame::SynReply {
                stream_id: 3,
                headers: vec![],
                fin: false,
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            a.encode(f, &mut wire).expect("encode");
        }
        // A ping is 12 bytes: the control header and the id.
        assert_eq!(&wire[..12], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
        let mut buf = BytesMut::from(&wire[..]);
        for f in &frames {
            assert_eq!(&b.decode(&mut buf).expect("decode").expect("frame"), f);
        }
    }

    #[test]
    fn multiple_values_are_nul_separated() {
        let block = header_block(&vec![
            (
                "X-Stream-Protocol-Version".into(),
                "v4.channel.k8s.io".into(),
            ),
            ("x-stream-protocol-version".into(), "channel.k8s.io".into()),
        ]);
        let parsed = parse_header_block(&block).expect("parse");
        assert_eq!(
            parsed,
            vec![
                (
                    "x-stream-protocol-version".to_string(),
                    "v4.channel.k8s.io".to_string()
                ),
                (
                    "x-stream-protocol-version".to_string(),
                    "channel.k8s.io".to_string()
                ),
            ]
        );
        assert!(parse_header_block(&block[..block.len() - 1]).is_err());
    }

    #[tokio::test]
    async fn a_session_replies_echoes_pings_and_carries_data() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let mut session = Session::start(server_io);
        let (mut crd, mut cwr) = tokio::io::split(client_io);
        let mut client = Codec::new();
        let mut wire = Vec::new();
        client
            .encode(
                &Frame::SynStream {
                    stream_id: 1,
                    headers: vec![("streamtype".into(), "stdin".into())],
                    fin: false,
                },
                &mut wire,
            )
            .expect("encode");
        client
            .encode(&Frame::Ping { id: 1 }, &mut wire)
            .expect("encode");
        client
            .encode(
                &Frame::Data {
                    stream_id: 1,
                    fin: true,
                    data: Bytes::from_static(b"in"),
                },
                &mut wire,
            )
            .expect("encode");
        cwr.write_all(&wire).await.expect("write");
        let mut stream = session.streams.recv().await.expect("stream");
        assert_eq!(header(&stream.headers, "streamtype"), Some("stdin"));
        assert_eq!(
            stream.incoming.recv().await,
            Some(Bytes::from_static(b"in"))
        );
        assert_eq!(stream.incoming.recv().await, None);
        stream.sender.send(b"out");
        stream.sender.finish();
        session.close().await;
        let mut got = BytesMut::new();
        crd.read_buf(&mut got).await.expect("read");
        let mut frames = Vec::new();
        loop {
            match client.decode(&mut got).expect("decode") {
                Some(f) => frames.push(f),
                None => {
                    if crd.read_buf(&mut got).await.expect("read") == 0 {
                        break;
                    }
                }
            }
        }
        assert!(frames.contains(&Frame::SynReply {
            stream_id: 1,
            headers: vec![],
            fin: false
        }));
        assert!(frames.contains(&Frame::Ping { id: 1 }));
        assert!(frames.contains(&Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::from_static(b"out")
        }));
        assert!(matches!(frames.last(), Some(Frame::GoAway { .. })));
    }
}
