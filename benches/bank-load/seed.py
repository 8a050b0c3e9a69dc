import sqlite3, sys, time
path, accounts, transfers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(path)
t = time.time()
c.executescript(f"""
PRAGMA journal_mode=WAL;
CREATE TABLE account (id INTEGER PRIMARY KEY, owner TEXT NOT NULL,
  opening_balance INTEGER NOT NULL CHECK (opening_balance >= 0),
  balance INTEGER NOT NULL CHECK (typeof(balance) = 'integer' AND balance >= 0));
CREATE TABLE transfer (id INTEGER PRIMARY KEY, from_id INTEGER NOT NULL REFERENCES account(id),
  to_id INTEGER NOT NULL REFERENCES account(id), amount INTEGER NOT NULL CHECK (amount > 0),
  CHECK (from_id <> to_id));
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {accounts})
INSERT INTO account SELECT i, 'owner' || i, 1000000, 1000000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {transfers})
INSERT INTO transfer SELECT i, (i * 7919) % {accounts} + 1, ((i * 7919) % {accounts} + 1) % {accounts} + 1, 1 FROM n;
CREATE INDEX transfer_from ON transfer(from_id);
CREATE INDEX transfer_to ON transfer(to_id);
UPDATE account SET balance = opening_balance
  + coalesce((SELECT sum(amount) FROM transfer WHERE to_id = account.id), 0)
  - coalesce((SELECT sum(amount) FROM transfer WHERE from_id = account.id), 0);
""")
c.commit(); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()
print(f"seeded {accounts} accounts, {transfers} transfers in {time.time()-t:.1f} s")
