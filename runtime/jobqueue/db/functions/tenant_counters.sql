-- Every tenant has its two counter rows from birth, so a lease can lock
-- them without creating them.
CREATE OR REPLACE FUNCTION jobqueue_tenant_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_taken (tenant_id) VALUES (NEW.id);
    INSERT INTO tenant_freed (tenant_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER tenants_counters AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION jobqueue_tenant_created();

-- A lease waiting for this tenant's taken row reads the tenant again once
-- it has it: holding that row until this change commits makes a lease in
-- flight see the tenant disabled or its lower quota.
CREATE OR REPLACE FUNCTION jobqueue_tenant_tightened() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tenant_taken WHERE tenant_id = NEW.id FOR UPDATE;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER tenants_tightened AFTER UPDATE ON tenants
    FOR EACH ROW
    WHEN (OLD.enabled AND NOT NEW.enabled OR NEW.max_concurrent < OLD.max_concurrent)
    EXECUTE FUNCTION jobqueue_tenant_tightened();
