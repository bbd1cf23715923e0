-- 002: relay authorization, directory harvest and mail rate limits.
--
-- New policy tables (local_domains, local_addresses, catchalls,
-- relay_networks, mta_mailers) with their default rows; the connection
-- frequency windows of ip_rate move into rate_windows, which holds every
-- counting window with its own length; setting_info learns the boolean
-- and choice setting types.

ALTER TABLE setting_info ADD COLUMN choices TEXT;

DROP TRIGGER settings_check_insert;
DROP TRIGGER settings_check_update;

CREATE TRIGGER settings_check_insert BEFORE INSERT ON settings
BEGIN
    SELECT RAISE(ABORT, 'smtpguard: unknown setting (table setting_info lists them)')
     WHERE NOT EXISTS (SELECT 1 FROM setting_info WHERE name = NEW.name);
    SELECT RAISE(ABORT, 'smtpguard: value not a whole number within min..max of setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type IN ('mode', 'integer')
       AND (NEW.value = '' OR NEW.value GLOB '*[^0-9]*'
            OR length(NEW.value) > 12
            OR CAST(NEW.value AS INTEGER) NOT BETWEEN i.min AND i.max);
    SELECT RAISE(ABORT, 'smtpguard: value not a number of seconds (optionally with s, m, h or d)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'seconds'
       AND NOT (NEW.value GLOB '[0-9]*'
                AND (NEW.value NOT GLOB '*[^0-9]*'
                     OR (substr(NEW.value, 1, length(NEW.value) - 1) NOT GLOB '*[^0-9]*'
                         AND substr(NEW.value, -1) IN ('s', 'm', 'h', 'd'))));
    SELECT RAISE(ABORT, 'smtpguard: value not a severity (emergency .. debug, or 0-7)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'severity'
       AND lower(NEW.value) NOT IN ('emergency', 'alert', 'critical', 'crit',
            'error', 'err', 'warning', 'notice', 'info', 'debug',
            '0', '1', '2', '3', '4', '5', '6', '7');
    SELECT RAISE(ABORT, 'smtpguard: value not a boolean (yes/no, on/off, true/false, 1/0)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'boolean'
       AND lower(NEW.value) NOT IN ('0', '1', 'yes', 'no', 'on', 'off',
            'true', 'false');
    SELECT RAISE(ABORT, 'smtpguard: value not one of the choices listed in setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'choice'
       AND (NEW.value GLOB '*|*' OR NEW.value = ''
            OR instr('|' || i.choices || '|', '|' || lower(NEW.value) || '|') = 0);
END;

CREATE TRIGGER settings_check_update BEFORE UPDATE ON settings
BEGIN
    SELECT RAISE(ABORT, 'smtpguard: unknown setting (table setting_info lists them)')
     WHERE NOT EXISTS (SELECT 1 FROM setting_info WHERE name = NEW.name);
    SELECT RAISE(ABORT, 'smtpguard: value not a whole number within min..max of setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type IN ('mode', 'integer')
       AND (NEW.value = '' OR NEW.value GLOB '*[^0-9]*'
            OR length(NEW.value) > 12
            OR CAST(NEW.value AS INTEGER) NOT BETWEEN i.min AND i.max);
    SELECT RAISE(ABORT, 'smtpguard: value not a number of seconds (optionally with s, m, h or d)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'seconds'
       AND NOT (NEW.value GLOB '[0-9]*'
                AND (NEW.value NOT GLOB '*[^0-9]*'
                     OR (substr(NEW.value, 1, length(NEW.value) - 1) NOT GLOB '*[^0-9]*'
                         AND substr(NEW.value, -1) IN ('s', 'm', 'h', 'd'))));
    SELECT RAISE(ABORT, 'smtpguard: value not a severity (emergency .. debug, or 0-7)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'severity'
       AND lower(NEW.value) NOT IN ('emergency', 'alert', 'critical', 'crit',
            'error', 'err', 'warning', 'notice', 'info', 'debug',
            '0', '1', '2', '3', '4', '5', '6', '7');
    SELECT RAISE(ABORT, 'smtpguard: value not a boolean (yes/no, on/off, true/false, 1/0)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'boolean'
       AND lower(NEW.value) NOT IN ('0', '1', 'yes', 'no', 'on', 'off',
            'true', 'false');
    SELECT RAISE(ABORT, 'smtpguard: value not one of the choices listed in setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'choice'
       AND (NEW.value GLOB '*|*' OR NEW.value = ''
            OR instr('|' || i.choices || '|', '|' || lower(NEW.value) || '|') = 0);
END;

CREATE TABLE rate_windows (
    key            TEXT PRIMARY KEY,
    window_start   INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    count          INTEGER NOT NULL
) WITHOUT ROWID;

-- ip_rate keys were client networks; their window was maxSMTPipDuration.
INSERT INTO rate_windows (key, window_start, window_seconds, count)
SELECT 'conn:' || key, window_start,
       COALESCE((SELECT CAST(value AS INTEGER) FROM settings
                  WHERE name = 'maxSMTPipDuration'
                    AND value <> '' AND value NOT GLOB '*[^0-9]*'), 90),
       count
  FROM ip_rate;
DROP TABLE ip_rate;

-- ---- Relay authorization (checked at RCPT TO for every recipient) ----
--
-- A recipient is local (delivered here) when its domain is in
-- local_domains; then it must be in local_addresses (user+tag@ matches
-- user@), be postmaster, or have a catch-all, else it is refused as
-- unknown (550 5.1.1). While local_addresses is empty, every recipient of
-- a local domain is accepted: the MTA knows its mailboxes. While
-- local_domains is empty, the MTA's own routing decides: see mta_mailers.
-- A recipient that is not local is relayed when relayPolicy allows it:
-- authenticated (relayAuthenticated), client in relay_networks, or sender
-- in local_addresses (relayLocalSender, off: weak). See docs/settings.md.

-- Local domains: exact names, no trailing dot; IDNs in their xn-- form.
CREATE TABLE local_domains (
    domain  TEXT PRIMARY KEY COLLATE NOCASE,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- The local address map: known mailboxes, 'local-part@domain'. Compared
-- case-insensitively; a quoted local part is compared by its content.
CREATE TABLE local_addresses (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- Catch-all mailbox of a local domain: unknown recipients of the domain
-- are accepted (the MTA must redirect them to mailbox, e.g. with a
-- Postfix virtual_alias_maps entry '@domain mailbox').
CREATE TABLE catchalls (
    domain  TEXT PRIMARY KEY COLLATE NOCASE,
    mailbox TEXT NOT NULL,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- Client networks that may relay (IPv4/IPv6 address or CIDR, host bits
-- zero), like Postfix's mynetworks.
CREATE TABLE relay_networks (
    network TEXT PRIMARY KEY,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- While local_domains is empty: the MTA's mailer (transport) for a
-- recipient ({rcpt_mailer}: Postfix's transport name, Sendmail's mailer)
-- tells what the MTA itself decided. 'remote' mailers need a relay
-- criterion; 'local' ones and mailers not listed are local delivery.
CREATE TABLE mta_mailers (
    mailer  TEXT PRIMARY KEY COLLATE NOCASE,
    class   TEXT NOT NULL CHECK (class IN ('local', 'remote')),
    comment TEXT
);

-- Relaying: the host itself may relay, like Postfix's default mynetworks.
INSERT INTO relay_networks (network, comment) VALUES
    ('127.0.0.0/8', 'loopback'),
    ('::1', 'loopback');

-- How the MTA's mailer reads while local_domains is empty. Postfix: local,
-- virtual, lmtp deliver here, relay serves relay_domains (a backup MX);
-- smtp goes out. Sendmail: local delivers here, esmtp/smtp/smtp8/dsmtp
-- go out; with a SMART_HOST Sendmail's relay mailer goes out too: set it
-- to remote there.
INSERT INTO mta_mailers (mailer, class, comment) VALUES
    ('local', 'local', 'Postfix, Sendmail: local delivery'),
    ('virtual', 'local', 'Postfix: virtual mailboxes'),
    ('lmtp', 'local', 'Postfix: LMTP to the mailbox server'),
    ('relay', 'local', 'Postfix: relay_domains; Sendmail: smart host'),
    ('smtp', 'remote', 'outbound'),
    ('esmtp', 'remote', 'Sendmail: outbound'),
    ('smtp8', 'remote', 'Sendmail: outbound'),
    ('dsmtp', 'remote', 'Sendmail: outbound');

CREATE TRIGGER local_domains_ai AFTER INSERT ON local_domains BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_domains_au AFTER UPDATE ON local_domains BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_domains_ad AFTER DELETE ON local_domains BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_addresses_ai AFTER INSERT ON local_addresses BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_addresses_au AFTER UPDATE ON local_addresses BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_addresses_ad AFTER DELETE ON local_addresses BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catchalls_ai AFTER INSERT ON catchalls BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catchalls_au AFTER UPDATE ON catchalls BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catchalls_ad AFTER DELETE ON catchalls BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER relay_networks_ai AFTER INSERT ON relay_networks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER relay_networks_au AFTER UPDATE ON relay_networks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER relay_networks_ad AFTER DELETE ON relay_networks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER mta_mailers_ai AFTER INSERT ON mta_mailers BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER mta_mailers_au AFTER UPDATE ON mta_mailers BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER mta_mailers_ad AFTER DELETE ON mta_mailers BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
