-- 006: training programs, entitlements, progress, checkout orders and
-- payment webhook receipts (the `ProgramStore` port, issue 12).
--
-- Queries served:
--   programs             upsert by id; get by id; a coach's by id
--   entitlements         upsert by (user, program); get; a user's by program;
--                        a program's by user
--   program_progress     upsert by (user, program, item); a user's in a program
--   orders               insert or update if the stored version is the one
--                        before; get by id; get by payment (PaymentIntent id)
--   payment_receipts     insert if absent by event id; update; get; pending
--                        ones oldest received first (partial index)

CREATE TABLE IF NOT EXISTS programs (
    id     text COLLATE "C" PRIMARY KEY,
    coach  text COLLATE "C" NOT NULL,
    body   bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS programs_by_coach ON programs (coach, id);

CREATE TABLE IF NOT EXISTS entitlements (
    user_id  text COLLATE "C" NOT NULL,
    program  text COLLATE "C" NOT NULL,
    body     bytea NOT NULL,
    PRIMARY KEY (user_id, program)
);
CREATE INDEX IF NOT EXISTS entitlements_by_program ON entitlements (program, user_id);

CREATE TABLE IF NOT EXISTS program_progress (
    user_id  text COLLATE "C" NOT NULL,
    program  text COLLATE "C" NOT NULL,
    item     text COLLATE "C" NOT NULL,
    body     bytea NOT NULL,
    PRIMARY KEY (user_id, program, item)
);

CREATE TABLE IF NOT EXISTS orders (
    id       text COLLATE "C" PRIMARY KEY,
    version  bigint NOT NULL,
    payment  text COLLATE "C",
    body     bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_payment ON orders (payment) WHERE payment IS NOT NULL;

CREATE TABLE IF NOT EXISTS payment_receipts (
    id           text COLLATE "C" PRIMARY KEY,
    received_ms  bigint NOT NULL,
    pending      boolean NOT NULL,
    body         bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_receipts_pending
    ON payment_receipts (received_ms, id) WHERE pending;
