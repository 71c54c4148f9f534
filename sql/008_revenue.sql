-- 008: orders listed for the revenue figures (issue 12's revenue
-- analytics): a coach's orders and every order, by creation time. The
-- coach and the creation time are copied out of the body on every write
-- (neither changes once stored).
--
-- Queries served:
--   orders  a coach's created in [from, to) by (created_ms, id), paged
--           past a cursor (orders_by_coach); every coach's likewise
--           (orders_by_created)
--
-- Orders stored before this migration have neither column (NULL) and are
-- not listed: the partial indexes skip them.

ALTER TABLE orders ADD COLUMN IF NOT EXISTS coach text COLLATE "C";
ALTER TABLE orders ADD COLUMN IF NOT EXISTS created_ms bigint;
CREATE INDEX IF NOT EXISTS orders_by_coach
    ON orders (coach, created_ms, id) WHERE coach IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_by_created
    ON orders (created_ms, id) WHERE created_ms IS NOT NULL;
