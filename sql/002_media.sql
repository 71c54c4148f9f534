-- 002: uploaded assets and encoder jobs (the `MediaStore` port).
--
-- Queries served:
--   media_assets  upsert by id; get by id; by owner sorted by id
--   media_jobs    upsert by id; get by id; unfinished jobs oldest first
--                 (ties by id), through a partial index

CREATE TABLE IF NOT EXISTS media_assets (
    id     text COLLATE "C" PRIMARY KEY,
    owner  text COLLATE "C" NOT NULL,
    body   bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS media_assets_by_owner ON media_assets (owner, id);

CREATE TABLE IF NOT EXISTS media_jobs (
    id          text COLLATE "C" PRIMARY KEY,
    created_ms  bigint NOT NULL,
    unfinished  boolean NOT NULL,
    body        bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS media_jobs_unfinished
    ON media_jobs (created_ms, id) WHERE unfinished;
