//! Backends: everything that speaks to a particular database engine.
//!
//! The rest of the runtime — frames and turns (`frame/`), the task's context (`context`),
//! task groups (`task`), the `atomic` builder, hooks, bounded waits (`wait`) — is about
//! ordering and ending frames, and is the same for every engine. What differs lives here, one
//! folder per engine (DESIGN §6): what an outermost transaction holds (SQLite: the writer
//! queue or a reader connection), the text of BEGIN and of the savepoint statements,
//! executing and caching statements, classifying errors, checking a connection's state when
//! it is handed back, and engine-only parts (SQLite's checkpoint thread and pragmas).

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;
