-- Batch jobs split into partitions that workers claim under a lease (portfolio reviews run
-- by several processes).
CREATE TABLE IF NOT EXISTS job_partitions (
    job_id TEXT NOT NULL,
    partition_no BIGINT NOT NULL,
    after_key TEXT NOT NULL,
    last_key TEXT NOT NULL,
    state TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    done_at_ms BIGINT,
    result TEXT,
    PRIMARY KEY (job_id, partition_no)
);
