-- The price cache, SQLite flavour. Keep in step with ../postgres/00004_prices.sql. Prices are
-- kept in one reference currency (USD); a fiat currency is a price id of its own ("fiat:eur",
-- the USD value of one euro), so that a value in any currency is computed at read time.

-- +goose Up
-- How our assets map to the price source's ids. asset_key is a leg's CAIP-19 asset_id, or
-- "symbol:<SYMBOL>" when it has none, or "fx:<currency>". price_id is NULL while unresolved and
-- '' when the source has no id for the asset (its values stay null).
CREATE TABLE price_assets (
    asset_key   TEXT PRIMARY KEY,
    price_id    TEXT,
    resolved_at INTEGER
);

-- Historical points as the source gives them (daily, or finer for short ranges), in USD.
CREATE TABLE price_points (
    price_id TEXT NOT NULL,
    ts       INTEGER NOT NULL,
    price    TEXT NOT NULL,
    PRIMARY KEY (price_id, ts)
) WITHOUT ROWID;

-- The UTC days (unix seconds / 86400) whose history has been fetched, points or not: each is
-- fetched once.
CREATE TABLE price_days (
    price_id   TEXT NOT NULL,
    day        INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (price_id, day)
) WITHOUT ROWID;

-- The latest price of each id, refreshed on a schedule.
CREATE TABLE price_current (
    price_id   TEXT PRIMARY KEY,
    price      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Valuation work: the (asset, day) pairs a connection's sync touched whose history may be
-- missing. A row stays until its day is fetched, so a source outage is retried later.
CREATE TABLE price_needs (
    asset_key     TEXT NOT NULL,
    day           INTEGER NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (asset_key, day, connection_id)
) WITHOUT ROWID;
CREATE INDEX price_needs_connection ON price_needs (connection_id);

-- +goose Down
DROP TABLE price_needs;
DROP TABLE price_current;
DROP TABLE price_days;
DROP TABLE price_points;
DROP TABLE price_assets;
