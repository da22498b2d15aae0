-- One counter that moves with every write to the pricing rules (shipping
-- zones, shipping methods, tax rates), in the writer's own transaction.
-- An order prices from rules that must not lag an admin's change: it reads
-- this one row and rereads the three tables only when the counter moved.
CREATE TABLE pricing_rules_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint  NOT NULL
);

INSERT INTO pricing_rules_version (version) VALUES (1);

CREATE FUNCTION bump_pricing_rules_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pricing_rules_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER shipping_zones_bump_rules AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON shipping_zones FOR EACH STATEMENT EXECUTE FUNCTION bump_pricing_rules_version();
CREATE TRIGGER shipping_methods_bump_rules AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON shipping_methods FOR EACH STATEMENT EXECUTE FUNCTION bump_pricing_rules_version();
CREATE TRIGGER tax_rates_bump_rules AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON tax_rates FOR EACH STATEMENT EXECUTE FUNCTION bump_pricing_rules_version();
