-- Several products at once: each strategy (package name) has its own activation history;
-- review cases carry their strategy; keys and users may be limited to named strategies;
-- rollouts (shadow, ramp) of candidate versions and their shadow results.
ALTER TABLE activations ADD COLUMN IF NOT EXISTS strategy TEXT NOT NULL DEFAULT '';
UPDATE activations a SET strategy = v.name FROM strategy_versions v WHERE v.version = a.version AND a.strategy = '';
CREATE INDEX IF NOT EXISTS activations_by_strategy ON activations (strategy, seq);
CREATE INDEX IF NOT EXISTS decisions_by_strategy ON decisions (strategy, seq);
ALTER TABLE review_cases ADD COLUMN IF NOT EXISTS strategy TEXT NOT NULL DEFAULT '';
UPDATE review_cases c SET strategy = d.strategy FROM decisions d WHERE d.id = c.decision_id AND c.strategy = '';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS strategies TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN IF NOT EXISTS strategies TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT COLLATE "C" PRIMARY KEY,
    strategy TEXT NOT NULL,
    version TEXT NOT NULL REFERENCES strategy_versions (version),
    baseline_version TEXT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    plan TEXT NOT NULL,
    step BIGINT NOT NULL,
    step_started_at_ms BIGINT NOT NULL,
    started_by TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    note TEXT NOT NULL,
    revision BIGINT NOT NULL
);
-- At most one running rollout per strategy, whichever node starts it.
CREATE UNIQUE INDEX IF NOT EXISTS rollouts_one_running ON rollouts (strategy) WHERE state = 'running';
CREATE TABLE IF NOT EXISTS shadow_results (
    decision_id TEXT COLLATE "C" NOT NULL,
    candidate_version TEXT NOT NULL,
    strategy TEXT NOT NULL,
    rollout_id TEXT NOT NULL,
    live_version TEXT NOT NULL,
    flow TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    live TEXT NOT NULL,
    candidate TEXT NOT NULL,
    PRIMARY KEY (decision_id, candidate_version)
);
CREATE INDEX IF NOT EXISTS shadow_results_by_time ON shadow_results (strategy, created_at_ms, decision_id);
