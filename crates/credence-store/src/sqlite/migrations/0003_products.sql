-- Several products at once: each strategy (package name) has its own activation history;
-- decisions and review cases carry their strategy; keys and users may be limited to named
-- strategies; rollouts (shadow, ramp) of candidate versions and their shadow results.
ALTER TABLE activations ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
UPDATE activations SET strategy = (SELECT name FROM strategy_versions v WHERE v.version = activations.version);
CREATE INDEX IF NOT EXISTS activations_by_strategy ON activations (strategy, seq);
ALTER TABLE decision_index ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
UPDATE decision_index SET strategy = COALESCE((SELECT name FROM strategy_versions v WHERE v.version = decision_index.strategy_version), '');
CREATE INDEX IF NOT EXISTS decision_index_by_strategy ON decision_index (strategy, seq);
ALTER TABLE review_cases ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
UPDATE review_cases SET strategy = COALESCE((SELECT d.strategy FROM decision_index d WHERE d.id = review_cases.decision_id), '');
ALTER TABLE api_keys ADD COLUMN strategies TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN strategies TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS rollouts_by_strategy ON rollouts (strategy, started_at_ms);
CREATE TABLE IF NOT EXISTS shadow_results (
    decision_id TEXT NOT NULL,
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
