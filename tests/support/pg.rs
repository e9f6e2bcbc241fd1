//! PostgreSQL helpers for the integration tests. Being written (issue 3).
