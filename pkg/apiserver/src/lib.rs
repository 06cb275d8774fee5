//! k1s apiserver.
