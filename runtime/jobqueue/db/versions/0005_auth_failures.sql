-- jobqueue schema, version 5: failure budgets for POST /auth/token.
--
-- Wrong API keys are counted (GCRA, like request rate limits) per client
-- address and per tenant id named, shared by every API replica. The key is
-- text ('addr:…', 'tenant:…'), not a reference: a guess at a tenant that
-- does not exist is counted the same way, so answers say nothing about
-- which tenants exist. A row whose tat has passed means nothing (a full
-- budget); those are deleted a few at a time by later failures.
CREATE TABLE auth_failures (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
) WITH (fillfactor = 50);
CREATE INDEX auth_failures_tat ON auth_failures (tat);
