//! k1s store.
