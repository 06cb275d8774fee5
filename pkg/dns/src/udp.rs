//! UDP serving with an answer cache in front of the resolver. Clients ask the same few
//! names over and over (every pod's resolver walks the same search list), and an answer
//! from the index stays right until the index changes: such answers are kept as the
//! bytes sent, keyed by the query's bytes after its ID, and a repeated query is answered
//! by copying them with the new ID — no parsing, lookup or encoding, as dnsmasq answers
//! from its cache. Forwarded answers are not kept here (the forwarder has its own cache,
//! which honours their TTLs).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::net::UdpSocket;

use crate::server::Handler;

/// How many answers are kept; when full, the cache starts again empty.
const MAX_ENTRIES: usize = 16_384;

/// A query larger than this is not kept (EDNS cookies and the like make it unique).
const MAX_KEY: usize = 512;

/// Answers from the index, by query bytes after the ID, for one index generation.
#[derive(Default)]
pub(crate) struct AnswerCache {
    inner: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    generation: u64,
    answers: HashMap<Box<[u8]>, Box<[u8]>>,
}

impl AnswerCache {
    /// The kept answer to `query` (whole, ID included), with the query's ID written in.
    fn get(&self, query: &[u8], generation: u64) -> Option<Vec<u8>> {
        let (id, key) = query.split_at_checked(2)?;
        let entries = self.inner.read();
        if entries.generation != generation {
            return None;
        }
        let mut answer = entries.answers.get(key)?.to_vec();
        answer.get_mut(..2)?.copy_from_slice(id);
        Some(answer)
    }

    /// Keeps `answer` to `query`, valid while the index is at `generation`.
    fn put(&self, query: &[u8], answer: &[u8], generation: u64) {
        let Some((_, key)) = query.split_at_checked(2) else {
            return;
        };
        if key.len() > MAX_KEY {
            return;
        }
        let mut entries = self.inner.write();
        if entries.generation != generation {
            if generation < entries.generation {
                return; // Read before a change that a newer answer already saw.
            }
            entries.generation = generation;
            entries.answers.clear();
        }
        if entries.answers.len() >= MAX_ENTRIES {
            entries.answers.clear();
        }
        entries.answers.insert(key.into(), answer.into());
    }
}

/// Serves queries arriving on `socket` until the task is dropped.
pub(crate) async fn serve(socket: UdpSocket, handler: Arc<Handler>, cache: Arc<AnswerCache>) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors of earlier sends surface here on some kernels: go on.
                tracing::debug!(error = %e, "DNS receive failed");
                continue;
            }
        };
        let query = &buf[..len];
        if let Some(answer) = cache.get(query, handler.generation()) {
            send(&socket, &answer, peer).await;
            continue;
        }
        let query = query.to_vec();
        let (socket, handler, cache) = (socket.clone(), handler.clone(), cache.clone());
        // A query that goes to the forwarder may wait for it: not in this loop.
        tokio::spawn(async move {
            let Some((answer, generation)) = handler.answer_udp(&query).await else {
                return;
            };
            if let Some(generation) = generation {
                cache.put(&query, &answer, generation);
            }
            send(&socket, &answer, peer).await;
        });
    }
}

async fn send(socket: &UdpSocket, answer: &[u8], peer: SocketAddr) {
    if let Err(e) = socket.send_to(answer, peer).await {
        tracing::debug!(%peer, error = %e, "cannot send a DNS response");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_per_generation_and_take_the_new_id() {
        let cache = AnswerCache::default();
        let query = [0x12, 0x34, 1, 0, 0, 1];
        cache.put(&query, &[0x12, 0x34, 0x81, 0x80, 7], 3);
        assert_eq!(
            cache.get(&[0xab, 0xcd, 1, 0, 0, 1], 3),
            Some(vec![0xab, 0xcd, 0x81, 0x80, 7])
        );
        // Another question, or the index moved on: nothing kept.
        assert_eq!(cache.get(&[0xab, 0xcd, 1, 0, 0, 2], 3), None);
        assert_eq!(cache.get(&[0xab, 0xcd, 1, 0, 0, 1], 4), None);
        // An answer read before a change does not replace the newer generation's.
        cache.put(&query, &[0, 0, 9], 4);
        cache.put(&[0, 0, 5], &[0, 0, 5], 3);
        assert_eq!(cache.get(&[1, 1, 5], 4), None);
        assert_eq!(cache.get(&[1, 1, 1, 0, 0, 1], 4), Some(vec![1, 1, 9]));
        assert_eq!(cache.get(&[1], 4), None);
    }
}
