-- Tables of accuinsight-rpa in the platform's MySQL database.
-- Every DATETIME column holds a UTC instant, because MySQL DATETIME keeps no offset;
-- the tool converts to and from aware datetimes at the boundary.

CREATE TABLE IF NOT EXISTS rpa_run (
    run_id       VARCHAR(36)  NOT NULL,
    job          VARCHAR(32)  NOT NULL,
    dry_run      BOOLEAN      NOT NULL,
    status       VARCHAR(16)  NOT NULL,  -- running, succeeded, failed, interrupted
    started_at   DATETIME(6)  NOT NULL,
    finished_at  DATETIME(6)  NULL,
    summary      TEXT         NULL,      -- JSON counts: planned, done, failed, skipped
    PRIMARY KEY (run_id),
    KEY ix_rpa_run_job_started (job, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS rpa_action_log (
    id          BIGINT        NOT NULL AUTO_INCREMENT,
    run_id      VARCHAR(36)   NOT NULL,
    job         VARCHAR(32)   NOT NULL,
    account     VARCHAR(64)   NOT NULL,
    kind        VARCHAR(64)   NOT NULL,
    target      VARCHAR(255)  NOT NULL,
    status      VARCHAR(16)   NOT NULL,  -- done, failed, skipped
    detail      TEXT          NULL,
    created_at  DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    KEY ix_rpa_action_log_run (run_id),
    KEY ix_rpa_action_log_account_time (account, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per job and account: the schedule that the platform shows for the account's
-- projects (job 'modeler') or clusters (job 'mcm'), with the next switch instants.
CREATE TABLE IF NOT EXISTS rpa_schedule (
    job            VARCHAR(32)   NOT NULL,
    account        VARCHAR(64)   NOT NULL,
    days           VARCHAR(64)   NOT NULL,
    start_time     CHAR(5)       NOT NULL,  -- HH:MM, local wall clock
    end_time       CHAR(5)       NOT NULL,  -- HH:MM or 24:00
    timezone       VARCHAR(64)   NOT NULL,
    holidays       VARCHAR(8)    NULL,
    exclude_dates  TEXT          NOT NULL,  -- JSON list of YYYY-MM-DD
    next_on_at     DATETIME(6)   NULL,
    next_off_at    DATETIME(6)   NULL,
    updated_at     DATETIME(6)   NOT NULL,
    PRIMARY KEY (job, account)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
