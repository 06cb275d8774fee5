//! k1s pki.
