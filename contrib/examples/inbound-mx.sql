-- smtpguard policy for an inbound MX of example.com (and example.net):
-- mail for local mailboxes comes in from anywhere, nothing is relayed
-- except for authenticated users, harvesters are banned, DNSBLs and SPF
-- are enforced, reverse DNS only scored.
--
--   sqlite3 /var/lib/smtpguard/smtpguard.db < inbound-mx.sql
--   (or smtpguardctl, one change at a time; the daemon picks either up)
--
-- Edit the domains, mailboxes and lists first. Re-running it is harmless.
BEGIN;

INSERT OR IGNORE INTO local_domains (domain, comment) VALUES
    ('example.com', 'primary'), ('example.net', 'alias domain');
-- Known mailboxes: with them, unknown recipients are refused (550 5.1.1)
-- and count towards the harvest limit. Leave the table empty to let the
-- MTA decide which mailboxes exist.
INSERT OR IGNORE INTO local_addresses (address) VALUES
    ('postmaster@example.com'), ('abuse@example.com'),
    ('alice@example.com'), ('bob@example.com');
INSERT OR REPLACE INTO catchalls (domain, mailbox, comment) VALUES
    ('example.net', 'alice@example.com', 'old domain: everything to alice');

-- Only the host itself relays unauthenticated.
DELETE FROM relay_networks WHERE network NOT IN ('127.0.0.0/8', '::1');

UPDATE settings SET value = 'rules' WHERE name = 'relayPolicy';
UPDATE settings SET value = '1' WHERE name IN ('DoRelayCheck',
    'DoHarvestCheck', 'DoDNSBL', 'DoSPF', 'relayAuthenticated');
UPDATE settings SET value = '5' WHERE name = 'maxHarvestUnknown';
UPDATE settings SET value = '3' WHERE name = 'DoFCrDNS';       -- score
UPDATE settings SET value = '2' WHERE name = 'dnsblThreshold';

-- Weighted lists, as postscreen_dnsbl_sites: a listing in the first is
-- enough, the second needs company; the allow list cancels both.
INSERT OR REPLACE INTO dnsbl_zones (zone, weight, answers, txt) VALUES
    ('zen.spamhaus.org', 2, '127.0.0.[2..11]', 1),
    ('bl.spamcop.net', 1, '127.0.0.2', 1),
    ('list.dnswl.org', -5, '127.0.[0..255].[1..3]', 0);

COMMIT;
