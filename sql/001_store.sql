-- 001: rooms, threads, inboxes and memberships (the actors' `Store` port).
--
-- Queries served:
--   rooms / threads   insert if absent (ON CONFLICT DO NOTHING); get by id
--   room_events       append head+1.. (multi-row insert; the primary key
--   messages          turns a racing duplicate into a unique violation);
--   inbox             seq > N ascending LIMIT n; seq < N descending; max(seq)
--   room_snapshots    replace only if newer (ON CONFLICT ... WHERE seq <)
--   read_cursors      merge with GREATEST per field (never backwards)
--   memberships       insert if absent; by (user, kind) sorted by id

CREATE TABLE IF NOT EXISTS rooms (
    id    text COLLATE "C" PRIMARY KEY,
    meta  bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS room_events (
    room_id  text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL,
    body     bytea NOT NULL,
    PRIMARY KEY (room_id, seq)
);

CREATE TABLE IF NOT EXISTS room_snapshots (
    room_id  text COLLATE "C" PRIMARY KEY,
    seq      bigint NOT NULL,
    body     bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS threads (
    id    text COLLATE "C" PRIMARY KEY,
    meta  bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS messages (
    thread_id  text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    body       bytea NOT NULL,
    PRIMARY KEY (thread_id, seq)
);

CREATE TABLE IF NOT EXISTS read_cursors (
    thread_id  text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    delivered  bigint NOT NULL,
    read       bigint NOT NULL,
    PRIMARY KEY (thread_id, user_id)
);

CREATE TABLE IF NOT EXISTS inbox (
    user_id  text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL,
    body     bytea NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- kind: 0 room, 1 thread.
CREATE TABLE IF NOT EXISTS memberships (
    user_id    text COLLATE "C" NOT NULL,
    kind       smallint NOT NULL,
    target_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, kind, target_id)
);
