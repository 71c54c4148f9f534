-- 004: fencing of room logs (issue 10, ARCHITECTURE "Cluster").
--
-- The room's owner node holds a lease with an epoch; on taking it over it
-- raises `rooms.fence` to that epoch (`fence_room`: UPDATE ... WHERE
-- fence <= epoch). Every append carries its writer's epoch: the writer's
-- transaction reads the fences of the rooms it appends to FOR SHARE and
-- refuses a call whose epoch is not the fence (`Fenced`). The row lock
-- orders a fence raise after every append transaction in flight, so a new
-- owner that raised the fence reads every event an older owner got in.

ALTER TABLE rooms ADD COLUMN IF NOT EXISTS fence bigint NOT NULL DEFAULT 0;
