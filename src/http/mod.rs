//! HTTP API for uploads and signed media serving (being written).
