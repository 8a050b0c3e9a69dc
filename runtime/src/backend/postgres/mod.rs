//! PostgreSQL backend (feature `postgres`): the pieces §6 of DESIGN.md assigns to a backend.
