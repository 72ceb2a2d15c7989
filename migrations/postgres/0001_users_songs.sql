CREATE TABLE IF NOT EXISTS users (
    id          SERIAL PRIMARY KEY,
    name        TEXT        NOT NULL,
    email       TEXT        NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS songs (
    id          SERIAL PRIMARY KEY,
    title       TEXT        NOT NULL,
    artist      TEXT        NOT NULL,
    author_id   INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content     TEXT        NOT NULL DEFAULT '',
    archived    BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS songs_author_id ON songs (author_id);
CREATE INDEX IF NOT EXISTS songs_created_at ON songs (created_at);
