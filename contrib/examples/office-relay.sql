-- smtpguard policy for a small office relay: the office network and
-- authenticated users send out through this host; nothing comes in from
-- the Internet. Mail rates are tight so a compromised desktop or account
-- is stopped early.
--
--   sqlite3 /var/lib/smtpguard/smtpguard.db < office-relay.sql
BEGIN;

INSERT OR IGNORE INTO relay_networks (network, comment) VALUES
    ('192.0.2.0/24', 'office LAN'),
    ('2001:db8:1::/48', 'office LAN, IPv6');

-- The office's own domain: senders must use it (no forged senders out).
INSERT OR IGNORE INTO local_domains (domain) VALUES ('example.org');
INSERT OR IGNORE INTO local_addresses (address) VALUES
    ('carol@example.org'), ('dave@example.org'), ('postmaster@example.org');
UPDATE settings SET value = '1' WHERE name = 'relayRequireLocalSender';

-- Per sender and per client: 30 messages and 200 recipients a minute.
UPDATE settings SET value = '30' WHERE name IN ('maxEmailPerMinute',
    'maxEmailPerMinuteAuth', 'maxEmailPerMinuteIP');
UPDATE settings SET value = '200' WHERE name IN ('maxRcptPerMinute',
    'maxRcptPerMinuteAuth', 'maxRcptPerMinuteIP');
UPDATE settings SET value = '100' WHERE name = 'maxRcptPerMessage';

-- Nothing inbound: no DNS reputation or SPF for our own clients.
UPDATE settings SET value = '0' WHERE name IN ('DoDNSBL', 'DoFCrDNS',
    'DoSPF');
UPDATE settings SET value = '20' WHERE name = 'maxSMTPSessions';

COMMIT;
