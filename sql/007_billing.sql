-- 007: billing (the `BillingStore` port, issue 12's second slice): each
-- user's Stripe subscriptions as the webhooks last left them, admin
-- overrides of the plan and their audit log, coaches' Stripe Connect
-- accounts.
--
-- Queries served:
--   billing_subscriptions  insert or update if the stored version is the
--                          one before; get by id; a user's by id
--   plan_overrides         upsert / delete by user; get by user
--   billing_audit          insert by (subject, at_ms, id); a subject's
--                          oldest first
--   payout_accounts        upsert by coach; get by coach; get by the
--                          Stripe account id (unique index)

CREATE TABLE IF NOT EXISTS billing_subscriptions (
    id       text COLLATE "C" PRIMARY KEY,
    user_id  text COLLATE "C" NOT NULL,
    version  bigint NOT NULL,
    body     bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_subscriptions_by_user ON billing_subscriptions (user_id, id);

CREATE TABLE IF NOT EXISTS plan_overrides (
    user_id  text COLLATE "C" PRIMARY KEY,
    body     bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS billing_audit (
    subject  text COLLATE "C" NOT NULL,
    at_ms    bigint NOT NULL,
    id       text COLLATE "C" NOT NULL,
    body     bytea NOT NULL,
    PRIMARY KEY (subject, at_ms, id)
);

CREATE TABLE IF NOT EXISTS payout_accounts (
    coach       text COLLATE "C" PRIMARY KEY,
    account_id  text COLLATE "C" NOT NULL,
    body        bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS payout_accounts_by_id ON payout_accounts (account_id);
