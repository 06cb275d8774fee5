//! k1s apimachinery.
