//! Server-side apply (being replaced by the full implementation).
