-- Records which domain owns this database. Start-up refuses a database whose
-- owner is another domain, so a mistyped per-domain URL cannot make two
-- domains share (and corrupt) one database.
CREATE TABLE service_info (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO service_info (key, value) VALUES ('domain', 'notifications');
