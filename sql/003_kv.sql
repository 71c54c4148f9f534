-- 003: namespaced key-value records (the `Kv` port: accounts, sessions,
-- relationships, profiles, revocations).
--
-- Queries served: get by (ns, key); keys of ns starting with a prefix in
-- key order; conditional batches (a transaction that takes an advisory lock
-- per key it reads or writes, checks, then writes).

CREATE TABLE IF NOT EXISTS kv (
    ns     text COLLATE "C" NOT NULL,
    key    text COLLATE "C" NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (ns, key)
);
