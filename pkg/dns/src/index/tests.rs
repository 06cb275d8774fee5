//! Unit tests of the records.
