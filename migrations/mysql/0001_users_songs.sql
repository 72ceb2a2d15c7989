CREATE TABLE IF NOT EXISTS users (
    id          INT          NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        TEXT         NOT NULL,
    email       VARCHAR(255) NOT NULL UNIQUE,
    created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS songs (
    id          INT          NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title       TEXT         NOT NULL,
    artist      TEXT         NOT NULL,
    author_id   INT          NOT NULL,
    content     TEXT         NOT NULL DEFAULT (''),
    archived    BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    INDEX songs_author_id (author_id),
    INDEX songs_created_at (created_at),
    CONSTRAINT songs_author FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB;
