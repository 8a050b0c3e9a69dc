//! The library's own SQL that waits to go out ahead of a transaction's next message, so that
//! it costs no round trip of its own (ARCHITECTURE.md §5, "PostgreSQL: one round trip per
//! statement").
//!
//! On a server every awaited message costs a round trip; a nested call awaited statement by
//! statement — SAVEPOINT, the statement, RELEASE — costs three. Nothing needs the reply of
//! BEGIN, SAVEPOINT or RELEASE before the next message of the same transaction is sent: the
//! server runs a connection's messages in order, and a failure of any of them fails what
//! follows. So they are queued here and written in front of whatever the transaction sends
//! next (a statement, another savepoint's first statement, the COMMIT), pipelined with it.
//! A frame that sent nothing ends without SQL: its SAVEPOINT is taken back off the queue.
//!
//! Only the frame holding the right turn sends (frames and turns, ARCHITECTURE.md §4), so the
//! queue always describes the chain: queued SAVEPOINTs are those of the sender and its
//! ancestors, queued RELEASEs those of frames that ended before it.

/// One queued piece of the library's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `BEGIN …` of the root (with its `SET LOCAL`s).
    Begin,
    /// The `SAVEPOINT` of frame `frame`, not yet sent.
    Open { frame: u64 },
    /// The `RELEASE` of a savepoint whose frame has ended.
    Release,
}

/// The queue of one transaction's connection.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    entries: Vec<(Entry, String)>,
}

impl Queue {
    /// The root's `BEGIN`, sent with the transaction's first statement.
    pub(crate) fn begin(&mut self, sql: String) {
        self.entries.push((Entry::Begin, sql));
    }

    /// The `SAVEPOINT` of a frame that has just opened, sent with its first statement (or
    /// that of a descendant).
    pub(crate) fn open(&mut self, frame: u64, sql: String) {
        self.entries.push((Entry::Open { frame }, sql));
    }

    /// A savepoint frame that ends `Keep`: nothing to send when its SAVEPOINT never went
    /// out (it ran nothing); otherwise its RELEASE. The queued RELEASEs of its children stay
    /// in front of it, although its own would end them too: what goes out stays strictly
    /// LIFO (ARCHITECTURE.md §2), which `tests/tests/lifo_sql.rs` checks from the wire.
    pub(crate) fn release(&mut self, frame: u64, depth: u32) {
        if self.take_back_open(frame) {
            return;
        }
        self.entries
            .push((Entry::Release, format!("RELEASE sp_{depth}")));
    }

    /// A savepoint frame that is rolled back: `None` when its SAVEPOINT never went out;
    /// otherwise the queue followed by its `ROLLBACK TO` and `RELEASE`, to send now.
    pub(crate) fn rollback(&mut self, frame: u64, depth: u32) -> Option<String> {
        if self.take_back_open(frame) {
            return None;
        }
        Some(self.take_with(&format!("ROLLBACK TO sp_{depth}; RELEASE sp_{depth}")))
    }

    /// The end of the root: `None` when nothing of the transaction was ever sent (only its
    /// BEGIN is queued), so nothing need be; otherwise what to send, ending with `end`
    /// (`COMMIT` or `ROLLBACK`). Queued RELEASEs go too: COMMIT and ROLLBACK cover them, and
    /// a RELEASE costs nothing in the same message.
    pub(crate) fn end(&mut self, end: &str) -> Option<String> {
        if matches!(self.entries.as_slice(), [(Entry::Begin, _)]) {
            self.entries.clear();
            return None;
        }
        if end == "ROLLBACK" {
            // A ROLLBACK undoes everything; a BEGIN never sent need not be.
            let began = !matches!(self.entries.first(), Some((Entry::Begin, _)));
            self.entries.clear();
            return began.then(|| end.to_owned());
        }
        Some(self.take_with(end))
    }

    /// Everything queued, to go out now ahead of the caller's own message; empty when
    /// nothing is.
    pub(crate) fn take(&mut self) -> String {
        let sql = self
            .entries
            .iter()
            .map(|(_, sql)| sql.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        self.entries.clear();
        sql
    }

    /// Everything queued, then `sql`, as one message.
    pub(crate) fn take_with(&mut self, sql: &str) -> String {
        let queued = self.take();
        if queued.is_empty() {
            sql.to_owned()
        } else {
            format!("{queued}; {sql}")
        }
    }

    /// Takes `frame`'s SAVEPOINT back when it is the last thing queued: nothing of the frame
    /// (or of a descendant) was sent, since every send takes the whole queue.
    pub(crate) fn take_back_open(&mut self, frame: u64) -> bool {
        if matches!(self.entries.last(), Some((Entry::Open { frame: f }, _)) if *f == frame) {
            self.entries.pop();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::Queue;

    fn begun() -> Queue {
        let mut q = Queue::default();
        q.begin("BEGIN READ WRITE".to_owned());
        q
    }

    #[test]
    fn a_nested_call_goes_out_with_the_statements_around_it() {
        let mut q = begun();
        assert_eq!(q.take(), "BEGIN READ WRITE"); // with the root's first statement
        q.open(7, "SAVEPOINT sp_1".to_owned());
        assert_eq!(q.take(), "SAVEPOINT sp_1"); // with the child's statement
        q.release(7, 1);
        q.open(8, "SAVEPOINT sp_1".to_owned()); // the next sibling
        assert_eq!(q.take(), "RELEASE sp_1; SAVEPOINT sp_1");
        q.release(8, 1);
        assert_eq!(q.end("COMMIT").as_deref(), Some("RELEASE sp_1; COMMIT"));
    }

    #[test]
    fn frames_that_sent_nothing_end_without_sql() {
        let mut q = begun();
        q.open(1, "SAVEPOINT sp_1".to_owned());
        q.open(2, "SAVEPOINT sp_2".to_owned());
        q.release(2, 2);
        assert_eq!(q.rollback(1, 1), None);
        // Only BEGIN was ever queued: the transaction ends without a message.
        assert_eq!(q.end("COMMIT"), None);
        let mut q = begun();
        assert_eq!(q.end("ROLLBACK"), None);
    }

    #[test]
    fn queued_releases_go_out_in_order_ahead_of_their_parents_end() {
        let mut q = Queue::default();
        q.open(1, "SAVEPOINT sp_1".to_owned());
        q.open(2, "SAVEPOINT sp_2".to_owned());
        assert_eq!(q.take(), "SAVEPOINT sp_1; SAVEPOINT sp_2");
        q.release(2, 2);
        q.release(1, 1);
        assert_eq!(q.take(), "RELEASE sp_2; RELEASE sp_1");
        q.open(3, "SAVEPOINT sp_1".to_owned());
        q.open(4, "SAVEPOINT sp_2".to_owned());
        assert_eq!(q.take(), "SAVEPOINT sp_1; SAVEPOINT sp_2");
        q.release(4, 2);
        assert_eq!(
            q.rollback(3, 1).as_deref(),
            Some("RELEASE sp_2; ROLLBACK TO sp_1; RELEASE sp_1")
        );
    }

    #[test]
    fn a_rollback_of_the_root_sends_only_what_undoes_sent_work() {
        let mut q = begun();
        assert_eq!(q.take(), "BEGIN READ WRITE");
        q.open(1, "SAVEPOINT sp_1".to_owned());
        assert_eq!(q.end("ROLLBACK").as_deref(), Some("ROLLBACK"));
    }
}
