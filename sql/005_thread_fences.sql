-- 005: fencing of chat threads (issue 10, ARCHITECTURE "Cluster"), as
-- sql/004 does for rooms: a thread's owner node raises `threads.fence` to
-- its lease's epoch when it takes the thread over (`fence_thread`), and
-- every append of messages carries its writer's epoch, checked against
-- the fence read FOR SHARE in the writer's transaction.

ALTER TABLE threads ADD COLUMN IF NOT EXISTS fence bigint NOT NULL DEFAULT 0;
